"""The one way scalinglab writes a file a reader may see: a temp file in the same directory (unique per
writer), flushed to disk, then renamed into place, so a reader or a crash never meets half a file.

``writing(path)`` gives the temp path to any writer (torch.save, to_parquet, tofile, SQLite);
``write_text`` and ``write_bytes`` are the common cases. Files get the mode ``open()`` would give (the
umask's), not mkstemp's 0600.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import ScalingLabError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[Path]:
    """``with writing(path) as tmp:`` write ``tmp`` any way; on success it is fsynced and renamed to
    ``path``; on any error it is removed and ``path`` is left as it was."""
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ScalingLabError(f"cannot write {path}: {exc.strerror}") from None
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    with writing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with writing(path) as tmp:
        tmp.write_text(text)
    return Path(path)


@contextlib.contextmanager
def waiting_lock(path: str | Path):
    """Hold an exclusive flock on ``path``, waiting for whoever holds it (lock.DirLock refuses instead): one
    Ray worker per run directory, one matmul probe per machine. Opened without following a link and without
    truncating (a DirLock holder's note stays); where the file cannot be opened or locked (read-only, no
    locks on this filesystem), the body runs unlocked. Here, not in lock.py, because the trainer uses it and
    lock.py's study file names reach the fitting code, which the trainer never imports."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # ENOLCK
            pass
        yield
    finally:
        os.close(fd)  # releases the lock
