"""Learning-rate schedules as functions of the step: what the trainer runs and what the whole-curve laws
(fit/curvelaws/) read, torch-free. One grammar names a schedule everywhere (``Schedule.parse``: train,
plan, a study file, the report) and one rule gives a run's warm-up (``warmup_of``; ``default_warmup`` for
a schedule without a run)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ScalingLabError


def default_warmup(steps: int) -> int:
    """100 steps, but never more than a quarter of the run.

    5% of the run was too short for short runs: tiny byte-level models at LR >= 8e-3 spiked at the end of
    a 25-step warm-up and lost the plateau escape (docs/training.md).
    """
    return max(1, min(100, steps // 4))


SCHEDULES = ("cosine", "wsd", "piecewise")
MAX_STEPS = 10_000_000  # a predicted curve's steps: one float64 LR each (80 MB), never unbounded


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


@dataclass(frozen=True)
class Schedule:
    """A schedule as text names it: one grammar for `train --schedule`, `plan --schedule`, a study file's
    ``schedule`` and the report. ``cosine`` (``cosine:min=0.1``: decay to 10% of the peak), ``wsd``
    (``wsd:cooldown=0.2,min=0``), ``constant``, ``piecewise:0=0,100=1,2000=0`` (STEP=FRACTION of the
    peak), or a CSV file with columns step, lr_frac (fractions of the peak) or step, lr (absolute LRs: a
    prediction's schedule only, a run's peak LR is its own). Every schedule but piecewise and CSV ones
    starts with the run's warm-up (``warmup_of``)."""

    kind: str  # "cosine" (constant is a cosine at min 1), "wsd", "piecewise", "csv-lr"
    min_frac: float = 0.1
    cooldown_frac: float = 0.2
    points: tuple = ()  # piecewise: ((step, fraction of the peak), ...)
    source: str = ""  # the text it was parsed from; a CSV of absolute LRs is read from it

    @classmethod
    def parse(cls, text: str) -> "Schedule":
        if text.startswith("piecewise:"):
            return cls("piecewise", 0.0, points=parse_points(text), source=text)
        kind, _, opts = text.partition(":")
        if kind not in ("cosine", "wsd", "constant"):
            return cls._csv(text)
        kv = {}
        for item in filter(None, opts.split(",")):
            key, _eq, value = item.partition("=")
            try:
                kv[key.strip()] = float(value)
            except ValueError:
                raise ScalingLabError(f"schedule {text!r}: {item!r} is not KEY=NUMBER") from None
        allowed = {"cosine": {"min"}, "wsd": {"min", "cooldown"}, "constant": set()}[kind]
        if set(kv) - allowed:
            takes = ", ".join(sorted(allowed)) or "no options"
            raise ScalingLabError(f"schedule {text!r}: {kind} takes {takes}")
        min_frac = kv.get("min", 1.0 if kind == "constant" else 0.1 if kind == "cosine" else 0.0)
        cooldown = kv.get("cooldown", 0.2)
        if not (0 <= min_frac <= 1 and 0 < cooldown <= 1):
            raise ScalingLabError(f"schedule {text!r}: min must be in [0, 1] and cooldown in (0, 1]")
        return cls("wsd" if kind == "wsd" else "cosine", min_frac, cooldown, source=text)

    @classmethod
    def _csv(cls, path: str) -> "Schedule":
        import pandas as pd
        try:
            table = pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise ScalingLabError(f"schedule {path!r} is neither cosine, wsd, constant, "
                                  "piecewise:STEP=FRAC,... nor a readable CSV of step,lr_frac or step,lr "
                                  f"({type(exc).__name__})") from None
        if {"step", "lr_frac"} <= set(table.columns) and "lr" not in table.columns:
            return cls("piecewise", 0.0, points=parse_points(path), source=path)
        if not {"step", "lr"} <= set(table.columns) or len(table) < 2:
            raise ScalingLabError(f"schedule {path}: a CSV schedule needs columns step, lr_frac (or step, "
                                  "lr) and 2 rows or more")
        return cls("csv-lr", source=path)

    def run_fields(self) -> dict:
        """The RunSpec fields of a run under this schedule."""
        if self.kind == "csv-lr":
            raise ScalingLabError(f"schedule {self.source}: a run's schedule gives fractions of its peak LR "
                                  "(columns step, lr_frac), not absolute LRs")
        if self.kind == "piecewise":
            return {"schedule": "piecewise", "lr_points": self.points}
        if self.kind == "wsd":
            return {"schedule": "wsd", "cooldown_frac": self.cooldown_frac, "min_lr_frac": self.min_frac}
        return {"min_lr_frac": self.min_frac}

    def check_steps(self, steps: int, warmup: int | None = None) -> None:
        """One error line when this schedule does not fit a run of ``steps`` steps: a warm-up that is
        negative or not shorter than the run, or piecewise points past its last step (the LR there would be
        cut off silently)."""
        if warmup is not None and not 0 <= warmup < steps:
            raise ScalingLabError(f"warm-up {warmup} must be between 0 and the run's {steps} steps "
                                  "(exclusive)")
        if self.kind == "piecewise" and self.points and self.points[-1][0] > steps:
            raise ScalingLabError(f"schedule {self.source}: its points run to step {self.points[-1][0]:g}, "
                                  f"past the run's {steps} steps: the rest would be cut off; end them at "
                                  f"step {steps} or lower")

    def per_step(self, steps: int, *, peak: float, warmup: int | None = None) -> np.ndarray:
        """The LR of every step 0..steps-1: ``warmup`` steps of linear ramp (default the trainer's,
        default_warmup) then the schedule; piecewise and CSV schedules are taken as given."""
        if steps < 2 or not peak > 0:
            raise ScalingLabError(f"a schedule needs at least 2 steps and a positive peak LR (got {steps}, "
                                  f"{peak})")
        if steps > MAX_STEPS:
            raise ScalingLabError(f"{steps:,} steps is more than a predicted curve is drawn for (at most "
                                  f"{MAX_STEPS:,}: one LR per step is held in memory)")
        self.check_steps(steps, warmup)
        if self.kind == "piecewise":
            return _every_step(steps, peak=peak, warmup=0, min_frac=0.0, schedule="piecewise",
                               points=self.points)
        if self.kind == "csv-lr":
            import pandas as pd
            table = pd.read_csv(self.source).sort_values("step")
            return np.interp(np.arange(steps), table["step"].to_numpy(float), table["lr"].to_numpy(float))
        warm = default_warmup(steps) if warmup is None else warmup
        return _every_step(steps, peak=peak, warmup=warm, min_frac=self.min_frac, schedule=self.kind,
                           cooldown_frac=self.cooldown_frac)


def per_step(spec: str, steps: int, *, peak: float, warmup: int | None = None) -> np.ndarray:
    """LR of every step 0..steps-1 of a schedule given as text (``Schedule``)."""
    return Schedule.parse(spec).per_step(steps, peak=peak, warmup=warmup)


def _every_step(steps: int, **schedule) -> np.ndarray:
    return np.array([lr_at(s, steps=steps, **schedule) for s in range(steps)])


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
