"""The CUDA path (bf16 autocast, fused AdamW, DDP and FSDP on NCCL, torch.compile). Skipped where no CUDA
device is present (no GPU was lent to the sessions that wrote these: they have not run yet)."""
import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

from scalinglab.data.shards import build_shards
from scalinglab.model.family import named_shape
from scalinglab.plan.spec import RunSpec
from scalinglab.train.loop import train


def test_debug_run_in_bf16_on_cuda_is_within_0_05_nats_of_fp32(tmp_path):
    shards = build_shards()
    spec = RunSpec(shape=named_shape("debug", n_ctx=128), n_tokens=400_000, batch_size=32, n_eval_tokens=8192)
    bf16 = train(dataclasses.replace(spec, precision="bf16"), tmp_path / "bf16", device="cuda", shards=shards)
    fp32 = train(spec, tmp_path / "fp32", device="cuda", shards=shards)
    cpu = train(spec, tmp_path / "cpu", device="cpu", threads=1, shards=shards)
    assert bf16.status == "done" and bf16.device == "cuda"
    assert abs(bf16.val_loss - fp32.val_loss) < 0.05  # bf16 autocast vs fp32: close, not equal
    assert abs(fp32.val_loss - cpu.val_loss) < 0.01


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP on NCCL needs two GPUs (one per process)")
def test_ddp_on_nccl_equals_one_gpu(tmp_path):
    import json

    from tests.cli_helpers import cli
    args = ("train", "--size", "debug", "--tokens", "2e5", "--batch-size", "16", "--n-ctx", "128",
            "--device", "cuda", "--precision", "fp32", "--json")
    one = json.loads(cli(*args, "--out", tmp_path / "one").stdout)
    two = json.loads(cli(*args, "--nproc", "2", "--out", tmp_path / "two").stdout)
    assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-3)
    sharded = json.loads(cli(*args, "--nproc", "2", "--fsdp", "--out", tmp_path / "fsdp").stdout)
    assert sharded["val_loss"] == pytest.approx(one["val_loss"], rel=1e-3)


def test_compiled_run_on_cuda_equals_eager(tmp_path):
    shards = build_shards()
    spec = RunSpec(shape=named_shape("debug", n_ctx=128), n_tokens=200_000, batch_size=32, n_eval_tokens=8192)
    eager = train(spec, tmp_path / "eager", device="cuda", shards=shards)
    compiled = train(spec, tmp_path / "compiled", device="cuda", shards=shards, compile_model=True)
    assert compiled.val_loss == pytest.approx(eager.val_loss, rel=1e-3)


def test_cuda_resume_is_consistent(tmp_path):
    shards = build_shards()
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=60_000, batch_size=16, n_eval_tokens=4096)
    whole = train(spec, tmp_path / "a", device="cuda", shards=shards)
    train(spec, tmp_path / "b", device="cuda", shards=shards, stop_after_steps=20)
    rest = train(spec, tmp_path / "b", device="cuda", shards=shards)
    assert rest.val_loss == pytest.approx(whole.val_loss, abs=1e-3)


def test_runs_are_packed_onto_one_gpu(tmp_path):
    from scalinglab.run.executor import Job
    from scalinglab.run.local import LocalExecutor
    specs = [RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=40_000, batch_size=16, n_eval_tokens=4096,
                     seed=s) for s in range(4)]
    ex = LocalExecutor(device="auto", runs_per_gpu=4)
    jobs = [Job(spec, str(tmp_path / spec.run_id)) for spec in specs]
    n_gpus = torch.cuda.device_count()
    assert ex._devices(jobs) == [f"cuda:{i % n_gpus}" for i in range(4)]  # 4 workers, not one per core
    results = []
    assert ex.run(jobs, results.append)
    assert sorted(r.status for r in results) == ["done"] * 4
    assert all(r.device.startswith("cuda") for r in results)


def test_a_wsd_branch_on_cuda_in_bf16_ends_where_the_run_alone_ends(tmp_path):
    """What gpu-quick does 28 times: a shorter run's cool-down branched off a longer run's snapshot, on the
    GPU in bf16 (the snapshot is read to the CPU, then moved to the branch's device)."""
    from scalinglab.train.optim import cooldown_start
    shards = build_shards()
    common = dict(shape=named_shape("debug", n_ctx=128), batch_size=32, n_eval_tokens=8192, schedule="wsd",
                  min_lr_frac=0.0, beta2=0.99, warmup_steps=20, precision="bf16")
    trunk, branch = RunSpec(**common, n_tokens=128 * 32 * 200), RunSpec(**common, n_tokens=128 * 32 * 120)
    start = cooldown_start(branch.steps, branch.cooldown_frac)
    train(trunk, tmp_path / "trunk", device="cuda", shards=shards, snapshot_at=(start,))
    snapshot = tmp_path / "trunk" / "snapshots" / f"step-{start}.pt"
    branched = train(branch, tmp_path / "branched", device="cuda", shards=shards, init_from=snapshot)
    alone = train(branch, tmp_path / "alone", device="cuda", shards=shards)
    assert branched.status == alone.status == "done" and branched.steps == alone.steps
    assert branched.val_loss == pytest.approx(alone.val_loss, abs=2e-3)  # bf16 kernels: close, not equal


def test_the_gpu_quick_shapes_train_in_bf16_with_an_mfu_below_one(tmp_path):
    """gpu-quick's smallest and largest shapes (context 256, batch 48), 60 steps each: a finite loss and an
    MFU in (0, 1] against the GPU's measured bf16 peak (the window reads every run's MFU)."""
    from scalinglab.plan.config import load_study
    from scalinglab.plan.grid import isoflop_grid
    cfg = load_study(None, "gpu-quick")
    specs = sorted((s for _, s in isoflop_grid(cfg, 256)), key=lambda s: s.shape.d_model)
    shards = build_shards()
    for spec in (specs[0], specs[-1]):
        short = dataclasses.replace(spec, n_tokens=60 * cfg.batch_size * cfg.n_ctx, n_eval_tokens=8192)
        res = train(short, tmp_path / short.run_id, device="cuda", shards=shards)
        assert res.status == "done" and 0 < res.val_loss < 6 and 0 < res.mfu <= 1.0, res
