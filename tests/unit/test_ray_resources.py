"""What a run asks Ray for: a GPU share from its training memory (no Ray needed to compute it)."""
import pytest

from scalinglab.model.accounting import ModelShape, param_breakdown
from scalinglab.plan.spec import RunSpec
from scalinglab.run.ray import gpu_fraction


def _spec(n_layer, d_model, batch=32, n_ctx=1024, vocab=50304):
    shape = ModelShape(n_layer=n_layer, d_model=d_model, n_head=d_model // 64, d_head=64, d_ff=4 * d_model,
                       vocab_size=vocab, n_ctx=n_ctx)
    return RunSpec(shape=shape, n_tokens=10**9, batch_size=batch)


def test_small_runs_share_a_gpu_and_big_ones_take_more():
    tiny = _spec(2, 128, batch=8, n_ctx=128, vocab=256)
    assert gpu_fraction(tiny) == pytest.approx(1 / 16)  # the floor: 16 tiny runs per GPU
    big = _spec(24, 2048)
    n = param_breakdown(big.shape)["total"]
    tokens = 32 * 1024
    need = (16 * n + 34 * tokens * 2048 * 24 + 8 * tokens * 50304) * 1.5
    assert gpu_fraction(big) == pytest.approx(min(1.0, -(-16 * need // (80 * 2**30)) / 16))
    assert 1 / 16 < gpu_fraction(big) <= 1.0
    assert gpu_fraction(big, gpu_memory_gb=40) >= gpu_fraction(big)
    assert gpu_fraction(_spec(48, 8192)) == 1.0  # never more than one GPU
