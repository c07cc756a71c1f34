"""Checkpoints: written atomically (temp file, then rename), so a kill never leaves a torn file.

A snapshot is a checkpoint another run may start from (a WSD cool-down branched off a longer run's
stable phase): it carries a ``branch_key`` instead of a run id, and is loaded only by a run whose key and
schedule make its first steps identical to the snapshot's (train/loop.py).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..atomic import writing
from ..errors import ScalingLabError


def save(path: Path, state: dict) -> None:
    with writing(path) as tmp:
        torch.save(state, tmp)


def _read(path: Path) -> dict:
    try:  # weights_only: a checkpoint is tensors and plain values; never unpickle code from a run directory
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file must not be trained on
        raise ScalingLabError(f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to restart "
                              f"the run from scratch") from None


def load_snapshot(path: Path, branch_key: str) -> dict | None:
    """The snapshot at ``path`` if it exists and was written by a run of this branch key, else None."""
    if not path.exists():
        return None
    state = _read(path)
    return state if state.get("branch_key") == branch_key else None


def load(path: Path, run_id: str) -> dict | None:
    if not path.exists():
        return None
    state = _read(path)
    if state.get("run_id") != run_id:
        raise ScalingLabError(f"checkpoint {path} belongs to run {state.get('run_id')!r}, not {run_id!r}: "
                              "use another run directory or delete it")
    return state
