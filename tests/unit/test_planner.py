"""The planner: IsoFLOP grids hit their budgets in one model family; ids stay stable; sweeps and repeats."""
import numpy as np
import pytest

from scalinglab.errors import ScalingLabError
from scalinglab.fit.laws import data_constrained_tokens
from scalinglab.model.accounting import ModelShape, flops_per_token, param_breakdown
from scalinglab.model.family import depth_for, family_shapes, shape_for_params
from scalinglab.plan.config import PRESETS, StudyConfig, load_study
from scalinglab.plan.grid import isoflop_grid, sweep_grid
from scalinglab.plan.spec import RunSpec


@pytest.mark.parametrize("preset", ["debug", "default", "data-constrained", "gpu-quick", "gpu-small"])
def test_isoflop_grid_hits_every_budget_within_one_step(preset):
    cfg = load_study(preset=preset)
    grid = isoflop_grid(cfg, 256)
    for C in cfg.budgets:
        specs = [s for b, s in grid if b == C]
        assert len({s.shape for s in specs}) == len(specs) >= 3
        for s in specs:
            step_flops = s.tokens_per_step * flops_per_token(s.shape, "chinchilla")
            assert abs(s.n_tokens * flops_per_token(s.shape, "chinchilla") - C) <= step_flops / 2 + 1
            assert s.steps >= cfg.min_steps
            assert s.shape.n_layer == depth_for(s.shape.d_model) >= 2  # one family


def test_family_is_one_shape_per_width_and_dense_at_the_small_end():
    shapes = family_shapes(256, 128)
    assert len({s.d_model for s in shapes}) == len(shapes)
    totals = [param_breakdown(s)["total"] for s in shapes if s.d_model < 128]
    assert max(b / a for a, b in zip(totals, totals[1:])) < 1.5
    assert shape_for_params(68_000, vocab_size=256, n_ctx=128).d_model == 48


def test_ids_are_stable_across_versions():
    """Golden ids from before unique_tokens/kind existed: old studies resume, old run dirs are found."""
    shape = ModelShape(n_layer=2, d_model=48, n_head=6, d_head=8, d_ff=192, vocab_size=256, n_ctx=128)
    assert RunSpec(shape=shape, n_tokens=2048 * 100, batch_size=16).run_id == "0614f6ef5a7d"
    assert StudyConfig(name="x").study_id == "a647cfbd33b0"
    repeated = RunSpec(shape=shape, n_tokens=2048 * 100, batch_size=16, unique_tokens=51_200)
    assert repeated.run_id != "0614f6ef5a7d" and repeated.n_epochs == pytest.approx(4.0)
    assert RunSpec.from_dict(repeated.to_dict()) == repeated


def test_data_constrained_preset_repeats_data():
    cfg = load_study(preset="data-constrained")
    epochs = [s.n_epochs for _, s in isoflop_grid(cfg, 256)]
    assert min(epochs) > 1.5 and max(epochs) > 8


def test_batch_sweep_grid_and_its_config_checks():
    cfg = load_study(preset="batch-sweep")
    grid = sweep_grid(cfg, 256)
    assert sorted(s.batch_size for _, s in grid) == list(cfg.batch_sizes)
    assert len({s.shape for _, s in grid}) == 1
    assert all(s.min_lr_frac == 1.0 and s.n_evals == 40 for _, s in grid)
    tokens = [s.n_tokens for _, s in grid]
    assert max(tokens) / min(tokens) < 1.05
    with pytest.raises(ScalingLabError, match="impossible value for batch_sizes"):
        StudyConfig(kind="batch-sweep", batch_sizes=(8, 16), sweep_params=1e5, sweep_tokens=1e6)
    with pytest.raises(ScalingLabError, match="impossible value for kind"):
        StudyConfig(kind="grid-search")
    assert set(PRESETS) >= {"debug", "default", "batch-sweep", "data-constrained", "gpu-small"}


def test_one_schedule_grammar_for_train_plan_and_a_study():
    """The text that names a schedule means the same LRs in `train --schedule` (a run's spec), in
    `plan --schedule` (per-step LRs) and in a study file (its config): issue 28."""
    import numpy as np

    from scalinglab.cli.train import schedule_fields
    from scalinglab.model.family import named_shape
    from scalinglab.plan.schedules import Schedule, of_run, per_step, warmup_of
    shape = named_shape("debug", n_ctx=64)
    for text in ("cosine", "cosine:min=0.2", "wsd", "wsd:cooldown=0.3,min=0.05", "constant",
                 "piecewise:0=0.1,10=1,60=1,120=0"):
        spec = RunSpec(shape=shape, n_tokens=120 * 16 * 64, batch_size=16,
                       **schedule_fields(text, None, None))
        want = per_step(text, spec.steps, peak=0.01, warmup=None if text.startswith("piecewise") else
                        warmup_of(spec))
        np.testing.assert_allclose(of_run(spec, 0.01), want, rtol=0, atol=0, err_msg=text)
    assert schedule_fields("wsd", 0.05, 0.3) == Schedule.parse("wsd:cooldown=0.3,min=0.05").run_fields()
    with pytest.raises(ScalingLabError, match="gives its own options"):
        schedule_fields("wsd:cooldown=0.3", None, 0.2)
    assert StudyConfig(schedule="wsd:cooldown=0.3").study_id == StudyConfig(schedule="wsd",
                                                                            cooldown_frac=0.3).study_id
    with pytest.raises(ScalingLabError, match="a study takes cosine, wsd or wsd:cooldown=F"):
        StudyConfig(schedule="wsd:min=0.1")


@pytest.mark.parametrize("args,words", [
    (["--schedule", "wsd", "--warmup", "-10"], "warm-up -10 must be between 0 and the run's 400 steps"),
    (["--schedule", "wsd", "--warmup", "400"], "warm-up 400 must be between 0"),
    (["--schedule", "piecewise:0=0,10=1,500=0"], "its points run to step 500, past the run's 400 steps"),
    (["--schedule", "wsd", "--steps", "1000000000000"], "at most 10,000,000"),
])
def test_a_schedule_that_does_not_fit_the_run_is_one_error_line(tmp_path, args, words):
    """Issue 30 R3/R16, issue 29 §4: silently accepted (or 18.8 GB of RSS for --steps 1e12) before."""
    from scalinglab.fit.curvelaws import Curve, fit_curves
    from scalinglab.fit.fitfile import write_fits
    from tests.cli_helpers import call
    steps = np.arange(10, 400, 10)
    lr = np.concatenate([np.linspace(0, 1e-3, 10), np.full(390, 1e-3)])
    fit = fit_curves([Curve("c", lr, steps, 3.0 + 2.0 * (1 + steps / 50.0) ** -0.5)], name="N=1")
    write_fits(tmp_path / "mpl.json", [fit], [])
    steps_given = [] if "--steps" in args else ["--steps", "400"]
    r = call("plan", "--law", tmp_path / "mpl.json", *steps_given, "--peak-lr", "1e-3", "--allow-unconverged",
             *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr


def test_train_refuses_what_it_would_silently_ignore(tmp_path):
    from tests.cli_helpers import call
    r = call("train", "--fsdp", "--out", tmp_path / "a")
    assert r.returncode == 2 and "--fsdp shards the model over the processes of one run" in r.stderr
    r = call("train", "--tokens", "20000", "--schedule", "piecewise:0=0,10=1,5000=0", "--out", tmp_path / "b")
    assert r.returncode == 2 and "past the run's" in r.stderr
    assert not (tmp_path / "b" / "config.json").exists()


def test_the_gpu_quick_preset_is_the_default_at_100x_and_says_what_repetition_costs():
    """Issue 31: gpu-quick is the default's design at 100x its budgets and held-out budget, models ~20x
    the default's; its grid runs stay within 2.25 epochs of the embedded corpus' 23.5M training tokens, and
    the repetition costs the longest of them under 3% of its tokens by Muennighoff et al.'s D' (R_D* 15.4;
    docs/gpu.md turns that into ~0.2% of the loss)."""
    cfg, default = load_study(None, "gpu-quick"), load_study(None, "default")
    grid = isoflop_grid(cfg, 256)
    longest = max(s.n_tokens for _, s in grid)
    assert 2.0 * 23.54e6 < longest <= 2.25 * 23.54e6 and cfg.precision == "bf16"
    effective = data_constrained_tokens(23.54e6, longest / 23.54e6 - 1, R_star=15.4)
    assert 0.97 < effective / longest < 0.98
    sizes = {param_breakdown(s.shape)["total"] for _, s in grid}
    assert min(s.steps for _, s in grid) >= cfg.min_steps == 200 and cfg.batch_size * cfg.n_ctx == 12288
    base = {param_breakdown(s.shape)["total"] for _, s in isoflop_grid(default, 256)}
    assert 15 < max(sizes) / max(base) < 25 and 10 < min(sizes) / min(base) < 20 and len(sizes) == 7
    assert [c / d for c, d in zip(cfg.budgets, default.budgets)] == pytest.approx([100] * 6)
    assert cfg.holdout_factor * max(cfg.budgets) / (default.holdout_factor * max(default.budgets)) == 100
