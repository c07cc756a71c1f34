"""Writing a result file so a reader never sees half of it: a temp file beside it, renamed into place."""
from __future__ import annotations

from pathlib import Path


def write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
