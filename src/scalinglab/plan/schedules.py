"""Learning-rate schedules as functions of the step: what the trainer runs and what the whole-curve laws
(fit/schedule_laws.py) read, torch-free. ``per_step`` writes a schedule named on the command line out as
one LR per step."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ScalingLabError


def default_warmup(steps: int) -> int:
    """100 steps, but never more than a quarter of the run.

    5% of the run was too short for short runs: tiny byte-level models at LR >= 8e-3 spiked at the end of
    a 25-step warm-up and lost the plateau escape (docs/training.md).
    """
    return max(1, min(100, steps // 4))


SCHEDULES = ("cosine", "wsd", "piecewise")


def cooldown_start(steps: int, cooldown_frac: float) -> int:
    """The first step of a WSD run's cool-down: the last ``cooldown_frac`` of its steps decay."""
    return steps - max(1, round(cooldown_frac * steps))


def lr_at(step: int, *, peak: float, steps: int, warmup: int, min_frac: float, schedule: str = "cosine",
          cooldown_frac: float = 0.2, points: tuple = ()) -> float:
    """The LR of a 0-based step: linear warm-up to ``peak``, then

    - ``cosine``: decay to min_frac * peak exactly at the run's last step. The cycle length is the run's
      own: a run cut short of a longer schedule ends too high and overstates its loss (Hoffmann et al.
      2022, §3.1 and Fig. A1).
    - ``wsd`` (warm-up, stable, decay): constant at ``peak`` until the last ``cooldown_frac`` of the run,
      then a (1 - sqrt) cool-down towards min_frac * peak, the shape Hägele et al. 2024 (§3) found best.
      Until its cool-down a run's LRs are those of any longer run of the same peak and warm-up, so shorter
      runs can branch off a longer one's stable phase.
    - ``piecewise``: ``points`` ((step, fraction of peak), ...) joined by straight lines, held flat before
      the first and after the last; the user's schedule is the whole schedule (no warm-up of its own).
    """
    if schedule == "piecewise":
        at, frac = zip(*points)
        return peak * float(np.interp(step, at, frac))
    if step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "wsd":
        start = cooldown_start(steps, cooldown_frac)
        if step < start:
            return peak
        progress = (step - start) / (steps - start)
        return peak * (min_frac + (1 - min_frac) * (1 - math.sqrt(progress)))
    progress = (step - warmup) / max(1, steps - warmup - 1)
    return peak * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def parse_points(text: str) -> tuple[tuple[int, float], ...]:
    """``piecewise:0=0,100=1,1600=1,2000=0`` (STEP=FRACTION of the peak LR, steps increasing) or a CSV file
    with columns step, lr_frac -> ((step, fraction), ...)."""
    body = text.partition(":")[2]
    if not text.startswith("piecewise:"):
        import pandas as pd
        try:
            table = pd.read_csv(text)
        except (OSError, ValueError) as exc:
            raise ScalingLabError(f"schedule {text!r} is neither cosine, wsd, constant, "
                                  "piecewise:STEP=FRAC,... nor a readable CSV of step,lr_frac "
                                  f"({type(exc).__name__})") from None
        if not {"step", "lr_frac"} <= set(table.columns):
            raise ScalingLabError(f"schedule {text}: a CSV schedule for training needs columns step, lr_frac "
                                  "(the fraction of the peak LR at that step)")
        pairs = list(zip(table["step"], table["lr_frac"]))
    else:
        pairs = []
        for item in filter(None, body.split(",")):
            step, eq, frac = item.partition("=")
            try:
                pairs.append((float(step), float(frac)))
            except ValueError:
                raise ScalingLabError(f"schedule {text!r}: {item!r} is not STEP=FRACTION") from None
    try:
        points = tuple((int(s), float(f)) for s, f in pairs)
    except (TypeError, ValueError):
        raise ScalingLabError(f"schedule {text!r}: steps and fractions must be numbers") from None
    steps = [s for s, _ in points]
    if len(points) < 2 or steps != sorted(set(steps)) or steps[0] < 0 or \
            not all(math.isfinite(f) and 0 <= f <= 1 for _, f in points):
        raise ScalingLabError(f"schedule {text!r}: a piecewise schedule needs 2 or more points with "
                              "increasing steps >= 0 and fractions of the peak LR in [0, 1]")
    return points


def per_step(spec: str, steps: int, *, peak: float, warmup: int | None = None) -> np.ndarray:
    """LR of every step 0..steps-1 of a schedule given as text: ``cosine`` (``cosine:min=0.1``: decay to 10%
    of the peak), ``wsd`` (``wsd:cooldown=0.2,min=0``), ``constant``, ``piecewise:0=0,100=1,2000=0``
    (STEP=FRACTION of the peak), or a CSV file with columns step, lr (absolute LRs) or step, lr_frac
    (fractions of the peak), interpolated linearly between its rows, held after the last. Warm-up:
    ``warmup`` steps (default the trainer's, default_warmup) of linear ramp, as the trainer does; a
    piecewise or CSV schedule is taken as given."""
    if steps < 2 or not peak > 0:
        raise ScalingLabError(f"a schedule needs at least 2 steps and a positive peak LR (got {steps}, "
                              f"{peak})")
    if spec.startswith("piecewise:"):
        return _every_step(steps, peak=peak, warmup=0, min_frac=0.0, schedule="piecewise",
                           points=parse_points(spec))
    kind, _, opts = spec.partition(":")
    if kind not in ("cosine", "wsd", "constant"):
        return _from_csv(spec, steps, peak)
    kv = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        try:
            kv[key.strip()] = float(value)
        except ValueError:
            raise ScalingLabError(f"schedule {spec!r}: {item!r} is not KEY=NUMBER") from None
    allowed = {"cosine": {"min"}, "wsd": {"min", "cooldown"}, "constant": set()}[kind]
    if set(kv) - allowed:
        raise ScalingLabError(f"schedule {spec!r}: {kind} takes {', '.join(sorted(allowed)) or 'no options'}")
    min_frac = kv.get("min", 1.0 if kind == "constant" else 0.1 if kind == "cosine" else 0.0)
    cooldown = kv.get("cooldown", 0.2)
    if not (0 <= min_frac <= 1 and 0 < cooldown <= 1):
        raise ScalingLabError(f"schedule {spec!r}: min must be in [0, 1] and cooldown in (0, 1]")
    warm = default_warmup(steps) if warmup is None else warmup
    return _every_step(steps, peak=peak, warmup=warm, min_frac=min_frac,
                       schedule="wsd" if kind == "wsd" else "cosine", cooldown_frac=cooldown)


def _every_step(steps: int, **schedule) -> np.ndarray:
    return np.array([lr_at(s, steps=steps, **schedule) for s in range(steps)])


def _from_csv(path: str, steps: int, peak: float) -> np.ndarray:
    import pandas as pd
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ScalingLabError(f"schedule {path!r} is neither cosine, wsd, constant nor a readable CSV of "
                              f"step,lr ({type(exc).__name__})") from None
    if {"step", "lr_frac"} <= set(table.columns) and "lr" not in table.columns:
        return _every_step(steps, peak=peak, warmup=0, min_frac=0.0, schedule="piecewise",
                           points=parse_points(path))
    if not {"step", "lr"} <= set(table.columns) or len(table) < 2:
        raise ScalingLabError(f"schedule {path}: a CSV schedule needs columns step, lr (or step, lr_frac) "
                              "and 2 rows or more")
    table = table.sort_values("step")
    return np.interp(np.arange(steps), table["step"].to_numpy(float), table["lr"].to_numpy(float))


def warmup_of(spec) -> int:
    """A RunSpec's warm-up steps as the trainer resolves them; for a piecewise schedule, the first step at
    its highest LR."""
    if spec.schedule == "piecewise":
        top = max(f for _, f in spec.lr_points)
        return next(s for s, f in spec.lr_points if f == top)
    return spec.warmup_steps or default_warmup(spec.steps)


def of_run(spec, peak_lr: float) -> np.ndarray:
    """The LR of every step of a RunSpec as the trainer ran it, given its resolved peak LR (the store's
    ``lr`` column, config.json's ``resolved.lr``)."""
    return _every_step(spec.steps, peak=peak_lr, warmup=warmup_of(spec), min_frac=spec.min_lr_frac,
                       schedule=spec.schedule, cooldown_frac=spec.cooldown_frac, points=spec.lr_points)
