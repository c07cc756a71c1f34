import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from scalinglab.fit import laws
from scalinglab.published import CHINCHILLA, KAPLAN


def test_kaplan_table2_sanity_value():
    L = laws.kaplan_loss_nd(1e8, 1e9, N_c=KAPLAN["nd_N_c"], D_c=KAPLAN["nd_D_c"],
                            alpha_N=KAPLAN["nd_alpha_N"], alpha_D=KAPLAN["nd_alpha_D"])
    assert round(float(L), 4) == 2.9567


def test_kaplan_nd_reduces_to_l_of_n_when_data_unlimited():
    L = laws.kaplan_loss_nd(1e9, 1e30, N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    assert float(L) == pytest.approx(float(laws.kaplan_loss_n(1e9, N_c=6.4e13, alpha_N=0.076)), rel=1e-9)


def test_kaplan_single_variable_laws_and_irreducible_term():
    assert float(laws.kaplan_loss_n(8.8e13, N_c=8.8e13, alpha_N=0.076)) == 1.0
    assert float(laws.kaplan_loss_d(5.4e13 / 2, D_c=5.4e13, alpha_D=0.095)) == pytest.approx(2 ** 0.095)
    assert float(laws.kaplan_loss_c(3.1e8, C_c=3.1e8, alpha_C=0.05, E=1.5)) == pytest.approx(2.5)
    ns = laws.kaplan_loss_ns(1e9, 1e4, N_c=8.8e13, S_c=2.1e3, alpha_N=0.076, alpha_S=0.76)
    assert float(ns) == pytest.approx((8.8e13 / 1e9) ** 0.076 + (2.1e3 / 1e4) ** 0.76)


def test_critical_batch_and_step_example_relations():
    b = laws.critical_batch_size(np.array([1.0, 2.0]), B_star=2e8, alpha_B=0.21)
    assert b[0] == pytest.approx(2e8) and b[1] == pytest.approx(2e8 / 2 ** (1 / 0.21))
    # at B = B_crit both the step and the example count are twice their minima (Kaplan eq. 5.4-5.5)
    assert float(laws.min_steps(100, 64, 64)) == 50
    assert float(laws.min_examples(100, 64, 64)) == 50
    assert float(laws.gradient_noise_scale(8.0, 2.0)) == 4.0


def test_data_constrained_limits():
    U = 1e9
    assert float(laws.data_constrained_tokens(U, 0, R_star=15.4)) == U
    assert float(laws.data_constrained_tokens(U, 1e6, R_star=15.4)) == pytest.approx(U * (1 + 15.4))
    one_more = float(laws.data_constrained_tokens(U, 1, R_star=15.4))
    assert U < one_more < 2 * U  # a repeated epoch is worth less than fresh data


def test_lse_form_equals_direct_form():
    N, D = np.geomspace(1e7, 1e11, 7), np.geomspace(1e9, 1e12, 7)
    p = CHINCHILLA
    lse = laws.chinchilla_lse_log_loss(np.log(N), np.log(D), a=np.log(p["A"]), b=np.log(p["B"]),
                                       e=np.log(p["E"]), alpha=p["alpha"], beta=p["beta"])
    np.testing.assert_allclose(np.exp(lse), laws.chinchilla_loss(N, D, **p), rtol=1e-12)


def _brute_force_optimum(C, p):
    """Minimise L(N, C/6N) along the IsoFLOP line numerically."""
    f = lambda logN: float(laws.chinchilla_loss(np.exp(logN), C / (6 * np.exp(logN)), **p))
    res = minimize_scalar(f, bounds=(np.log(1e3), np.log(C / 6 / 1e3)), method="bounded",
                          options={"xatol": 1e-12})
    return np.exp(res.x)


@pytest.mark.parametrize("p", [CHINCHILLA, {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37},
                               {"E": 2.0, "A": 1500.0, "B": 300.0, "alpha": 0.5, "beta": 0.25}])
@pytest.mark.parametrize("C", [1e19, 5.76e23, 1e26])
def test_closed_form_optimum_equals_brute_force(p, C):
    n_opt, d_opt = laws.chinchilla_optimal(C, A=p["A"], B=p["B"], alpha=p["alpha"], beta=p["beta"])
    assert float(n_opt * d_opt * 6) == pytest.approx(C, rel=1e-12)
    assert float(n_opt) == pytest.approx(_brute_force_optimum(C, p), rel=1e-6)


def test_a_wrong_allocation_fails_the_brute_force_check():
    """N/D = alpha*B/(beta*A) (a plausible-looking slip) misses the optimum by far more than 1e-6."""
    p, C = CHINCHILLA, 5.76e23
    ratio = p["alpha"] * p["B"] / (p["beta"] * p["A"])
    wrong_n = np.sqrt(C / 6 * ratio)
    assert abs(wrong_n / _brute_force_optimum(C, p) - 1) > 1e-2
