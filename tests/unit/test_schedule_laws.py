"""Whole-curve laws (fit/curvelaws/): the formulas against Luo et al.'s published curves and
parameters, recovery of known parameters from synthetic curves, and a constant schedule flagged."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ScalingLabError
from scalinglab.fit.curvelaws import (
    MULTI_POWER,
    Curve,
    fit_curves,
    lr_annealing,
    multi_power,
    relative_errors,
)
from scalinglab.fit.fitfile import load_fit, load_fits

REF = Path(__file__).resolve().parents[3] / "shared" / "reference-data" / "mpl2025_loss_curves.csv"
PEAK, END, WARMUP = 3e-4, 3e-5, 2160  # the schedules of Luo et al.'s runs (reference-data/SOURCE.md)
# Luo et al. 2025's fitted MPL parameters (their repository's src/config.py), MULTI_POWER order
PUBLISHED = {"25M": (3.04045406, 0.52468604, 0.50786857, 363.78751622, 2.06560812, 0.58279013, 0.64142257),
             "100M": (2.6514477, 0.60115152, 0.45295811, 437.9464276, 2.13245612, 0.59785199, 0.65523644),
             "400M": (2.37474466, 0.65421216, 0.42878731, 523.42464371, 2.02462735, 0.59350493, 0.63472457)}


def luo_schedule(name: str) -> np.ndarray:
    """Per-step LR of one of Luo et al.'s schedules (SOURCE.md): linear warm-up 0 -> 3e-4 over 2,160 steps;
    cosine_T to 3e-5 at T; constant_T; wsd (geometric) and wsdld (linear) decay 20k -> 24k to 3e-5;
    wsdcon_X: 3e-4 to 8k, then X * 1e-5 to 16k."""
    kind, _, arg = name.partition("_")
    warm = np.linspace(0.0, PEAK, WARMUP)
    if kind in ("cosine", "constant"):
        s = np.arange(WARMUP, int(arg))
        body = (END + 0.5 * (PEAK - END) * (1 + np.cos(np.pi * (s - WARMUP) / (int(arg) - WARMUP)))
                if kind == "cosine" else np.full(len(s), PEAK))
    elif kind == "wsdcon":
        body = np.concatenate([np.full(8000 - WARMUP, PEAK), np.full(8000, int(arg) * 1e-5)])
    else:
        f = (np.arange(20000, 24000) - 20000) / 4000
        decay = PEAK ** (1 - f) * END ** f if kind == "wsd" else PEAK * (1 - f) + END * f
        body = np.concatenate([np.full(20000 - WARMUP, PEAK), decay])
    return np.concatenate([warm, body])


@pytest.fixture(scope="module")
def luo_curves():
    if not REF.exists():
        pytest.skip("needs ../shared/reference-data")
    table = pd.read_csv(REF)
    out = {}
    for (model, name, split), g in table.groupby(["model", "schedule", "split"]):
        lr = luo_schedule(name)
        g = g[g.step < len(lr)]
        assert np.allclose(lr[g.step.to_numpy()], g.lr.to_numpy(), rtol=1e-9, atol=1e-12), name
        out.setdefault(model, {})[name] = (Curve(name, lr, g.step.to_numpy(), g.loss.to_numpy()), split)
    return out


def _mean_abs_error(predict, curves) -> float:
    """Luo et al.'s PredE: each curve's mean |relative error|, averaged over the curves."""
    return float(np.mean([np.abs(predict(c) / c.loss - 1).mean() for c in curves]))


@pytest.mark.parametrize("model,published_mean", [("25M", 0.00110), ("100M", 0.00142), ("400M", 0.00168)])
def test_the_published_parameters_give_the_published_held_out_error(luo_curves, model, published_mean):
    """Our Multi-Power Law with Luo et al.'s parameters on their six held-out schedules: the mean
    relative error their README reports (0.110 / 0.142 / 0.168 %)."""
    held = [c for c, split in luo_curves[model].values() if split == "heldout"]
    assert len(held) == 6
    got = _mean_abs_error(lambda c: multi_power(PUBLISHED[model], c), held)
    assert got == pytest.approx(published_mean, abs=0.00002)


def test_fitted_on_three_schedules_it_predicts_six_unseen_ones(luo_curves):
    """Fitted here on Luo et al.'s three fit schedules of the 25M model (cosine, constant, a two-stage WSD),
    the six held-out schedules (up to 72k steps) are predicted about as well as with their parameters."""
    curves = luo_curves["25M"]
    fit = fit_curves([c for c, split in curves.values() if split == "fit"], "multi-power")
    assert fit.converged and not fit.warnings
    held = [c for c, split in curves.values() if split == "heldout"]
    assert _mean_abs_error(fit.predict, held) < 0.002
    assert max(np.abs(relative_errors(fit, c)).max() for c in held) < 0.02


def test_the_published_curves_through_the_cli_are_converged_and_plan_without_a_flag(tmp_path):
    """Luo et al.'s three fit schedules of the 25M model as a user has them (rows every ~128 steps after
    the warm-up): C runs to the edge of its range where the objective is flat, which is `not identified`,
    not a degenerate fit: converged, and `plan --schedule` predicts the 72k-step cosine run without
    --allow-unconverged, about as accurately as Luo et al.'s own parameters (0.4%)."""
    if not REF.exists():
        pytest.skip("needs ../shared/reference-data")
    import json

    from ..cli_helpers import call
    table = pd.read_csv(REF)
    table = table[table["model"] == "25M"]
    table[table["split"] == "fit"].rename(columns={"schedule": "run"}).to_csv(tmp_path / "c.csv", index=False)
    r = call("fit", tmp_path / "c.csv", "--law", "multi-power", "--json", "--out", tmp_path / "f.json")
    assert r.returncode == 0, r.stderr
    fit = json.loads(r.stdout)
    assert fit["converged"] and fit["warnings"] == []
    assert any(note.startswith("C ran to the edge") for note in fit["not_identified"])
    r = call("plan", "--law", tmp_path / "f.json", "--schedule", "cosine:min=0.1", "--steps", 72000,
             "--peak-lr", 3e-4, "--warmup", 2160, "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    measured = table[table["schedule"] == "cosine_72000"].sort_values("step")["loss"].iloc[-1]
    assert plan["final_loss"] == pytest.approx(measured, rel=0.004)
    assert any("not identified" in w for w in plan["warnings"])


def _synthetic(law_fn, params, noise, seed):
    rng = np.random.default_rng(seed)
    warm = np.linspace(0, 1e-3, 100)
    cosine = 1e-4 + 0.5 * 9e-4 * (1 + np.cos(np.pi * np.arange(4900) / 4900))
    schedules = {"cosine": np.concatenate([warm, cosine]),
                 "wsd": np.concatenate([warm, np.full(3900, 1e-3), np.linspace(1e-3, 1e-5, 1000)]),
                 "constant": np.concatenate([warm, np.full(4900, 1e-3)])}
    curves = []
    for name, lr in schedules.items():
        steps = np.arange(150, len(lr), 50)
        clean = law_fn(params, Curve(name, lr, steps, np.ones(len(steps))))
        curves.append(Curve(name, lr, steps, clean * np.exp(noise * rng.standard_normal(len(steps)))))
    return curves


def test_known_multi_power_parameters_are_recovered_from_noisy_curves():
    truth = dict(zip(MULTI_POWER, (2.5, 0.6, 0.45, 400.0, 2.0, 0.6, 0.6)))
    curves = _synthetic(multi_power, truth, noise=0.001, seed=3)
    fit = fit_curves(curves[:2], "multi-power")  # cosine and WSD; constant held out
    assert fit.converged
    assert fit.params["L0"] == pytest.approx(truth["L0"], rel=0.05)
    assert np.abs(relative_errors(fit, curves[2])).mean() < 0.003  # the unseen constant schedule


def test_bootstrap_intervals_cover_the_true_parameters_and_round_trip_through_the_fit_file(tmp_path):
    """Curves from known parameters plus noise: each parameter inside its 95% segment-bootstrap interval;
    the fit file every law writes holds the draws, and the loaded fit predicts the same curve and
    interval for a schedule it never saw (the constant one: inside the interval)."""
    truth = dict(zip(MULTI_POWER, (2.5, 0.6, 0.45, 400.0, 2.0, 0.6, 0.6)))
    curves = _synthetic(multi_power, truth, noise=0.001, seed=7)
    fit = fit_curves(curves[:2], "multi-power", name="N=1e8", bootstrap=25, seed=1)
    assert fit.converged and fit.key == "multi-power:N=1e8" and fit.diagnostics["bootstrap_refits"] == 25
    for name in ("L0", "A", "alpha", "B"):
        lo, hi = fit.ci[name]
        assert lo <= truth[name] <= hi, (name, lo, hi)
        assert hi / lo < 2.0, name  # an interval, not the whole range
    fit.save(tmp_path / "fit.json")
    back = load_fit(tmp_path / "fit.json")
    assert back.params == fit.params and back.ci == fit.ci and np.array_equal(back.draws, fit.draws)
    unseen = _synthetic(multi_power, truth, noise=0.0, seed=7)[2]
    np.testing.assert_allclose(back.predict(unseen), fit.predict(unseen), rtol=1e-12)
    lo, hi = back.predict_interval(unseen.lr, unseen.steps)
    assert np.all(lo < hi)
    plo, phi = back.predict_interval(unseen.lr, unseen.steps, kind="prediction")
    assert np.all(plo <= lo + 1e-12) and np.all(phi >= hi - 1e-12)  # the points' scatter added
    assert plo[-1] <= unseen.loss[-1] <= phi[-1]  # a new run's final loss: inside
    assert "95% CI" in back.summary() and "curve cosine: mean |error|" in back.summary()
    with pytest.raises(ScalingLabError, match="does not allocate compute"):
        back.optimal(1e20)


def test_known_lr_annealing_parameters_are_recovered():
    truth = {"L0": 2.5, "A": 0.6, "alpha": 0.45, "C": 0.5}
    curves = _synthetic(lr_annealing, truth, noise=0.0005, seed=4)
    # S2 is the annealing area: 0 through the warm-up (its LR rises are not annealing, issue 29 §2), then
    # it only grows while the LR falls
    for c in curves:
        every = Curve(c.name, c.lr, np.arange(1, len(c.lr)), np.ones(len(c.lr) - 1))
        s2 = every.annealing_area()
        assert np.all(s2[:99] == 0) and np.all(np.diff(s2) >= -1e-12)
        assert (c.name == "constant") == (s2[-1] == 0)  # constant after warm-up: no annealing at all
    fit = fit_curves(curves, "lr-annealing")
    assert fit.converged
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=0.1), k


def test_one_constant_schedule_cannot_identify_the_decay_term():
    truth = dict(zip(MULTI_POWER, (2.5, 0.6, 0.45, 400.0, 2.0, 0.6, 0.6)))
    constant = _synthetic(multi_power, truth, noise=0.001, seed=5)[2]
    fit = fit_curves([constant], "multi-power")
    assert not fit.converged
    assert any("not identified" in w for w in fit.warnings)


def test_fit_reads_a_curve_table_per_model_size(tmp_path):
    """`scalinglab fit CURVES.csv --law multi-power --size-col model --json --out`: one fit per size from
    rows run, step, lr, loss (the per-step LR interpolated between rows), each curve's in-sample error."""
    import json

    from ..cli_helpers import call
    truth = dict(zip(MULTI_POWER, (2.5, 0.6, 0.45, 400.0, 2.0, 0.6, 0.6)))
    rows = []
    for model, shift in (("small", 0.3), ("large", 0.0)):
        for c in _synthetic(multi_power, truth | {"L0": truth["L0"] + shift}, noise=0.0005, seed=6)[:2]:
            rows += [{"model": model, "run": c.name, "step": s, "lr": c.lr[s], "loss": v}
                     for s, v in zip(c.steps, c.loss)]
    pd.DataFrame(rows).to_csv(tmp_path / "curves.csv", index=False)
    r = call("fit", tmp_path / "curves.csv", "--law", "multi-power", "--size-col", "model", "--json",
             "--out", tmp_path / "fit.json")
    assert r.returncode == 0, r.stderr
    got = {f["approach"]: f for f in json.loads(r.stdout)["fits"]}
    saved = load_fits(tmp_path / "fit.json")  # the fit file every law writes, read back as fits
    assert {f.key for f in saved} == {"multi-power:model=small", "multi-power:model=large"}
    assert [f.to_dict(draws=False) for f in saved] == list(got.values())
    assert got["model=small"]["params"]["L0"] == pytest.approx(2.8, rel=0.05)
    assert got["model=large"]["params"]["L0"] == pytest.approx(2.5, rel=0.05)
    assert all(e < 0.002 for f in got.values() for e in f["diagnostics"]["mean_abs_error"].values())
    assert "linear warm-up from 0 assumed" in r.stderr  # rows start after the warm-up
    # the saved fit predicts a schedule it never saw (the constant one): `plan --schedule`
    r = call("plan", "--law", tmp_path / "fit.json", "--size", "large", "--schedule", "constant", "--steps",
             5000, "--peak-lr", 1e-3, "--warmup", 100, "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    unseen = _synthetic(multi_power, truth, noise=0.0, seed=6)[2]
    assert plan["final_loss"] == pytest.approx(unseen.loss[-1], rel=0.005)
    assert plan["curve"][-1]["step"] == 5000 and len(plan["curve"]) == 200
    r = call("plan", "--law", tmp_path / "fit.json", "--schedule", "constant", "--steps", 5000,
             "--peak-lr", 1e-3)
    assert r.returncode == 2 and "choose one with --size" in r.stderr


@pytest.mark.parametrize("csv,message", [
    ("run,step,loss\na,1,3.0\n", "missing lr"),
    ("run,step,lr,loss\na,1,0.001,3.0\na,2,0.001,-1\na,3,0.001,2.9\n", "impossible step, lr or loss"),
    ("run,step,lr,loss\na,1,0.001,3.0\na,2,0.001,2.9\n", "a curve needs at least 3"),
])
def test_a_bad_curve_table_is_one_error_line(tmp_path, csv, message):
    from ..cli_helpers import call
    (tmp_path / "c.csv").write_text(csv)
    r = call("fit", tmp_path / "c.csv", "--law", "lr-annealing")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_a_final_loss_seen_from_half_a_wsd_run_needs_the_decay_of_other_runs():
    """estimate_final: half a WSD run (not yet cooling down) cannot tell its end on its own (a warning, not
    converged); with the law fitted to other runs of the same size (a cosine run, a shorter WSD run) it
    can."""
    from scalinglab.fit.curvelaws import estimate_final
    truth = dict(zip(MULTI_POWER, (2.5, 0.6, 0.45, 400.0, 2.0, 0.6, 0.6)))
    cosine, wsd, _ = _synthetic(multi_power, truth, noise=0.001, seed=8)
    lr = np.concatenate([wsd.lr[:100], np.full(2900, 1e-3), np.linspace(1e-3, 1e-5, 1000)])  # 4,000 steps
    at = np.arange(150, 4000, 50)
    clean = multi_power(truth, Curve("wsd4k", lr, at, np.ones(len(at))))
    noise = np.exp(0.001 * np.random.default_rng(9).standard_normal(len(at)))
    shorter = Curve("wsd4k", lr, at, clean * noise)
    half = wsd.steps < len(wsd.lr) // 2
    part = Curve("wsd", wsd.lr, wsd.steps[half], wsd.loss[half])
    alone = estimate_final(part, bootstrap=0)
    assert not alone["converged"] and any("not identified" in w for w in alone["warnings"])
    reference = fit_curves([cosine, shorter], "multi-power", name="others")
    told = estimate_final(part, reference=reference, bootstrap=20)
    true_final = multi_power(truth, Curve("x", wsd.lr, [len(wsd.lr) - 1], [1.0]))[0]
    assert told["converged"] and told["decay_from"] == "multi-power:others"
    assert told["fraction"] == pytest.approx(0.5, abs=0.02)
    assert told["final"] == pytest.approx(true_final, rel=0.003)
    lo, hi = told["interval"]
    assert lo < told["final"] < hi and lo <= true_final <= hi
    # this 5,000-step run anneals past the area of its reference's curves (4,950 and 4,000 steps): the
    # estimate stands (the law extrapolates well here) and says it extrapolates (issue 29 §2)
    assert any("extrapolates multi-power:others" in w for w in told["warnings"])
    from scalinglab.train.progress import estimate_text
    assert "past its reference's range" in estimate_text({"estimate": told})
    inside = estimate_final(Curve("wsd4k", shorter.lr, shorter.steps[:30], shorter.loss[:30]),
                            reference=reference, bootstrap=0)
    assert not any("extrapolates" in w for w in inside["warnings"])


def test_piecewise_schedules_from_text_and_csv_and_their_errors(tmp_path):
    """`piecewise:STEP=FRAC,...` and a CSV of step,lr_frac: straight lines between the points, times the
    peak, held flat after the last; bad points are one clear error."""
    from scalinglab.plan.schedules import per_step
    lr = per_step("piecewise:0=0,10=1,20=1,30=0", 40, peak=0.01)
    assert lr[0] == 0 and lr[5] == pytest.approx(0.005) and lr[15] == 0.01 and lr[25] == pytest.approx(0.005)
    assert lr[35] == 0  # held after the last point
    (tmp_path / "s.csv").write_text("step,lr_frac\n0,0\n10,1\n20,1\n30,0\n")
    np.testing.assert_allclose(per_step(str(tmp_path / "s.csv"), 40, peak=0.01), lr)
    for bad, message in (("piecewise:0=0,10=2", r"fractions of the peak LR in \[0, 1\]"),
                         ("piecewise:10=1,5=0", "increasing steps"),
                         ("piecewise:0=x", "is not STEP=FRACTION"),
                         ("piecewise:0=1", "2 or more points")):
        with pytest.raises(ScalingLabError, match=message):
            per_step(bad, 40, peak=0.01)


def test_fewer_points_than_parameters_is_never_a_converged_fit():
    """Four points through seven parameters fit exactly (objective ~0): flagged, not converged."""
    truth = dict(zip(MULTI_POWER, (2.5, 0.6, 0.45, 400.0, 2.0, 0.6, 0.6)))
    cosine = _synthetic(multi_power, truth, noise=0.0, seed=10)[0]
    few = Curve("few", cosine.lr, cosine.steps[::25], cosine.loss[::25])
    assert len(few.steps) == 4
    fit = fit_curves([few], "multi-power")
    assert not fit.converged and any("4 point(s) for 7 free parameters" in w for w in fit.warnings)


def test_an_estimate_is_due_once_per_mark_and_a_late_one_counts_for_the_next_mark():
    from scalinglab.train.loop import estimate_due
    assert not estimate_due([], 0.29) and estimate_due([], 0.3)
    assert not estimate_due([{"fraction": 0.3}], 0.49) and estimate_due([{"fraction": 0.3}], 0.5)
    # the first estimate came late (past 120 s of training) at 74.97%: none again a step later at 75%
    assert estimate_due([], 0.7497) and not estimate_due([{"fraction": 0.7497}], 0.7538)
    assert not estimate_due([{"fraction": 0.3}, {"fraction": 0.5}, {"fraction": 0.75}], 0.99)


def test_degenerate_curve_tables_are_one_error_or_not_converged():
    """Issue 30 R14/R15: every LR at 0 was a LinAlgError traceback; a constant or a rising loss gave a
    converged LR-annealing law with no warning."""
    lr = np.concatenate([np.linspace(0, 1e-3, 100), np.full(900, 1e-3)])
    steps = np.arange(150, 1000, 50)
    with pytest.raises(ScalingLabError, match="the learning rate is 0 up to its first measured step"):
        Curve("zero", np.zeros(1000), steps, np.full(len(steps), 3.0))
    for name, loss in (("constant", np.full(len(steps), 3.0)), ("rising", np.linspace(3.0, 3.5, len(steps)))):
        for law in ("lr-annealing", "multi-power"):
            fit = fit_curves([Curve(name, lr, steps, loss)], law)
            assert not fit.converged and any("the loss does not fall" in w for w in fit.warnings), (name, law)
