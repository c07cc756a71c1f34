"""The study design: one model family everywhere, the WSD N x D grid, seed repeats, the held-out run at
the fitted optimum of its exact-FLOP budget, the prediction interval."""
import math

import pytest

from scalinglab.model.accounting import flops_per_token, param_breakdown
from scalinglab.model.family import shape_for_params
from scalinglab.plan.config import StudyConfig, load_study
from scalinglab.plan.grid import isoflop_grid, noise_specs, optimum_in_family, wsd_grid
from scalinglab.predict import plan_budget
from scalinglab.published import published_law
from scalinglab.study import branch_plan


def test_one_family_for_study_train_and_plan():
    import argparse

    from scalinglab.cli import train as train_cli
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    studied = {spec.shape for _, spec in isoflop_grid(load_study(preset="default"), 256)}
    assert len(studied) >= 5
    for shape in studied:  # every shape the study trains is the one `train --params N` builds for its N
        n = param_breakdown(shape)["total"]
        assert shape == shape_for_params(n, vocab_size=256, n_ctx=128)
        assert shape.positions == "rope" and shape.n_layer >= 2
        args = parser.parse_args(["train", "--params", str(n), "--n-ctx", "128"])
        assert train_cli.build_spec(args)[0].shape == shape
    planned = plan_budget(published_law("chinchilla"), 1e21, vocab_size=256, n_ctx=128)
    family = shape_for_params(planned["n_params"], vocab_size=256, n_ctx=128)
    assert {k: v for k, v in planned["shape"].items() if k not in ("context_from", "n_params")} == \
        family.to_dict() | {"n_params_kind": "total"}  # `plan`


def test_wsd_grid_is_an_isoflop_grid_of_fixed_sizes_that_branch():
    cfg = load_study(preset="default")
    assert cfg.schedule == "wsd"
    grid = wsd_grid(cfg, 256)
    sizes = {s.shape for _, s in grid}
    assert len(sizes) <= cfg.sizes_per_budget
    half = math.sqrt(cfg.size_span) * 1.001
    for C, spec in grid:  # each point within the window around its budget's expected optimum
        n_prior = math.sqrt(C / (6 * cfg.tokens_per_param))
        assert 1 / half <= param_breakdown(spec.shape)["total"] / n_prior <= half
    for C, spec in grid:
        fpt = flops_per_token(spec.shape, "chinchilla")
        assert abs(spec.n_tokens * fpt / C - 1) < 0.01 and spec.steps >= cfg.min_steps
    for budget in cfg.budgets:
        assert sum(b == budget for b, _ in grid) >= 3
    plan = branch_plan([s for _, s in grid], __import__("pathlib").Path("/s"))
    trunks = [rid for rid, kw in plan.items() if "snapshot_at" in kw]
    assert len(trunks) == len(sizes)
    for spec in (s for _, s in grid):
        kw = plan[spec.run_id]
        if "init_from" in kw:
            trunk_id = kw["init_from"].split("/")[-3]
            assert trunk_id in trunks and kw["init_from"].endswith(".pt")


def test_noise_repeats_are_other_seeds_of_one_grid_point():
    cfg = load_study(preset="default")
    grid = wsd_grid(cfg, 256)
    noise = noise_specs(cfg, grid)
    assert len(noise) == cfg.noise_seeds >= 1
    grid_ids = {s.run_id for _, s in grid}
    for _, s in noise:
        assert s.seed != cfg.seed and s.run_id not in grid_ids
        assert __import__("dataclasses").replace(s, seed=cfg.seed).run_id in grid_ids


def test_holdout_is_the_family_optimum_of_its_exact_flop_budget():
    cfg = StudyConfig(budgets=(1e12,), schedule="wsd")
    law = dict(E=1.0, A=300.0, B=900.0, alpha=0.4, beta=0.4)
    predict = lambda N, D: law["E"] + law["A"] / N ** law["alpha"] + law["B"] / D ** law["beta"]
    C = 1.6e13
    spec = optimum_in_family(predict, C, cfg, 256)
    N = param_breakdown(spec.shape)["total"]
    assert spec.n_tokens * flops_per_token(spec.shape, "chinchilla") == pytest.approx(C, rel=0.01)
    for other in (shape_for_params(n, vocab_size=256, n_ctx=128) for n in (N / 1.5, N * 1.5)):
        D = round(C / flops_per_token(other, "chinchilla"))
        assert predict(param_breakdown(other)["total"], D) > predict(N, spec.n_tokens)




def test_a_run_in_a_worker_reports_progress_the_driver_prints(tmp_path):
    """Issue 29 §3: the held-out run printed nothing for its whole duration. Its worker writes
    progress.json (ProgressFile, what Job.train_kwargs hands the trainer); the study's watcher prints it."""
    import json
    import time

    from scalinglab.plan.spec import RunSpec
    from scalinglab.run.executor import Job
    from scalinglab.study import _Watcher
    from scalinglab.train.progress import PROGRESS_FILE, ProgressFile, read_progress

    spec = RunSpec(shape=shape_for_params(5e4, vocab_size=256, n_ctx=64), n_tokens=200_000, batch_size=8)
    job = Job(spec, str(tmp_path))
    write = job.train_kwargs()["progress"]
    assert isinstance(write, ProgressFile)
    p = {"step": 40, "steps": 100, "train_loss": 2.5, "elapsed": 20.0, "tokens_per_s": 3000.0,
         "mfu": float("nan"), "estimate": {"converged": False, "interval": None, "final": 2.0,
                                           "warnings": ["fewer than 8 curve points: wait"]}}
    lines = []
    watcher = _Watcher([job], {spec.run_id: "holdout"}, lines.append)
    watcher.PROGRESS_EVERY = 0.05
    with watcher:
        write(p)
        write(p | {"step": 41})  # within `every` seconds of the last: not written
        time.sleep(0.5)
    saved = json.loads((tmp_path / PROGRESS_FILE).read_text())  # strict JSON (the NaN MFU is null)
    assert saved["step"] == 40 and saved["mfu"] is None
    assert len(lines) == 1 and lines[0].startswith(f"  [holdout running] {spec.run_id}: step 40/100")
    assert "3.0k tok/s" in lines[0] and "ETA 0:30" in lines[0] and "MFU" not in lines[0]
    assert "final: not yet (fewer than 8 curve points)" in lines[0]
    assert read_progress(tmp_path, since=time.time()) is None  # nothing newer: nothing printed again


def test_one_run_takes_the_cores_as_processes_never_threads():
    """Issue 29 §3 (benchmarks/threads_vs_processes.py): threads collapse beside a busy neighbour (the
    default held-out shape 22.1k -> 13.1k tok/s), single-threaded processes hold up (DDP 20.3k); DDP pays
    from ~1 GFLOP of a step per rank (the debug shape, 0.15 GFLOP: 1 process). The choice never depends on
    the load of the moment: the processes set the float order, so the numbers stay the machine's."""
    import subprocess
    import sys

    from scalinglab.plan.spec import RunSpec
    from scalinglab.run.local import busy_cores, processes_for_one_run
    held_out = RunSpec(shape=shape_for_params(287248, vocab_size=256, n_ctx=128), n_tokens=10**6,
                       batch_size=16)
    debug = RunSpec(shape=shape_for_params(49040, vocab_size=256, n_ctx=64), n_tokens=10**6, batch_size=8)
    assert processes_for_one_run(held_out, 2) == 2
    # 16 cores: batch 16 splits over 16 or 8, but a rank must keep >= 1 GFLOP of the ~4.6 GFLOP step: 4
    assert processes_for_one_run(held_out, 16) == 4
    assert processes_for_one_run(debug, 2) == 1 and processes_for_one_run(held_out, 1) == 1
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time
        time.sleep(0.3)
        assert 0.6 < busy_cores(0.5) < 1.6 + 0.5  # the spinner, and whatever else this machine runs
        assert processes_for_one_run(held_out, 2) == 2  # the same with a neighbour
    finally:
        spin.kill()
        spin.wait()
