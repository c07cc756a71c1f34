"""FitResult: the immutable outcome of a fit, separate from the fitter (statsmodels/iminuit style).

It answers what every fit answers (fit/base.py: predict, optimal, their intervals from the bootstrap draws,
save and load), prints a summary, and round-trips through the versioned JSON file that
``scalinglab plan --law FIT.json`` reads back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..errors import ScalingLabError
from .base import FitBase
from .laws import chinchilla_loss, chinchilla_optimal

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")


def _frozen(mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, kw_only=True)
class Bootstrap:
    """Parameter draws from refits on resampled runs; intervals for any query come from these."""

    draws: np.ndarray  # (K, 5) in PARAM_NAMES order
    seed: int
    level: float
    flops: float  # the budget at which ci holds N_opt, D_opt, L_opt
    n_converged: int

    def __post_init__(self):
        self.draws.setflags(write=False)

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        tail = 100 * (1 - self.level) / 2
        lo, hi = np.nanpercentile(values, [tail, 100 - tail])
        return float(lo), float(hi)

    def columns(self) -> dict[str, np.ndarray]:
        return dict(zip(PARAM_NAMES, self.draws.T))


@dataclass(frozen=True, kw_only=True)
class FitResult(FitBase):
    """A fitted Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2)."""

    params: Mapping[str, float]
    objective: float
    n_runs: int
    converged: bool
    diagnostics: Mapping[str, object] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)
    ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    bootstrap: Bootstrap | None = None
    law: str = "chinchilla"
    approach: str = "3"

    def __post_init__(self):
        object.__setattr__(self, "params", _frozen({k: float(self.params[k]) for k in PARAM_NAMES}))
        object.__setattr__(self, "diagnostics", _frozen(self.diagnostics))
        object.__setattr__(self, "settings", _frozen(self.settings))
        object.__setattr__(self, "ci", _frozen({k: (float(v[0]), float(v[1])) for k, v in self.ci.items()}))

    # -- the law --------------------------------------------------------------------------------------
    inputs = ("N", "D")
    target = "loss"
    form = "E + A/N^alpha + B/D^beta"

    @property
    def a(self) -> float:
        """Exponent of N_opt proportional to C^a: beta/(alpha+beta)."""
        return self.params["beta"] / (self.params["alpha"] + self.params["beta"])

    @property
    def b(self) -> float:
        """Exponent of D_opt proportional to C^b: alpha/(alpha+beta)."""
        return self.params["alpha"] / (self.params["alpha"] + self.params["beta"])

    @property
    def n_points(self) -> int:
        return self.n_runs

    @property
    def draws(self) -> np.ndarray | None:
        return None if self.bootstrap is None else self.bootstrap.draws

    @property
    def level(self) -> float:
        return 0.95 if self.bootstrap is None else self.bootstrap.level

    def _law_fn(self, X, P):
        return chinchilla_loss(X["N"], X["D"], **{k: P[k] for k in PARAM_NAMES})

    def _allocate(self, C, P):
        """Closed form under C = 6ND (Hoffmann 2022, eq. 4)."""
        return chinchilla_optimal(C, A=P["A"], B=P["B"], alpha=P["alpha"], beta=P["beta"])

    # -- presentation -------------------------------------------------------------------------------
    def summary(self) -> str:
        """A text table: parameters with intervals, exponents, diagnostics."""
        level = f"{100 * self.bootstrap.level:g}% CI" if self.bootstrap else ""
        lines = [f"Chinchilla law, Approach {self.approach}: L(N, D) = E + A/N^alpha + B/D^beta",
                 f"  runs: {self.n_runs}   objective: {self.objective:.6g}   "
                 f"converged: {'yes' if self.converged else 'NO'}",
                 f"  {'':<8}{'value':>14}  {level}"]
        values = dict(self.params, a=self.a, b=self.b)
        for name, value in values.items():
            ci = self.ci.get(name)
            span = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
            lines.append(f"  {name:<8}{value:>14.6g}  {span}")
        if self.bootstrap is not None:
            C = self.bootstrap.flops
            n_opt, d_opt = self.optimal(C)
            lines.append(f"  at C = {C:.3g} FLOPs:")
            for name, value in (("N_opt", n_opt), ("D_opt", d_opt), ("L_opt", self.predict(n_opt, d_opt))):
                lo, hi = self.ci[name]
                lines.append(f"  {name:<8}{float(value):>14.6g}  [{lo:.4g}, {hi:.4g}]")
        d = self.diagnostics
        lines.append(f"  optimiser: {d.get('status', '?')}; |grad| = {d.get('grad_norm', float('nan')):.2e}"
                     f" (tol {d.get('grad_tol', float('nan')):.1e}); {d.get('n_agree', '?')} of "
                     f"{d.get('n_polished', '?')} best starts agree; {d.get('n_starts', '?')} starts")
        for warning in d.get("warnings", ()):
            lines.append(f"  warning: {warning}")
        for note in self.not_identified:
            lines.append(f"  not identified: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self, *, draws: bool = True) -> dict:
        """JSON-ready dict: the DESIGN.md §6 keys first, then diagnostics, settings and bootstrap draws."""
        out = {"law": self.law, "approach": self.approach, "key": self.key, "form": self.form,
               "target": self.target, "inputs": list(self.inputs), "params": dict(self.params), "a": self.a,
               "b": self.b, "objective": self.objective, "n_runs": self.n_runs, "n_points": self.n_points,
               "converged": self.converged}
        if self.ci:
            out["ci"] = {k: list(v) for k, v in self.ci.items()}
        out["warnings"] = list(self.warnings)
        out["not_identified"] = list(self.not_identified)
        out["diagnostics"] = _jsonable(dict(self.diagnostics))
        out["settings"] = _jsonable(dict(self.settings))
        if self.bootstrap is not None:
            bs = self.bootstrap
            out["bootstrap"] = {"n": int(len(bs.draws)), "seed": bs.seed, "level": bs.level,
                                "flops": bs.flops, "n_converged": bs.n_converged,
                                "columns": list(PARAM_NAMES)}
            if draws:
                out["bootstrap"]["draws"] = bs.draws.tolist()
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> "FitResult":
        bs = d.get("bootstrap")
        boot = None
        if bs is not None:
            boot = Bootstrap(draws=np.asarray(bs["draws"], dtype=float), seed=int(bs["seed"]),
                             level=float(bs["level"]), flops=float(bs["flops"]),
                             n_converged=int(bs["n_converged"]))
        return cls(params=d["params"], objective=float(d["objective"]), n_runs=int(d["n_runs"]),
                   converged=bool(d["converged"]), diagnostics=d.get("diagnostics", {}),
                   settings=d.get("settings", {}), ci=d.get("ci", {}), bootstrap=boot,
                   law=d.get("law", "chinchilla"), approach=str(d.get("approach", "3")))

    @classmethod
    def load(cls, path: str | Path) -> "FitResult":
        """An Approach 3 fit from a file written by save() (or the Approach 3 fit of a file of several)."""
        from .base import load_fit
        fit = load_fit(path, None)
        if not isinstance(fit, cls):
            raise ScalingLabError(f"{path} holds {fit.label}, not a Chinchilla Approach 3 fit")
        return fit


def derived_intervals(boot: Bootstrap, C: float) -> dict[str, tuple[float, float]]:
    """Intervals of N_opt, D_opt and L_opt at budget C from the bootstrap draws."""
    E, A, B, alpha, beta = boot.draws.T
    with np.errstate(all="ignore"):
        n_opt, d_opt = chinchilla_optimal(C, A=A, B=B, alpha=alpha, beta=beta)
        l_opt = chinchilla_loss(n_opt, d_opt, E=E, A=A, B=B, alpha=alpha, beta=beta)
    return {"N_opt": boot.interval(n_opt), "D_opt": boot.interval(d_opt), "L_opt": boot.interval(l_opt)}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
