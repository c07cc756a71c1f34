"""Fit files: one fit (``FitBase.save``) or several (``write_fits``: `fit --law all --out`, a study's
fits.json and curvefits.json), versioned strict JSON, read back by ``read_fits`` / ``load_fits`` /
``load_fit`` into the result types of fit/registry.py."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from ..atomic import write_text
from ..errors import ScalingLabError
from ..jsonsafe import dumps
from .core.base import FORMAT_MANY, VERSION, FitBase, read_doc
from .registry import fit_from_dict


def write_fits(path: str | Path, fits: Iterable[FitBase], skipped: list[dict] | None = None, *,
               indent: int | None = 1, **extra) -> Path:
    """Several fits (with their bootstrap draws and points) in one file; ``skipped``: the laws the data did
    not allow, with why; ``extra``: other top-level entries (a study's estimate table). Atomic."""
    doc = {"format": FORMAT_MANY, "version": VERSION, "fits": [f.to_dict() for f in fits],
           "skipped": list(skipped or [])} | extra
    return write_text(Path(path), dumps(doc, indent=indent))


def load_fits(path: str | Path) -> list[FitBase]:
    """Every fit in a file written by ``save`` (one) or ``fit --law all --out`` (several)."""
    return read_fits(path)[0]


def read_fits(path: str | Path) -> tuple[list[FitBase], list[dict]]:
    """(fits, skipped): every fit in the file and, for a file of several, the laws it could not fit."""
    path = Path(path)
    doc = read_doc(path)
    entries = doc["fits"] if doc["format"] == FORMAT_MANY else [doc]
    fits = []
    for d in entries:
        try:
            fit = fit_from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            raise ScalingLabError(f"{path} is not a valid fit file: bad or missing field {exc}") from None
        if not all(math.isfinite(v) for v in fit.params.values()):
            raise ScalingLabError(f"{path} is not a valid fit file: non-finite parameters in {fit.key}")
        fits.append(fit)
    if not fits:
        raise ScalingLabError(f"{path} holds no fits")
    skipped = doc.get("skipped", []) if isinstance(doc.get("skipped", []), list) else []
    return fits, skipped


def load_fit(path: str | Path, select: str | None = None) -> FitBase:
    """One fit from a file: the only one, or the one whose key (``chinchilla:3``, ``kaplan:L(N,D)+E``, or
    just the approach, ``3``, ``L(N,D)``) is ``select``; a file of several without ``select`` gives
    Approach 3 when it holds it."""
    fits = load_fits(path)
    if select is None:
        if len(fits) == 1:
            return fits[0]
        chosen = [f for f in fits if f.key == "chinchilla:3"]
    else:  # the full key, else the part after the colon, else the approach
        chosen = next((c for c in ([f for f in fits if f.key == select],
                                   [f for f in fits if f.key.split(":", 1)[1] == select],
                                   [f for f in fits if f.approach == select]) if c), [])
    if len(chosen) != 1:
        keys = ", ".join(f.key for f in fits)
        what = (f"no fit {select!r}" if not chosen else f"several fits matching {select!r}") if select else \
            "several fits"
        raise ScalingLabError(f"{path} holds {what}; choose one with `select` KEY: {keys}",
                              params=("select",))
    return chosen[0]
