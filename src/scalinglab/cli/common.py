"""Helpers the command modules share: number parsing, JSON output, full-precision formatting."""
from __future__ import annotations

import argparse
import math
import sys

from ..jsonsafe import dumps


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
    """Exactly one strict JSON object on stdout (NaN and infinities as null); floats at full precision."""
    sys.stdout.write(dumps(obj) + "\n")


def full(x: float) -> str:
    """A float at full precision: the shortest repr that round-trips."""
    return repr(float(x))


# a library parameter -> the flag that sets it, where the two are not spelled alike (`n_ctx` -> --n-ctx)
FLAG_OF = {"n_params": "--params", "n_tokens": "--tokens", "select": "--fit"}


def in_cli_terms(text: str, params: tuple[str, ...]) -> str:
    """A library message with each of ``params`` it names (`name`) said as the flag that sets it."""
    for param in params:
        text = text.replace(f"`{param}`", FLAG_OF.get(param, "--" + param.replace("_", "-")))
    return text
