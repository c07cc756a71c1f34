"""The CUDA path (bf16 autocast, fused AdamW). Skipped where no CUDA device is present."""
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

from scalinglab.data.shards import build_shards
from scalinglab.model.family import named_shape
from scalinglab.plan.spec import RunSpec
from scalinglab.train.loop import train


def test_debug_run_on_cuda_learns_and_matches_cpu_roughly(tmp_path):
    shards = build_shards()
    spec = RunSpec(shape=named_shape("debug", n_ctx=128), n_tokens=400_000, batch_size=32, n_eval_tokens=8192)
    gpu = train(spec, tmp_path / "gpu", device="cuda", shards=shards)
    cpu = train(spec, tmp_path / "cpu", device="cpu", threads=1, shards=shards)
    assert gpu.status == "done" and gpu.device == "cuda"
    assert abs(gpu.val_loss - cpu.val_loss) < 0.05  # bf16 autocast vs fp32: close, not equal


def test_cuda_resume_is_consistent(tmp_path):
    shards = build_shards()
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=60_000, batch_size=16, n_eval_tokens=4096)
    whole = train(spec, tmp_path / "a", device="cuda", shards=shards)
    train(spec, tmp_path / "b", device="cuda", shards=shards, stop_after_steps=20)
    rest = train(spec, tmp_path / "b", device="cuda", shards=shards)
    assert rest.val_loss == pytest.approx(whole.val_loss, abs=1e-3)
