"""A whole-curve law's fit: the result every fit's interface gives (core/base.py), for a loss curve under a
schedule."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ...errors import ScalingLabError
from ..core.base import FitBase, draws_of
from ..core.robust import percentile_interval, z
from .curve import FORMS, LABELS, LAWS, Curve


@dataclass(frozen=True, kw_only=True)
class CurveFit(FitBase):
    """A whole-curve law fitted to one model size's curves, through the interface every fit has
    (fit/core/base.py: save, load_fit, summary, to_dict, intervals from bootstrap draws).

    ``approach`` names the model size (``N=1.2e+06``, a size column's value, or ``all``). It answers
    ``predict(schedule, steps)``: the loss at ``steps`` of a run with per-step LRs ``schedule`` (or a
    Curve), and ``predict_interval`` for it; ``settings["area"]`` is the range of S1 (the schedule's area)
    it saw, and a prediction past it extrapolates."""

    law: str
    approach: str
    params: Mapping[str, float]
    objective: float
    n_runs: int
    n_points: int
    converged: bool
    ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    diagnostics: Mapping[str, object] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)
    level: float = 0.95
    inputs = ("schedule", "step")
    target = "loss"

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType({k: float(v) for k, v in self.params.items()}))
        object.__setattr__(self, "ci", MappingProxyType({k: (float(a), float(b)) for k, (a, b) in
                                                         self.ci.items()}))
        object.__setattr__(self, "diagnostics", MappingProxyType(dict(self.diagnostics)))
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))
        if self.draws is not None:
            draws = np.asarray(self.draws, dtype=float).reshape(-1, len(self.params))
            draws.setflags(write=False)
            object.__setattr__(self, "draws", draws)

    @property
    def form(self) -> str:
        return FORMS[self.law]

    @property
    def label(self) -> str:
        return f"{LABELS[self.law]} ({self.approach})"

    @property
    def answers(self) -> tuple[str, ...]:
        return ("curve",)

    def _curve(self, schedule, steps) -> Curve:
        if isinstance(schedule, Curve):
            if steps is None:
                return schedule
            schedule = schedule.lr
        lr = np.asarray(schedule, dtype=float)
        at = np.arange(1, len(lr)) if steps is None else np.asarray(steps, dtype=int)
        return Curve("schedule", lr, at, np.ones(len(at)))

    def predict(self, schedule, steps=None) -> np.ndarray:
        """The loss at ``steps`` (0-based steps of ``schedule``; all of them past step 0 if None) of a run
        whose per-step learning rates are ``schedule`` (an array, or a Curve: its measured steps)."""
        return LAWS[self.law][0](self.params, self._curve(schedule, steps))

    def predict_interval(self, schedule, steps=None, kind: str = "confidence"):
        """Bootstrap percentile interval (lo, hi arrays) of ``predict``; ``kind="prediction"`` adds the
        points' scatter about the law (in log, in quadrature). None without bootstrap draws."""
        if kind not in ("confidence", "prediction"):
            raise ScalingLabError(f"interval kind must be confidence or prediction, not {kind!r}")
        if self.draws is None or not len(self.draws):
            return None
        curve = self._curve(schedule, steps)
        mid = LAWS[self.law][0](self.params, curve)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample whose law fails there is NaN
            values = np.stack([LAWS[self.law][0](row, curve) for row in self.draws])
            values = np.where(values > 0, values, np.nan)
            lo, hi = percentile_interval(values, self.level)
            if kind == "prediction":
                spread = z(self.level) * self.noise_sd()[0]
                lo = mid * np.exp(-np.hypot(np.maximum(np.log(mid / lo), 0.0), spread))
                hi = mid * np.exp(np.hypot(np.maximum(np.log(hi / mid), 0.0), spread))
        return lo, hi

    def optimal(self, C):
        raise ScalingLabError(f"{self.label} predicts a loss curve under a schedule; it does not "
                              "allocate compute")

    def to_dict(self, *, draws: bool = True) -> dict:
        out = {"law": self.law, "approach": self.approach, "key": self.key, "form": self.form,
               "target": "loss", "inputs": list(self.inputs), "params": dict(self.params),
               "objective": self.objective, "n_runs": self.n_runs, "n_points": self.n_points,
               "converged": self.converged}
        return self._common_tail(out, draws, resampled="segments")

    @classmethod
    def from_dict(cls, d: Mapping) -> "CurveFit":
        if d.get("law") not in LAWS:
            raise ScalingLabError(f"unknown whole-curve law {d.get('law')!r}")
        bs = d.get("bootstrap") or {}
        return cls(law=d["law"], approach=str(d["approach"]), params=d["params"],
                   objective=float(d["objective"]), n_runs=int(d["n_runs"]), n_points=int(d["n_points"]),
                   converged=bool(d["converged"]), ci=d.get("ci", {}),
                   diagnostics=dict(d.get("diagnostics", {})) | {"warnings": list(d.get("warnings", ()))},
                   settings=d.get("settings", {}), draws=draws_of(d), level=float(bs.get("level", 0.95)))

    def summary(self) -> str:
        lines = [f"{self.label}: {self.form}",
                 f"  curves: {self.n_runs}   points: {self.n_points}   objective: {self.objective:.6g}   "
                 f"converged: {'yes' if self.converged else 'NO'}"]
        lines += self._param_lines()
        for name, err in self.diagnostics.get("mean_abs_error", {}).items():
            lines.append(f"  curve {name}: mean |error| {100 * err:.3f}%")
        return "\n".join(lines + self._note_lines())

