"""Helpers the command modules share: number parsing, JSON output, full-precision formatting."""
from __future__ import annotations

import argparse
import json
import math
import sys


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (FLOPs may be written 5.76e23)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def emit_json(obj: dict) -> None:
    """Exactly one JSON object on stdout; floats at full precision (repr)."""
    sys.stdout.write(json.dumps(obj) + "\n")


def full(x: float) -> str:
    """A float at full precision: the shortest repr that round-trips."""
    return repr(float(x))
