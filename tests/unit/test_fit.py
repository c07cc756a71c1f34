import dataclasses

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ScalingLabError
from scalinglab.fit import ChinchillaFit
from scalinglab.fit.chinchilla.objectives import (
    FreeMask,
    RobustLoss,
    exact_hessian_single,
    objective_and_grad_single,
)
from scalinglab.simulate import isoflop_runs

from ..conftest import TRUE_SETS


@pytest.mark.parametrize("name", list(TRUE_SETS))
def test_recovers_known_parameters_from_noisy_runs(sim_runs, name):
    truth = TRUE_SETS[name]
    res = ChinchillaFit().fit(sim_runs[name]).result_
    assert res.converged and res.n_runs == 150
    assert res.params["E"] == pytest.approx(truth["E"], rel=0.05)
    assert res.params["alpha"] == pytest.approx(truth["alpha"], abs=0.04)
    assert res.params["beta"] == pytest.approx(truth["beta"], abs=0.04)
    a_true = truth["beta"] / (truth["alpha"] + truth["beta"])
    assert res.a == pytest.approx(a_true, abs=0.03)
    a, b = truth["alpha"], truth["beta"]
    n_true = (a * truth["A"] / (b * truth["B"])) ** (1 / (a + b))
    n_fit, _ = res.optimal(6.0)  # optimal(6) = G: the frontier's coefficient
    assert float(n_fit) == pytest.approx(n_true, rel=0.5)


def test_noise_free_runs_recover_parameters_exactly():
    truth = TRUE_SETS["steep-N"]
    runs = isoflop_runs(truth, budgets=np.geomspace(1e18, 1e21, 6), sizes_per_budget=9, noise=0.0)
    res = ChinchillaFit().fit(runs).result_
    for k, v in truth.items():
        assert res.params[k] == pytest.approx(v, rel=1e-4), k


def test_fixed_E_is_held_and_mse_loss_works(sim_runs):
    runs = sim_runs["chinchilla"]
    res = ChinchillaFit(fixed_E=1.69).fit(runs).result_
    assert res.params["E"] == 1.69 and res.diagnostics["n_starts"] == 900
    assert res.params["alpha"] == pytest.approx(0.34, abs=0.03)
    mse = ChinchillaFit(loss="mse").fit(runs).result_
    assert mse.converged and mse.params["beta"] == pytest.approx(0.28, abs=0.04)


def test_asymmetric_loss_puts_law_below_most_runs(sim_runs):
    runs = sim_runs["epoch"]
    res = ChinchillaFit(loss="asymmetric", tau=0.9).fit(runs).result_
    above = np.mean(res.predict(runs.N, runs.D) > runs.loss)
    assert above < 0.3


def test_zero_weight_equals_dropping_the_run(sim_runs):
    runs = sim_runs["chinchilla"].copy()
    runs.loc[3, "loss"] *= 1.5  # an outlier
    w = np.ones(len(runs))
    w[3] = 0.0
    weighted = ChinchillaFit().fit(runs, sample_weight=w).result_
    dropped = ChinchillaFit().fit(runs.drop(index=3)).result_
    for k in weighted.params:
        assert weighted.params[k] == pytest.approx(dropped.params[k], rel=1e-5)


def test_custom_grid_and_sum_not_mean(sim_runs):
    runs = sim_runs["chinchilla"]
    small = ChinchillaFit(grid={"alpha": [0.5], "beta": [0.5], "e": [0.0]}).fit(runs).result_
    full = ChinchillaFit().fit(runs).result_
    assert small.diagnostics["n_starts"] == 36
    assert small.objective == pytest.approx(full.objective, rel=1e-9)
    # the objective is a sum over runs: doubling every run doubles it
    doubled = ChinchillaFit().fit(pd.concat([runs, runs], ignore_index=True).drop(columns="run_id")).result_
    assert doubled.objective == pytest.approx(2 * full.objective, rel=1e-6)


def test_unidentified_law_is_not_called_converged():
    N = np.geomspace(1e7, 1e10, 30)
    D = np.full(30, 1e10)  # every run on the same D: B and beta are not identified
    L = (1.69 + 406.4 / N ** 0.34 + 410.7 / D ** 0.28) * np.exp(np.random.default_rng(0).normal(0, 0.01, 30))
    res = ChinchillaFit().fit(pd.DataFrame({"N": N, "D": D, "loss": L})).result_
    assert not res.converged
    assert any("not identified" in w for w in res.diagnostics["warnings"])


def test_exact_hessian_matches_gradient_differences():
    rng = np.random.default_rng(3)
    x = np.log(np.geomspace(1e7, 1e10, 50))
    y = np.log(np.geomspace(1e9, 1e11, 50))[rng.permutation(50)]
    logL = np.log(1.7 + 400 * np.exp(-0.34 * x) + 410 * np.exp(-0.28 * y)) + rng.normal(0, 0.02, 50)
    loss, w = RobustLoss(name="mse"), np.ones(50)
    free = FreeMask(np.ones(5, bool), np.zeros(5))
    theta = np.array([6.0, 0.34, 6.0, 0.28, 0.53])
    H = exact_hessian_single(theta, x, y, logL, w, loss, free)
    for k in range(5):
        e = np.zeros(5)
        e[k] = 1e-6
        fd = (objective_and_grad_single(theta + e, x, y, logL, w, loss, free)[1]
              - objective_and_grad_single(theta - e, x, y, logL, w, loss, free)[1]) / 2e-6
        np.testing.assert_allclose(H[:, k], fd, rtol=1e-5, atol=1e-7)


def test_result_is_immutable(sim_runs):
    res = ChinchillaFit().fit(sim_runs["chinchilla"]).result_
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.objective = 0.0
    with pytest.raises(TypeError):
        res.params["E"] = 0.0


def test_fitter_follows_the_sklearn_contract(sim_runs):
    fitter = ChinchillaFit(delta=1e-3, seed=3)
    assert not hasattr(fitter, "result_") and fitter.delta == 1e-3
    assert fitter.fit(sim_runs["chinchilla"]) is fitter and hasattr(fitter, "result_")


def test_too_few_runs_and_bad_settings_are_named():
    runs = pd.DataFrame({"N": [1e8, 2e8, 3e8, 4e8, 5e8], "D": [1e9] * 5, "loss": [3.0, 2.9, 2.8, 2.7, 2.6]})
    with pytest.raises(ScalingLabError, match="need more runs than the 5 free parameters"):
        ChinchillaFit().fit(runs)
    with pytest.raises(ScalingLabError, match="fixed_E must be positive"):
        ChinchillaFit(fixed_E=-1).fit(runs)
    with pytest.raises(ScalingLabError, match="unknown grid parameter"):
        ChinchillaFit(grid={"gamma": [1]}).fit(pd.concat([runs] * 2))


def test_weight_column_is_used_as_sample_weight(sim_runs):
    runs = sim_runs["chinchilla"].copy()
    w = np.linspace(0.2, 3.0, len(runs))
    by_column = ChinchillaFit().fit(runs.assign(weight=w)).result_
    by_argument = ChinchillaFit().fit(runs, sample_weight=w).result_
    assert dict(by_column.params) == pytest.approx(dict(by_argument.params), rel=1e-9)
    with pytest.raises(ScalingLabError, match="column weight, row 1: value -1 must not be negative"):
        ChinchillaFit().fit(runs.assign(weight=-1.0))


def test_degenerate_basin_does_not_crowd_out_the_interior_optimum():
    """With a small E, many starts slide to the E -> 0 limit first; the fit must still find E."""
    truth = dict(TRUE_SETS["chinchilla"], E=0.1)
    runs = isoflop_runs(truth, sizes_per_budget=20, noise=0.01, seed=7)
    res = ChinchillaFit().fit(runs).result_
    assert res.converged and res.diagnostics["n_basins"] >= 2
    assert 0.02 < res.params["E"] < 0.3
    assert res.objective == pytest.approx(0.00100187602236,
                                          rel=1e-9)  # scipy-from-every-start: 0.00100187602262


def test_a_vanishing_E_is_not_called_converged_even_when_the_optimiser_stopped():
    """DESIGN §10: E at 0 (a pure power law in these runs) is a degenerate fit, whatever the optimiser
    says."""
    rng = np.random.default_rng(6)
    N = np.exp(rng.uniform(np.log(1e4), np.log(1e7), 25))
    D = np.exp(rng.uniform(np.log(1e5), np.log(1e9), 25))
    L = (30.0 / N ** 0.3 + 60.0 / D ** 0.25) * np.exp(rng.normal(0, 0.003, 25))
    res = ChinchillaFit(bootstrap=50).fit(pd.DataFrame({"N": N, "D": D, "loss": L})).result_
    assert res.diagnostics["grad_norm"] <= res.diagnostics["grad_tol"]  # the optimiser did stop
    assert res.params["E"] < 1e-6 and not res.converged
    assert any("E = " in w and "vanished" in w for w in res.diagnostics["warnings"])
    assert "converged: NO" in res.summary()
