"""One writer per study (or run directory): an OS lock on ``DIR/.lock``, held by the driver while it runs.

The lock is ``flock`` on an open file: the kernel releases it when the holder exits, however it exits
(SIGKILL included), so a killed study never leaves a stale lock. The file names the holder (pid, command,
start time) so a refused second writer can say who holds it. Readers do not lock: they ask ``holder()``
and say that the study is still running.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

from .errors import ScalingLabError
from .studydir import CONFIG_FILE, CURVE_FITS_FILE, FIT_FILE, FITS_FILE, LAW_FILE, STORE_FILE, SUMMARY_FILE

LOCK_NAME = ".lock"
_HELD: dict[Path, int] = {}  # locks this process holds: a nested DirLock on the same directory is a no-op


class DirLock:
    """``with DirLock(dir, "run"):`` holds the directory's writer lock, or refuses with one line."""

    def __init__(self, directory: str | Path, what: str):
        self.path = Path(directory) / LOCK_NAME
        self.what = what
        self.fd: int | None = None

    def __enter__(self) -> "DirLock":
        key = self.path.resolve()
        if key in _HELD:
            _HELD[key] += 1
            return self
        refuse_links(self.path.parent)
        try:  # never through a link: a `.lock` pointing elsewhere would have its target truncated
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise ScalingLabError(f"cannot lock {self.path.parent}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = _read_holder(self.path)
            raise ScalingLabError(f"{self.path.parent} is in use by {_describe(info)}: one writer at a time; "
                                  "wait for it to finish or stop it, then run this again") from None
        except OSError as exc:  # ENOLCK: a filesystem without locks (some NFS mounts; issue 30 R6)
            os.close(fd)
            raise ScalingLabError(f"cannot lock {self.path.parent} ({exc.strerror}): this filesystem does "
                                  "not support file locks, and a study needs one writer at a time; put the "
                                  "directory on a local disk (reading a finished study needs no lock)") \
                from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "what": self.what, "since": time.time(),
                                 "argv": sys.argv[1:]}).encode())
        self.fd = fd
        _HELD[key] = 1
        return self

    def __exit__(self, *exc) -> bool:
        key = self.path.resolve()
        if key in _HELD:
            _HELD[key] -= 1
            if _HELD[key] == 0:
                del _HELD[key]
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock; the file stays (an unlocked file is not a lock)
            self.fd = None
        return False


# what a study or run directory holds: none of it may be a link (a writer would write through it)
OWN_FILES = (LOCK_NAME, STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", "report", "runs", FIT_FILE,
             FITS_FILE, LAW_FILE, SUMMARY_FILE, CONFIG_FILE, CURVE_FITS_FILE, "result.json", "checkpoint.pt")


def refuse_links(directory: str | Path) -> None:
    """One error line when one of the directory's own files or folders is a symbolic link (issue 30 R2: a
    linked `.lock` had its target truncated, a linked `report/` was written into)."""
    directory = Path(directory)
    linked = [name for name in OWN_FILES if (directory / name).is_symlink()]
    if linked:
        verb = "is a symbolic link" if len(linked) == 1 else "are symbolic links"
        raise ScalingLabError(f"{directory}: {', '.join(linked)} {verb} to elsewhere; scalinglab writes a "
                              "study's files only inside its directory: "
                              "replace the link(s) with the real files, or copy the study")


def holder(directory: str | Path) -> dict | None:
    """Who holds the directory's writer lock, or None when nobody does."""
    path = Path(directory) / LOCK_NAME
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path) or {"pid": None}
    except OSError:  # no locks on this filesystem: nobody can be shown to hold it; readers go on
        return None
    finally:
        os.close(fd)
    return None


def _read_holder(path: Path) -> dict:
    try:
        info = json.loads(path.read_text() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    pid, what, since = info.get("pid"), info.get("what", "another process"), info.get("since")
    when = time.strftime(" since %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else ""
    return f"`scalinglab {what}` (pid {pid}{when})" if pid else "another scalinglab process"


def running_note(directory: str | Path) -> str | None:
    """For readers: one line saying the study is still being written, or None."""
    info = holder(directory)
    if info is None:
        return None
    return (f"note: {Path(directory)} is still being run by {_describe(info)}: this reads the runs "
            "finished so far")
