"""Strict JSON for every file and line scalinglab writes: NaN and infinities become null, numpy scalars and
arrays plain numbers and lists, so any JSON parser reads the output (RFC 8259 has no NaN)."""
from __future__ import annotations

import json
import math

import numpy as np


def clean(obj):
    """A copy of ``obj`` that json.dumps(..., allow_nan=False) accepts: non-finite floats -> None."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj, **kwargs) -> str:
    """json.dumps of clean(obj); raises on anything that is still not JSON rather than writing it."""
    return json.dumps(clean(obj), allow_nan=False, **kwargs)
