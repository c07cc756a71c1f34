"""Published scaling laws, each constant with its citation; the ``plan`` command's library.

Names: ``chinchilla`` (Approach 3's law, rounded, as printed in the paper), ``chinchilla-unrounded``,
``chinchilla-20`` (Hoffmann's Approaches 1 and 2 as the rule of ~20 tokens per parameter), ``epoch``,
``kaplan``. Approach 3's constants put 5.76e23 FLOPs at ~32B parameters, while Approaches 1 and 2 (and the
Chinchilla model itself, 70B on 1.4T tokens) put it at ~70B: the two are different answers of the same
paper, and ``plan`` names which one it gives.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .errors import ScalingLabError
from .fit.laws import PF_DAY, chinchilla_loss, chinchilla_optimal, kaplan_loss_nd, kaplan_n_opt

HOFFMANN_2022 = "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, arXiv 2203.15556"
KAPLAN_2020 = "Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv 2001.08361"
BESIROGLU_2024 = "Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt, arXiv 2404.10102"

# Hoffmann 2022 §3.3 (Approach 3), as printed (rounded).
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# The same fit at full precision (DESIGN.md §5).
CHINCHILLA_UNROUNDED = {"E": 1.693374, "A": 406.401, "B": 410.7228, "alpha": 0.33917084, "beta": 0.2849083}
# Besiroglu et al. 2024: their refit of Hoffmann's Approach-3 data (summed Huber loss).
EPOCH = {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
# Kaplan 2020: Table 2 (L(N, D) eq. 1.5 constants), eqs. (1.1)-(1.4), (1.6), Fig. 14 / eq. (1.7).
KAPLAN = {
    "alpha_N": 0.076, "N_c": 8.8e13,             # L(N), eq. (1.1)
    "alpha_D": 0.095, "D_c": 5.4e13,             # L(D), eq. (1.2)
    "alpha_C": 0.050, "C_c_pf_days": 3.1e8,      # L(C_min), eq. (1.3), C in PF-days
    "alpha_B": 0.21, "B_star": 2e8,              # B_crit(L), eq. (1.4), tokens
    "alpha_S": 0.76, "S_c": 2.1e3,               # L(N, S_min), eq. (1.6)
    "nd_alpha_N": 0.076, "nd_alpha_D": 0.103,    # L(N, D), eq. (1.5), Table 2
    "nd_N_c": 6.4e13, "nd_D_c": 1.8e13,
    "n_opt_coef": 1.3e9, "n_opt_exponent": 0.73,  # N_opt = 1.3e9 C_min^0.73 (PF-days), Fig. 14
}


@dataclass(frozen=True, kw_only=True)
class PublishedLaw:
    """A published law: loss(N, D) and the compute-optimal (N, D) for a budget, with its source.

    ``n_params_kind`` says which parameter count N is (Chinchilla: all parameters; Kaplan: non-embedding).
    It implements the interface every law has (fit/core/base.py ScalingLaw).
    """

    name: str
    kind: str  # "chinchilla" (eq. 2), "kaplan" (eq. 1.5 and Fig. 14), "rule" (D_opt = r N_opt)
    params: Mapping[str, float]
    citation: str
    n_params_kind: str
    vocab_size: int
    note: str = ""
    ci: Mapping = field(default_factory=dict)
    settings: Mapping = field(default_factory=dict)  # no data range: nothing is extrapolated from here

    # a published law is taken as printed: converged, no intervals, no noise model
    inputs = ("N", "D")
    converged = True
    warnings: tuple[str, ...] = ()
    not_identified: tuple[str, ...] = ()
    level = 0.95

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        known = {"vocab_size": self.vocab_size, "vocab_from": "the law's"}
        object.__setattr__(self, "settings", MappingProxyType(known | dict(self.settings)))

    @property
    def answers(self) -> tuple[str, ...]:
        return ("optimal",) if self.kind == "rule" else ("loss", "optimal")

    @property
    def form(self) -> str:
        return {"chinchilla": "Approach 3: L = E + A/N^alpha + B/D^beta",
                "kaplan": "L(N, D) eq. 1.5",
                "rule": f"D_opt = {self.params.get('tokens_per_param', 0):g} N_opt, C = 6ND"}[self.kind]

    def predict(self, N, D) -> np.ndarray:
        if self.kind == "rule":
            raise ScalingLabError(f"{self.name} is an allocation rule: it gives N_opt and D_opt, not a loss")
        p = self.params
        if self.kind == "chinchilla":
            return chinchilla_loss(N, D, **p)
        return kaplan_loss_nd(N, D, N_c=p["nd_N_c"], D_c=p["nd_D_c"], alpha_N=p["nd_alpha_N"],
                              alpha_D=p["nd_alpha_D"])

    def optimal(self, C, **given) -> tuple[np.ndarray, np.ndarray]:
        if given:
            raise ScalingLabError(f"{self.name} is a law of N and D: it takes no {', '.join(given)} (the "
                                  "data-constrained law, fitted, plans for given unique tokens)",
                                  params=("unique_tokens",))
        p = self.params
        if self.kind == "rule":  # C = 6 N D with D = r N
            n_opt = np.sqrt(np.asarray(C, float) / (6.0 * p["tokens_per_param"]))
            return n_opt, p["tokens_per_param"] * n_opt
        if self.kind == "chinchilla":
            return chinchilla_optimal(C, A=p["A"], B=p["B"], alpha=p["alpha"], beta=p["beta"])
        n_opt = kaplan_n_opt(np.asarray(C, float) / PF_DAY, N_e=p["n_opt_coef"], exponent=p["n_opt_exponent"])
        return n_opt, np.asarray(C, float) / (6.0 * n_opt)

    def optimal_loss(self, C):
        return None

    def predict_interval(self, N, D, kind: str = "confidence"):
        return None

    def optimal_interval(self, C, **given):
        return None

    def noise_sd(self) -> tuple[float, str]:
        return 0.0, "none"

    def extrapolation_sd(self, X) -> float:
        return 0.0


LAWS = {
    "chinchilla": PublishedLaw(name="chinchilla", kind="chinchilla", params=CHINCHILLA,
                               citation=HOFFMANN_2022 + ", §3.3", n_params_kind="total",
                               vocab_size=32000,
                               note="Hoffmann 2022 Approach 3, constants as printed (rounded): ~32B "
                                    "parameters at 5.76e23 FLOPs. Approaches 1 and 2 (and the Chinchilla "
                                    "model, 70B on 1.4T tokens) give ~20 tokens per parameter: the law "
                                    "chinchilla-20"),
    "chinchilla-20": PublishedLaw(name="chinchilla-20", kind="rule", params={"tokens_per_param": 20.0},
                                  citation=HOFFMANN_2022 + ", §3.1-3.2, Table 3 (~20 tokens per parameter)",
                                  n_params_kind="total", vocab_size=32000,
                                  note="Hoffmann 2022 Approaches 1 and 2 as a rule: D_opt = 20 N_opt "
                                       "(Table 3: 67B, 1.5T tokens at 5.76e23 FLOPs); no loss"),
    "chinchilla-unrounded": PublishedLaw(name="chinchilla-unrounded", kind="chinchilla",
                                         params=CHINCHILLA_UNROUNDED, citation=HOFFMANN_2022 + ", §D.2",
                                         n_params_kind="total", vocab_size=32000,
                                         note="Hoffmann 2022 Approach 3 at full precision"),
    "epoch": PublishedLaw(name="epoch", kind="chinchilla", params=EPOCH,
                          citation=BESIROGLU_2024, n_params_kind="total", vocab_size=32000,
                          note="refit of Hoffmann's Approach-3 data"),
    "kaplan": PublishedLaw(name="kaplan", kind="kaplan", params=KAPLAN,
                           citation=KAPLAN_2020 + ", eq. (1.5), Table 2; N_opt from Fig. 14",
                           n_params_kind="nonembed", vocab_size=50257,
                           note="loss from L(N, D) eq. 1.5; allocation N_opt = 1.3e9 (C/PF-day)^0.73, "
                                "D = C/(6N)"),
}


def published_law(name: str) -> PublishedLaw:
    try:
        return LAWS[name]
    except KeyError:
        raise ScalingLabError(f"unknown law {name!r}: choose one of {', '.join(LAWS)}, "
                              "or give a saved fit (a FIT.json file) or a study directory") from None
