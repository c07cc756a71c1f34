"""FitResult: the immutable outcome of a fit, separate from the fitter (statsmodels/iminuit style).

It answers what every fit answers (fit/core/base.py: predict, optimal, their intervals from the bootstrap
draws, save and load), prints a summary, and round-trips through the versioned JSON file that
``scalinglab plan --law FIT.json`` reads back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ...errors import ScalingLabError
from ..core.base import FORMAT_MANY, FitBase, read_doc
from ..core.robust import percentile_interval
from ..laws import chinchilla_loss, chinchilla_optimal

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")


@dataclass(frozen=True, kw_only=True)
class FitResult(FitBase):
    """A fitted Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2).

    The bootstrap's budget ``flops`` (where ``ci`` holds N_opt, D_opt and L_opt) and how many of its
    resamples converged travel with the draws."""

    law: str = "chinchilla"
    approach: str = "3"
    n_points: int = -1  # the runs: one point each
    boot_flops: float | None = None
    boot_converged: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "params", {k: float(self.params[k]) for k in PARAM_NAMES})
        if self.n_points < 0:
            object.__setattr__(self, "n_points", self.n_runs)
        super().__post_init__()

    # -- the law --------------------------------------------------------------------------------------
    inputs = ("N", "D")
    form = "E + A/N^alpha + B/D^beta"

    @property
    def a(self) -> float:
        """Exponent of N_opt proportional to C^a: beta/(alpha+beta)."""
        return self.params["beta"] / (self.params["alpha"] + self.params["beta"])

    @property
    def b(self) -> float:
        """Exponent of D_opt proportional to C^b: alpha/(alpha+beta)."""
        return self.params["alpha"] / (self.params["alpha"] + self.params["beta"])

    def _law_fn(self, X, P):
        return chinchilla_loss(X["N"], X["D"], **{k: P[k] for k in PARAM_NAMES})

    def _allocate(self, C, P, given=None):
        """Closed form under C = 6ND (Hoffmann 2022, eq. 4)."""
        return chinchilla_optimal(C, A=P["A"], B=P["B"], alpha=P["alpha"], beta=P["beta"])

    # -- presentation -------------------------------------------------------------------------------
    def summary(self) -> str:
        """A text table: parameters with intervals, exponents, diagnostics."""
        level = f"{100 * self.level:g}% CI" if self.draws is not None else ""
        lines = [f"Chinchilla law, Approach {self.approach}: L(N, D) = E + A/N^alpha + B/D^beta",
                 f"  runs: {self.n_runs}   objective: {self.objective:.6g}   "
                 f"converged: {'yes' if self.converged else 'NO'}",
                 f"  {'':<8}{'value':>14}  {level}"]
        values = dict(self.params, a=self.a, b=self.b)
        for name, value in values.items():
            ci = self.ci.get(name)
            span = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
            lines.append(f"  {name:<8}{value:>14.6g}  {span}")
        if self.draws is not None and self.boot_flops:
            C = self.boot_flops
            n_opt, d_opt = self.optimal(C)
            lines.append(f"  at C = {C:.3g} FLOPs:")
            for name, value in (("N_opt", n_opt), ("D_opt", d_opt), ("L_opt", self.predict(n_opt, d_opt))):
                lo, hi = self.ci[name]
                lines.append(f"  {name:<8}{float(value):>14.6g}  [{lo:.4g}, {hi:.4g}]")
        d = self.diagnostics
        lines.append(f"  optimiser: {d.get('status', '?')}; |grad| = {d.get('grad_norm', float('nan')):.2e}"
                     f" (tol {d.get('grad_tol', float('nan')):.1e}); {d.get('n_agree', '?')} of "
                     f"{d.get('n_polished', '?')} best starts agree; {d.get('n_starts', '?')} starts")
        return "\n".join(lines + self._note_lines())

    def to_dict(self, *, draws: bool = True) -> dict:
        """JSON-ready dict: the DESIGN.md §6 keys first, then diagnostics, settings and bootstrap draws."""
        out = {"law": self.law, "approach": self.approach, "key": self.key, "form": self.form,
               "target": self.target, "inputs": list(self.inputs), "params": dict(self.params), "a": self.a,
               "b": self.b, "objective": self.objective, "n_runs": self.n_runs, "n_points": self.n_points,
               "converged": self.converged}
        return self._common_tail(out, draws, flops=self.boot_flops, n_converged=self.boot_converged)

    @classmethod
    def from_dict(cls, d: Mapping) -> "FitResult":
        bs = d.get("bootstrap") or {}
        fields = cls.fields_of(d | {"law": d.get("law", "chinchilla"), "approach": d.get("approach", "3")})
        if bs.get("draws") is not None and "seed" in bs:  # version 1 files kept the seed with the draws only
            fields["settings"] = {"seed": bs["seed"]} | dict(fields["settings"])
        return cls(**fields, boot_flops=bs.get("flops"), boot_converged=bs.get("n_converged"))

    @classmethod
    def load(cls, path: str | Path) -> "FitResult":
        """An Approach 3 fit from a file written by save() (or the Approach 3 fit of a file of several;
        any fit: fit/fitfile.py load_fit)."""
        doc = read_doc(Path(path))
        entries = [d for d in (doc["fits"] if doc["format"] == FORMAT_MANY else [doc])
                   if d.get("law", "chinchilla") == "chinchilla" and str(d.get("approach", "3")) == "3"]
        if len(entries) != 1:
            raise ScalingLabError(f"{path} holds no Chinchilla Approach 3 fit" if not entries else
                                  f"{path} holds several Chinchilla Approach 3 fits")
        try:
            return cls.from_dict(entries[0])
        except (KeyError, TypeError, ValueError) as exc:
            raise ScalingLabError(f"{path} is not a valid fit file: bad or missing field {exc}") from None


def derived_intervals(draws: np.ndarray, level: float, C: float) -> dict[str, tuple[float, float]]:
    """Intervals of N_opt, D_opt and L_opt at budget C from the bootstrap draws (columns PARAM_NAMES)."""
    E, A, B, alpha, beta = draws.T
    with np.errstate(all="ignore"):
        n_opt, d_opt = chinchilla_optimal(C, A=A, B=B, alpha=alpha, beta=beta)
        l_opt = chinchilla_loss(n_opt, d_opt, E=E, A=A, B=B, alpha=alpha, beta=beta)
    return {k: tuple(float(x) for x in percentile_interval(v, level))
            for k, v in (("N_opt", n_opt), ("D_opt", d_opt), ("L_opt", l_opt))}
