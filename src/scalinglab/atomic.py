"""Writing a result file so a reader never sees half of it: a temp file beside it, renamed into place."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp's 0600 would hide fit.json from the group


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temp file in the same directory (unique per writer), then rename it into place;
    the file gets the mode every other file of the study has (0644 under the usual umask)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        from .errors import ScalingLabError
        raise ScalingLabError(f"cannot write {path}: {exc.strerror}") from None
    os.fchmod(fd, FILE_MODE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
