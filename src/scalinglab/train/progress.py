"""A run's progress as one line of text, and as a small file a driver in another process can read.

The trainer calls ``TrainOptions.progress(p)`` after every step with ``p`` = step, steps, train_loss,
elapsed, tokens_per_s, mfu, estimate. `train` draws it as a status line (cli/train.py); a study's worker
hands in a ``ProgressFile``, which writes the latest ``p`` to RUN_DIR/progress.json at most every few
seconds, and the study's driver prints it (study.py ``_Watcher``): the held-out run, minutes long, is no
longer silent until it ends. Torch-free: the driver imports it.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from ..jsonsafe import dumps

PROGRESS_FILE = "progress.json"


def estimate_text(p: dict) -> str:
    """The final-loss estimate of a progress line: the value and its interval, or why there is none yet."""
    e = p.get("estimate")
    if not e:
        return ""
    if not e["converged"] or e["interval"] is None:
        why = e["warnings"][0] if e["warnings"] else "no fit yet"
        return f"  final: not yet ({why.split(':')[0].split(';')[0].strip()})"
    lo, hi = e["interval"]
    past = any("extrapolates" in w for w in e.get("warnings") or ())
    return (f"  final ~{e['final']:.3f} [{lo:.3f}, {hi:.3f}] (from {100 * e['fraction']:.0f}%"
            + ("; past its reference's range" if past else "") + ")")


def progress_line(p: dict) -> str:
    """step, loss, tokens/s, MFU, ETA and the final-loss estimate, as one line."""
    eta = p["elapsed"] * (p["steps"] / p["step"] - 1) if p["step"] else float("nan")
    mfu = p.get("mfu")
    return (f"step {p['step']}/{p['steps']}  loss {p['train_loss']:.4f}  {p['tokens_per_s'] / 1e3:.1f}k tok/s"
            + (f"  MFU {100 * mfu:.1f}%" if isinstance(mfu, float) and math.isfinite(mfu) else "")
            + (f"  ETA {int(eta) // 60}:{int(eta) % 60:02d}" if math.isfinite(eta) else "")
            + estimate_text(p))


class ProgressFile:
    """``TrainOptions.progress`` for a run trained in a worker: the latest progress, written atomically to
    ``run_dir``/progress.json at most every ``every`` seconds (and at the last step), by rank 0 only.
    Picklable (a worker process is handed one)."""

    def __init__(self, run_dir: str | Path, every: float = 5.0):
        self.path = str(Path(run_dir) / PROGRESS_FILE)
        self.every = every
        self._last = -math.inf

    def __call__(self, p: dict) -> None:
        now = time.monotonic()
        if (now - self._last < self.every and p["step"] < p["steps"]) or os.environ.get("RANK", "0") != "0":
            return
        self._last = now
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "w") as fh:
                fh.write(dumps(dict(p) | {"time": time.time()}))
            os.replace(tmp, self.path)
        except (OSError, TypeError, ValueError):
            pass  # progress is a courtesy: never a failed run


def read_progress(run_dir: str | Path, since: float = 0.0) -> dict | None:
    """The latest progress a run wrote after ``since`` (a time.time()), or None."""
    try:
        p = json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(p, dict) or not p.get("time", 0) > since or not p.get("steps"):
        return None
    return p
