"""Golden text of each result type's summary() (FitResult, LawFit, CurveFit): what a user reads, pinned.
The results are built from fixed values (from_dict, the path a saved fit takes), so the text is the same on
every machine; a change to it must be made here on purpose."""
import numpy as np

from scalinglab.fit.chinchilla.result import FitResult
from scalinglab.fit.registry import fit_from_dict

APPROACH3 = """\
Chinchilla law, Approach 3: L(N, D) = E + A/N^alpha + B/D^beta
  runs: 40   objective: 0.0123   converged: yes
                   value  95% CI
  E                 1.69  [1.6, 1.8]
  A                406.4  [300, 500]
  B                410.7  [350, 480]
  alpha             0.34  [0.3, 0.38]
  beta              0.28  [0.25, 0.31]
  a             0.451613  [0.4, 0.5]
  b             0.548387  [0.5, 0.6]
  at C = 1e+21 FLOPs:
  N_opt      1.82422e+09  [1e+09, 2e+09]
  D_opt      9.13634e+10  [2e+10, 3e+10]
  L_opt          2.32888  [2, 2.1]
  optimiser: CONVERGENCE; |grad| = 1.00e-09 (tol 1.0e-06); 5 of 5 best starts agree; 4500 starts
  not identified: E: flat"""

KAPLAN = """\
Kaplan L(N): (N_c/N)^alpha_N
  runs: 7   points: 7 (points)   objective: 0.5   converged: NO
  N_c            8.8e+13  [1e+13, 1e+14] 95% CI
  alpha_N          0.076  [0.07, 0.08] 95% CI
  warning: exponent small"""

CURVE = """\
Multi-Power Law (N=1e+06): L0 + A*S1^-alpha - B*sum_k (lr_{k-1} - lr_k)*(1 - (C*lr_k^-gamma*S_k + 1)^-beta)
  curves: 2   points: 100   objective: 0.0001   converged: yes
  L0                 2.5
  A                  0.6
  alpha             0.45
  B                  400
  C                    2
  beta               0.6
  gamma              0.6
  curve cosine: mean |error| 0.100%
  curve wsd: mean |error| 0.200%"""


def test_approach3_summary():
    ci = {"E": (1.6, 1.8), "A": (300.0, 500.0), "B": (350.0, 480.0), "alpha": (0.3, 0.38),
          "beta": (0.25, 0.31), "a": (0.4, 0.5), "b": (0.5, 0.6), "N_opt": (1e9, 2e9), "D_opt": (2e10, 3e10),
          "L_opt": (2.0, 2.1)}
    diag = {"status": "CONVERGENCE", "grad_norm": 1e-9, "grad_tol": 1e-6, "n_agree": 5, "n_polished": 5,
            "n_starts": 4500, "warnings": [], "not_identified": ["E: flat"]}
    fit = FitResult(params={"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}, objective=0.0123,
                    n_runs=40, converged=True, ci=ci, draws=np.ones((3, 5)), boot_flops=1e21,
                    boot_converged=3, diagnostics=diag)
    assert fit.summary() == APPROACH3
    assert fit_from_dict(fit.to_dict()).summary() == APPROACH3  # saved and read back: the same text


def test_law_fit_summary():
    fit = fit_from_dict({"law": "kaplan", "approach": "L(N)", "form": "(N_c/N)^alpha_N", "inputs": ["N"],
                         "params": {"N_c": 8.8e13, "alpha_N": 0.076}, "objective": 0.5, "n_runs": 7,
                         "n_points": 7, "converged": False, "warnings": ["exponent small"],
                         "ci": {"N_c": [1e13, 1e14], "alpha_N": [0.07, 0.08]}})
    assert fit.summary() == KAPLAN
    assert fit.predict(8.8e13) == 1.0  # its law came back with it (fit/registry.py)


def test_curve_fit_summary():
    fit = fit_from_dict({"law": "multi-power", "approach": "N=1e+06", "objective": 1e-4, "n_runs": 2,
                         "params": {"L0": 2.5, "A": 0.6, "alpha": 0.45, "B": 400.0, "C": 2.0, "beta": 0.6,
                                    "gamma": 0.6},
                         "n_points": 100, "converged": True,
                         "diagnostics": {"mean_abs_error": {"cosine": 0.001, "wsd": 0.002}}})
    assert fit.summary() == CURVE
