"""Fits a researcher can trust (issue 14): one interface, an honest convergence verdict, prediction
intervals, inputs that say what they mean, strict JSON. Each test fails on the old behaviour."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli.common import in_cli_terms
from scalinglab.errors import ScalingLabError
from scalinglab.fit import ChinchillaFit, laws
from scalinglab.fit.chinchilla.approach1_2 import approach1, approach2
from scalinglab.fit.core import table as runs_table
from scalinglab.fit.core.verdict import judge
from scalinglab.fit.every import fit_every, plan_fits
from scalinglab.fit.fitfile import load_fit, load_fits
from scalinglab.fit.kaplan import fit_bcrit, fit_kaplan
from scalinglab.jsonsafe import dumps
from scalinglab.predict import plan_budget, plan_point
from scalinglab.simulate import DEMO_TRUE, isoflop_runs

RNG = np.random.default_rng(14)


@pytest.fixture(autouse=True)
def _rng_from_its_seed():
    """Each test draws the same noise whatever ran before it (or alone, with -k)."""
    RNG.bit_generator.state = np.random.default_rng(14).bit_generator.state


def _rng(seed):
    return np.random.default_rng(seed)


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


# ---- the verdict -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params,kw,expect", [
    ({"E": 2e-43, "A": 1.0, "alpha": 0.3}, dict(irreducible="E", target_min=1.5), "vanished"),
    ({"alpha_D": 249.6}, dict(exponents=("alpha_D",)), "above 5"),
    ({"alpha": -0.2}, dict(exponents=("alpha",)), "not positive"),
    ({"alpha_N": 0.003}, dict(exponents=("alpha_N",)), "ran to 0"),
    ({"N_c": 1e250}, dict(scales=("N_c",)), "float limit"),
    ({"E": 5.0}, dict(irreducible="E", target_min=2.0, fixed={"E": 5.0}), "at or above the lowest"),
])
def test_each_degenerate_parameter_is_named(params, kw, expect):
    warnings = judge(params, **kw)
    assert len(warnings) == 1 and expect in warnings[0]


def test_degenerate_intervals_are_named():
    w = judge({"alpha_B": 0.3, "B_star": 1e4}, {"alpha_B": (4.969e8, 4.969e8), "B_star": (1e4, float("inf"))})
    assert any("zero width" in x for x in w) and any("unbounded" in x for x in w)
    assert judge({"N_c": 3e59}, {"N_c": (4.6e20, 4.7e88)}, scales=("N_c",))[0].startswith(
        "the bootstrap interval of N_c spans 68 decades")
    assert judge({"alpha": 0.3, "A": 400.0}, {"alpha": (0.28, 0.33), "A": (300.0, 500.0)},
                 exponents=("alpha",), scales=("A",)) == []


def test_a_fixed_E_above_every_loss_is_not_converged():
    runs = isoflop_runs(DEMO_TRUE, noise=0.005, seed=1)
    res = ChinchillaFit(fixed_E=5.0).fit(runs).result_
    assert runs["loss"].max() < 5.0
    assert not res.converged
    assert any("fixed E = 5 is at or above the lowest measured loss" in w for w in res.warnings)


def test_kaplan_with_E_on_a_pure_power_law_is_not_converged():
    """The default study's L(N,D)+E had E = 1e-72 with a zero-width interval and was called converged."""
    rng = _rng(5)
    N = np.exp(rng.uniform(np.log(1e6), np.log(1e9), 40))
    D = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 40))
    truth = dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    loss = laws.kaplan_loss_nd(N, D, **truth) * np.exp(rng.normal(0, 0.002, 40))
    t = pd.DataFrame({"N": N, "D": D, "loss": loss})
    pure = fit_kaplan(t, "L(N,D)", bootstrap=30)
    with_e = fit_kaplan(t, "L(N,D)", with_E=True, bootstrap=30)
    assert pure.converged
    assert with_e.params["E"] < 1e-3 * t["loss"].min()  # no floor in these runs: E runs to 0 ...
    assert not with_e.converged and any("vanished" in w for w in with_e.warnings)  # ... and says so


def test_a_flat_critical_batch_is_not_a_law():
    """B_crit constant in L gave alpha_B = 4.97e8 [4.969e8, 4.969e8] and converged: true."""
    L = np.linspace(2.0, 5.0, 40)
    t = pd.DataFrame({"run_id": np.repeat(list("abcd"), 10), "step": np.tile(np.arange(1, 11), 4) * 100.0,
                      "N": 1e8, "D": 1e9, "loss": L, "noise_scale": 3e4 * np.exp(RNG.normal(0, 1e-4, 40))})
    fit = fit_bcrit(t, transient=0.0, bootstrap=30)
    assert fit.params["alpha_B"] > 5
    assert not fit.converged and any("alpha_B" in w for w in fit.warnings)


def test_a_negative_allocation_exponent_is_refused_by_plan(tmp_path):
    """A fit whose N_opt falls with C was saved, and `plan` then died with TypeError: complex."""
    rows = []
    for C, n_best in ((1e18, 3e8), (1e19, 1e8), (1e20, 3e7)):  # N_opt falling as C grows
        for N in n_best * np.geomspace(0.25, 4, 7):
            rows.append({"N": N, "D": C / (6 * N), "C": C, "budget": C,
                         "loss": 2 + 0.1 * np.log(N / n_best) ** 2})
    fit = approach2(pd.DataFrame(rows))
    assert fit.params["a"] < 0 and not fit.converged
    path = fit.save(tmp_path / "a2.json")
    with pytest.raises(ScalingLabError, match="did not converge.*exponent a = .* is not positive"):
        plan_budget(load_fit(path), 1e21)


# ---- one interface, every law saved and planned ------------------------------------------------------------

def _curve_table():
    """Learning curves of an IsoFLOP-like family under a known Chinchilla law, with a noise scale."""
    rows = []
    law = {k: DEMO_TRUE[k] for k in ("E", "A", "B", "alpha", "beta")}
    for i, N in enumerate(np.geomspace(3e7, 3e9, 9)):
        for D in np.geomspace(1e8, 2e11, 40):
            loss = float(laws.chinchilla_loss(N, D, **law)) * math.exp(RNG.normal(0, 0.002))
            rows.append({"run_id": f"r{i}", "step": D / 1e6, "N": N, "D": D, "C": 6 * N * D, "loss": loss,
                         "noise_scale": 2e8 / loss ** (1 / 0.21) * math.exp(RNG.normal(0, 0.05))})
    return pd.DataFrame(rows)


def test_every_fit_saves_loads_and_answers_what_it_can(tmp_path):
    table = _curve_table()
    fits, _ = fit_every(table, plan_fits("all"),
                        approach3=lambda t: ChinchillaFit(bootstrap=20).fit(t).result_, bootstrap=20)
    fits.append(approach2(isoflop_runs(DEMO_TRUE, noise=0.005, seed=4), bootstrap=20))
    assert {f.key for f in fits} >= {"chinchilla:1", "chinchilla:2", "chinchilla:3", "kaplan:L(N,D)",
                                     "bcrit:noise scale"}
    for fit in fits:
        back = load_fit(fit.save(tmp_path / "f.json"))
        assert back.key == fit.key and dict(back.params) == dict(fit.params)
        assert back.n_runs == fit.n_runs and back.n_points == fit.n_points and back.converged == fit.converged
        if "optimal" in fit.answers:
            np.testing.assert_allclose(back.optimal(1e21), fit.optimal(1e21), rtol=1e-12)
            assert back.optimal_interval(1e21) == fit.optimal_interval(1e21)
            if fit.converged:
                assert plan_budget(back, 1e21)["n_params"] == pytest.approx(float(fit.optimal(1e21)[0]))
        else:
            with pytest.raises(ScalingLabError, match="cannot give a compute-optimal plan"):
                plan_budget(back, 1e21, allow_unconverged=True)
        if "loss" in fit.answers and set(fit.inputs) == {"N", "D"}:
            assert back.predict(N=1e9, D=2e10) == pytest.approx(float(fit.predict(1e9, 2e10)))
            assert plan_point(back, 1e9, 2e10, allow_unconverged=True)["loss"] == pytest.approx(
                float(fit.predict(N=1e9, D=2e10)))
        elif fit.target == "N_opt":
            with pytest.raises(ScalingLabError, match="allocation law"):
                back.predict(C=1e21)
            with pytest.raises(ScalingLabError, match="cannot give the loss of a model"):
                plan_point(back, 1e9, 2e10, allow_unconverged=True)
    # a file of several, as `fit --law all --out` writes: each fit found by its key
    from scalinglab.cli.fit import _save_many
    _save_many(tmp_path / "all.json", fits, [])
    assert [f.key for f in load_fits(tmp_path / "all.json")] == [f.key for f in fits]
    assert load_fit(tmp_path / "all.json").key == "chinchilla:3"
    assert load_fit(tmp_path / "all.json", "kaplan:L(N,D)").key == "kaplan:L(N,D)"
    with pytest.raises(ScalingLabError, match="choose one with `select` KEY") as err:
        load_fit(tmp_path / "all.json", "nope")
    assert "choose one with --fit KEY" in in_cli_terms(str(err.value), err.value.params)


def test_approach1_and_2_bands_are_bootstrap_bands_not_a_swung_exponent():
    table = _curve_table()
    fit = approach1(table, transient=0.0, bootstrap=40)
    C = np.geomspace(1e17, 1e22, 7)
    iv = fit.optimal_interval(C)
    lo, hi = iv["N_opt"]
    assert lo.shape == C.shape and np.all(hi > lo)  # width everywhere: no pivot of zero width
    n, _ = fit.optimal(C)
    assert np.all((lo <= n * 1.0001) & (n <= hi * 1.0001))
    assert fit.draws.shape == (len(fit.draws), 4) and fit.n_runs == 9 and fit.n_points == 1500
    assert "envelope" in fit.settings["points_are"]


def test_prediction_interval_adds_run_noise_and_takes_arrays():
    runs = isoflop_runs(DEMO_TRUE, noise=0.01, seed=2)
    res = ChinchillaFit(bootstrap=100).fit(runs).result_
    sd, source = res.noise_sd()
    assert source == "fit residuals" and 0.005 < sd < 0.02  # the simulated 1% noise
    N, D = np.array([1e9, 3e9]), np.array([2e10, 6e10])
    (clo, chi), (plo, phi) = res.predict_interval(N, D), res.predict_interval(N, D, kind="prediction")
    assert clo.shape == (2,) and np.all(plo < clo) and np.all(phi > chi)
    mid = res.predict(N, D)
    np.testing.assert_allclose(np.log(phi / mid), np.hypot(np.log(chi / mid), 1.959963984540054 * sd))
    assert res.predict_interval(1e9, 2e10) == (float(clo[0]), float(chi[0]))  # scalars stay scalars


def test_chinchilla_fit_follows_the_estimator_protocol():
    est = ChinchillaFit(bootstrap=10, delta=1e-2)
    params = est.get_params()
    assert params["bootstrap"] == 10 and params["delta"] == 1e-2 and "seed" in params
    twin = type(est)(**est.get_params(deep=False))  # what sklearn.base.clone does
    assert twin.get_params() == params and twin is not est
    assert est.set_params(seed=3) is est and est.seed == 3
    with pytest.raises(ScalingLabError, match="unknown ChinchillaFit setting"):
        est.set_params(nope=1)
    sklearn = pytest.importorskip("sklearn.base")
    assert sklearn.clone(est).get_params() == est.get_params()


# ---- inputs ------------------------------------------------------------------------------------------------

def _wandb_history(tmp_path):
    """A W&B history export: 14 runs x 12 logged steps, eval loss only at every other step."""
    rows = []
    law = {k: DEMO_TRUE[k] for k in ("E", "A", "B", "alpha", "beta")}
    for i, N in enumerate(np.geomspace(5e7, 2e9, 14)):
        for step in range(1, 13):
            D = step * 2e9
            loss = float(laws.chinchilla_loss(N, D, **law))
            rows.append({"name": f"run-{i}", "_step": step, "params": N, "tokens": D,
                         "train/loss": loss * 1.02, "eval/loss": loss if step % 2 == 0 else np.nan})
    path = tmp_path / "history.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_a_wandb_history_export_is_read_as_curves(tmp_path):
    runs, chosen = runs_table.load_runs(_wandb_history(tmp_path))
    assert chosen["run_id"] == "name" and chosen["step"] == "_step" and chosen["loss"] == "eval/loss"
    assert any("rows with no value in column eval/loss" in n for n in runs.input["notes"])  # not "a eval"
    res = ChinchillaFit().fit(runs).result_
    assert res.n_runs == 14  # curves: one final per run, not 168 independent rows


def test_units_in_flags_or_column_names_and_loss_in_bits(tmp_path):
    base = isoflop_runs(DEMO_TRUE, noise=0.0, seed=0)[["N", "D", "loss"]]
    ref = ChinchillaFit().fit(base).result_
    pd.DataFrame({"params_M": base["N"] / 1e6, "tokens_B": base["D"] / 1e9,
                  "loss_bits": base["loss"] / math.log(2)}).to_csv(tmp_path / "suffixed.csv", index=False)
    runs, _ = runs_table.load_runs(tmp_path / "suffixed.csv")
    assert runs.input["units"] == {"N": "m", "D": "b", "loss": "bits"}
    got = ChinchillaFit().fit(runs).result_
    assert got.params["A"] == pytest.approx(ref.params["A"], rel=1e-6)  # 480, not 3.89
    assert got.params["E"] == pytest.approx(ref.params["E"], rel=1e-6)
    pd.DataFrame({"n": base["N"] / 1e9, "d": base["D"] / 1e9, "loss": base["loss"]}).to_csv(
        tmp_path / "plain.csv", index=False)
    silent, _ = runs_table.load_runs(tmp_path / "plain.csv")
    assert any("`n_units`" in n for n in silent.input["notes"])  # millions are flagged
    assert any("`d_units`" in n for n in silent.input["notes"])
    flagged, _ = runs_table.load_runs(tmp_path / "plain.csv", n_units="B", d_units="B")
    assert flagged.frame["N"].to_numpy() == pytest.approx(base["N"].to_numpy())
    with pytest.raises(ScalingLabError, match="`n_units` must be one of"):
        runs_table.load_runs(tmp_path / "plain.csv", n_units="parsecs")


def test_validation_loss_is_preferred_and_c_far_from_6nd_is_flagged(tmp_path):
    t = isoflop_runs(DEMO_TRUE, noise=0.0, seed=0)
    t.assign(val_loss=t["loss"], loss=t["loss"] * 0.9, C=3 * t["C"]).to_csv(tmp_path / "r.csv", index=False)
    runs, chosen = runs_table.load_runs(tmp_path / "r.csv")
    assert chosen["loss"] == "val_loss"
    assert any("3x 6ND" in n for n in runs.input["notes"])


def test_non_finite_cells_are_named_in_plain_numbers(tmp_path):
    pd.DataFrame({"N": [1e6, 2e6, 3e6], "D": [1e8, 1e8, 1e8], "loss": [3.0, np.inf, 2.5]}).to_csv(
        tmp_path / "inf.csv", index=False)
    with pytest.raises(ScalingLabError) as err:
        runs_table.load_runs(tmp_path / "inf.csv")
    assert "np.float64" not in str(err.value) and "(inf)" in str(err.value)


# ---- strict JSON -------------------------------------------------------------------------------------------

def test_json_output_is_strict(tmp_path):
    assert _strict(dumps({"a": float("nan"), "b": [np.float64("inf"), 1.5], "c": np.int64(3)})) == \
        {"a": None, "b": [None, 1.5], "c": 3}
    res = ChinchillaFit().fit(isoflop_runs(DEMO_TRUE, noise=0.01, seed=3)).result_
    assert _strict(res.save(tmp_path / "f.json").read_text())["format"] == "scalinglab.fit"


def test_a_note_on_the_data_does_not_make_a_fit_degenerate():
    """Only the verdict decides `converged`; "no B_crit law: C used for C_min" is a note, not a defect."""
    fit = fit_kaplan(_curve_table(), "L(C)")
    assert any("no B_crit law" in w for w in fit.warnings)
    assert fit.converged


def test_fit_all_skips_laws_the_data_cannot_support_but_not_a_bad_table():
    """Issue 16: "this law cannot be fitted to these data" (NotFittable) is skipped with its reason; a user's
    bad table is the user's error, not 16 skipped laws."""
    from scalinglab.errors import NotFittable
    runs = isoflop_runs(DEMO_TRUE, noise=0.005, seed=6)
    fits, skipped = fit_every(runs, plan_fits("all"), approach3=lambda t: ChinchillaFit().fit(t).result_)
    assert {f.key for f in fits} >= {"chinchilla:2", "chinchilla:3", "kaplan:L(N,D)"}
    assert any(s["approach"] == "1" and "needs learning curves" in s["reason"] for s in skipped)
    bad = runs.assign(loss=runs["loss"].where(runs.index != 3, -1.0))
    with pytest.raises(ScalingLabError, match="column loss, row 4") as err:
        fit_every(bad, plan_fits("all"), approach3=lambda t: ChinchillaFit().fit(t).result_)
    assert not isinstance(err.value, NotFittable)


def test_a_fit_with_no_spare_data_is_not_converged_and_says_so():
    """DESIGN §10 (issue 29): Approach 2 through 2 IsoFLOP minima (a line through 2 points, objective ~0)
    and Kaplan's 4-parameter L(N, D) on 5 runs test nothing: not converged, the reason named."""
    from scalinglab.fit.chinchilla.approach1_2 import approach2
    from scalinglab.fit.kaplan import fit_kaplan
    from scalinglab.simulate import DEMO_TRUE, isoflop_runs
    two = approach2(isoflop_runs(DEMO_TRUE, budgets=[1e19, 1e20], sizes_per_budget=5, noise=0.002))
    assert two.n_points == 2 and not two.converged
    assert any("no spare data" in w for w in two.warnings)
    five = isoflop_runs(DEMO_TRUE, budgets=[1e19, 1e20], sizes_per_budget=5, noise=0.002).iloc[::2]
    kap = fit_kaplan(five, "L(N,D)")
    assert kap.n_points == 5 and not kap.converged
    assert any("no spare data" in w for w in kap.warnings)
    many = approach2(isoflop_runs(DEMO_TRUE, budgets=[1e18, 1e19, 1e20, 1e21], sizes_per_budget=7,
                                  noise=0.002))
    assert not any("no spare data" in w for w in many.warnings)


# the debug study's 7 grid runs (N, D, final val loss): its Approach 3 is degenerate (A unconstrained)
DEBUG_RUNS = pd.DataFrame({
    "N": [49040.0, 143568.0, 33088.0, 33088.0, 49040.0, 68064.0, 68064.0],
    "D": [285184.0, 275456.0, 1001472.0, 400896.0, 713216.0, 536064.0, 214528.0],
    "loss": [2.002380, 1.978628, 1.834979, 1.975329, 1.815275, 1.861771, 2.081474]})


def test_the_verdict_does_not_depend_on_whether_intervals_were_asked_for():
    """Issue 29: `fit` without --bootstrap called this fit converged (alpha 2.39); with one, A spans 100+
    decades. Every fit now judges the same VERDICT_DRAWS resamples, asked for or not."""
    bare = ChinchillaFit().fit(DEBUG_RUNS).result_
    asked = ChinchillaFit(bootstrap=300).fit(DEBUG_RUNS).result_
    assert not bare.converged and not asked.converged
    assert bare.warnings == asked.warnings and any("decades" in w for w in bare.warnings)
    assert bare.ci == {} and bare.draws is None  # no intervals shown that were not asked for
    assert asked.draws.shape == (300, 5)
    # the same holds for a law of the registry
    a, b = fit_kaplan(DEBUG_RUNS, "L(N,D)", bootstrap=0), fit_kaplan(DEBUG_RUNS, "L(N,D)", bootstrap=150)
    assert (a.converged, a.warnings) == (b.converged, b.warnings) and a.ci == {} and b.ci


def test_an_exponent_whose_interval_leaves_its_range_or_does_not_surround_it_is_not_converged():
    # Kaplan's alpha_N 1.62 [0.30, 6.83] (the interval reaches a step); Approach 1's a 0.6298 [0.0029,
    # 0.6298] (at the edge of its own interval, the lower bound at 0)
    w = judge({"alpha_N": 1.62}, {"alpha_N": (0.30, 6.83)}, exponents=("alpha_N",))
    assert len(w) == 1 and "reaches outside [0.01, 5]" in w[0]
    w = judge({"a": 0.6298}, {"a": (0.0029, 0.6298)}, exponents=("a",), exponent_range=(0.01, 1.0))
    assert len(w) == 1 and "alpha" not in w[0] and "[0.0029, 0.63]" in w[0]
    w = judge({"b": 0.457}, {"b": (0.457, 0.9975)}, exponents=("b",), exponent_range=(0.01, 1.0))
    assert len(w) == 1 and "edge of its own 95% bootstrap interval" in w[0]
    assert judge({"b": 0.5}, {"b": (0.45, 0.55)}, exponents=("b",), exponent_range=(0.01, 1.0)) == []


def test_every_not_converged_result_names_its_reason():
    from scalinglab.fit.core.lawfit import LawFit
    fit = LawFit(law="kaplan", approach="L(N)", form="(N_c/N)^alpha_N", params={"N_c": 1e13, "alpha_N": 0.07},
                 objective=1.0, n_runs=5, n_points=5, converged=False, diagnostics={"status": "ABNORMAL"})
    assert fit.warnings and "ABNORMAL" in fit.warnings[0]
    assert LawFit.from_dict(json.loads(dumps(fit.to_dict()))).warnings == fit.warnings


def test_an_allocation_law_plan_says_how_c_was_counted_and_that_its_loss_has_no_floor():
    """Issue 29 §2: Approach 2 was served as "C = 6ND" (its budgets were the runs' own FLOP count) and its
    L_opt = k_L C^-gamma as a loss without a word."""
    runs = isoflop_runs(DEMO_TRUE, budgets=[1e18, 3e18, 1e19, 3e19, 1e20], noise=0.003, seed=1)
    counted = runs.assign(**{c: runs[c] * 1.3 for c in ("C", "budget") if c in runs})  # counts 1.3x 6ND
    fit = approach2(counted)
    plan = plan_budget(fit, 1e21)
    six_nd = 6 * plan.n_params * plan.n_tokens
    assert "C as the fitted runs counted their FLOPs" in plan.flop_convention
    assert f"{six_nd:.4g}" in plan.flop_convention and abs(six_nd / 1e21 - 1 / 1.3) < 0.05
    assert any("pure power law with no irreducible term" in w for w in plan.warnings)
    # a loss law of N and D keeps C = 6ND and no such warning
    law3 = ChinchillaFit().fit(runs).result_
    p3 = plan_budget(law3, 1e21)
    assert p3.flop_convention.startswith("C = 6ND") and not any("pure power" in w for w in p3.warnings)


def test_a_fit_file_with_null_intervals_loads_and_plans(tmp_path):
    """Issue 30 R18: strict JSON writes a NaN bound as null; such a file was 'not a valid fit file'."""
    runs = isoflop_runs(DEMO_TRUE, budgets=[1e18, 1e19, 1e20], sizes_per_budget=6, noise=0.005, seed=3)
    fit = ChinchillaFit(bootstrap=30).fit(runs).result_
    doc = json.loads(fit.save(tmp_path / "ok.json").read_text())
    doc["ci"]["alpha"] = [None, None]
    doc["ci"]["N_opt"] = [1.0, None]
    doc["objective"] = None
    (tmp_path / "f.json").write_text(json.dumps(doc))
    back = load_fit(tmp_path / "f.json")
    assert "alpha" not in back.ci and "N_opt" not in back.ci and math.isnan(back.objective)
    assert back.params == fit.params
    assert plan_budget(back, 1e21).n_params == plan_budget(fit, 1e21).n_params
