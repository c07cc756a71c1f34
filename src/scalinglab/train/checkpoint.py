"""Checkpoints: written atomically (temp file, then rename), so a kill never leaves a torn file."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import ScalingLabError


def save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)


def load(path: Path, run_id: str) -> dict | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a torn or foreign file must not be trained on
        raise ScalingLabError(f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to restart "
                              f"the run from scratch") from None
    if state.get("run_id") != run_id:
        raise ScalingLabError(f"checkpoint {path} belongs to run {state.get('run_id')!r}, not {run_id!r}: "
                              f"use another --out or delete it")
    return state
