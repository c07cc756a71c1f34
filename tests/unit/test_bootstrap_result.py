import json

import numpy as np
import pytest

from scalinglab.errors import ScalingLabError
from scalinglab.fit import ChinchillaFit, FitResult
from scalinglab.simulate import isoflop_runs

from ..conftest import TRUE_SETS


@pytest.fixture(scope="module")
def boot_fit(sim_runs):
    return ChinchillaFit(bootstrap=400, seed=11).fit(sim_runs["epoch"]).result_


def test_bootstrap_intervals_cover_the_truth(boot_fit):
    truth = TRUE_SETS["epoch"]
    truth = dict(truth, a=truth["beta"] / (truth["alpha"] + truth["beta"]),
                 b=truth["alpha"] / (truth["alpha"] + truth["beta"]))
    for k, v in truth.items():
        lo, hi = boot_fit.ci[k]
        assert lo <= v <= hi, (k, lo, v, hi)
        assert lo <= (boot_fit.params.get(k) or getattr(boot_fit, k)) <= hi
    assert boot_fit.boot_converged >= 0.95 * 400


def test_bootstrap_interval_of_the_optimum_covers_true_allocation(boot_fit):
    t = TRUE_SETS["epoch"]
    C = boot_fit.boot_flops
    G = (t["alpha"] * t["A"] / (t["beta"] * t["B"])) ** (1 / (t["alpha"] + t["beta"]))
    n_true = G * (C / 6) ** (t["beta"] / (t["alpha"] + t["beta"]))
    lo, hi = boot_fit.ci["N_opt"]
    assert lo <= n_true <= hi
    assert boot_fit.ci["L_opt"][0] < float(boot_fit.predict(*boot_fit.optimal(C))) < boot_fit.ci["L_opt"][1]


def test_bootstrap_is_seeded(sim_runs):
    runs = sim_runs["chinchilla"]
    one = ChinchillaFit(bootstrap=50, seed=5).fit(runs).result_
    two = ChinchillaFit(bootstrap=50, seed=5).fit(runs).result_
    other = ChinchillaFit(bootstrap=50, seed=6).fit(runs).result_
    np.testing.assert_array_equal(one.draws, two.draws)
    assert not np.array_equal(one.draws, other.draws)


def test_bootstrap_coverage_over_repeated_experiments():
    """Across independent simulated studies, the 90% interval of alpha covers the truth most of the time."""
    truth = TRUE_SETS["steep-N"]
    hits = 0
    for seed in range(8):
        runs = isoflop_runs(truth, budgets=np.geomspace(1e18, 1e21, 6), sizes_per_budget=9, noise=0.02,
                            seed=100 + seed)
        lo, hi = ChinchillaFit(bootstrap=200, ci_level=0.9, seed=seed).fit(runs).result_.ci["alpha"]
        hits += lo <= truth["alpha"] <= hi
    assert hits >= 6


def test_round_trip_through_json_file(tmp_path, boot_fit):
    path = boot_fit.save(tmp_path / "fit.json")
    back = FitResult.load(path)
    assert dict(back.params) == dict(boot_fit.params)
    assert back.ci == boot_fit.ci and back.converged == boot_fit.converged
    np.testing.assert_array_equal(back.draws, boot_fit.draws)
    assert back.predict_interval(1e9, 2e10) == boot_fit.predict_interval(1e9, 2e10)
    doc = json.loads(path.read_text())
    assert doc["format"] == "scalinglab.fit" and doc["version"] == 2
    assert {"law", "approach", "params", "a", "b", "objective", "n_runs", "converged", "ci"} <= set(doc)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_corrupt_and_foreign_files_are_named(tmp_path, boot_fit):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "scalinglab.fit", "vers')
    with pytest.raises(ScalingLabError, match="corrupt JSON"):
        FitResult.load(bad)
    doc = boot_fit.to_dict(draws=False) | {"format": "scalinglab.fit", "version": 99}
    bad.write_text(json.dumps(doc))
    with pytest.raises(ScalingLabError, match="version 99"):
        FitResult.load(bad)
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ScalingLabError, match="not a scalinglab fit file"):
        FitResult.load(bad)


def test_summary_names_every_parameter_and_interval(boot_fit):
    text = boot_fit.summary()
    for name in ("E", "A", "B", "alpha", "beta", "N_opt", "D_opt", "L_opt", "95% CI", "converged: yes"):
        assert name in text
    lo, hi = boot_fit.ci["alpha"]
    assert f"[{lo:.4g}, {hi:.4g}]" in text
