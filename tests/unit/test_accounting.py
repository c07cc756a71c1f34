import dataclasses

import pytest

torch = pytest.importorskip("torch")

from scalinglab.errors import ScalingLabError
from scalinglab.model.accounting import (
    ModelShape,
    flops_per_token,
    forward_flops_per_sequence_chinchilla,
    param_breakdown,
)
from scalinglab.model.family import NAMED_WIDTHS, named_shape, shape_for_params
from scalinglab.model.gpt import GPT


@pytest.mark.parametrize("name", ["debug", *NAMED_WIDTHS])
@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_breakdown_equals_the_module_built_on_meta(name, tied, positions):
    shape = dataclasses.replace(named_shape(name, vocab_size=256, n_ctx=128, tied=tied), positions=positions)
    with torch.device("meta"):
        model = GPT(shape)
    counts = param_breakdown(shape)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    embed = model.wte.weight.numel() + (model.wpe.weight.numel() if positions == "learned" else 0)
    assert (counts["wpe"] == 0) == (positions == "rope")
    assert counts["embedding"] == embed and counts["nonembed"] == counts["total"] - embed
    assert counts["lm_head"] == (0 if tied else model.lm_head.weight.numel())


def test_breakdown_matches_for_a_target_size_with_bpe_vocab():
    shape = shape_for_params(3e6, kind="nonembed", vocab_size=4096, n_ctx=256)
    with torch.device("meta"):
        model = GPT(shape)
    assert param_breakdown(shape)["total"] == sum(p.numel() for p in model.parameters())


# Hoffmann et al. 2022, Table A4: layers, d_model, ffw, heads, kv size, printed N, printed ratio.
TABLE_A4 = [(10, 640, 2560, 10, 64, 73e6, 1.03), (20, 1024, 4096, 16, 64, 305e6, 1.10),
            (24, 1280, 5120, 10, 128, 552e6, 1.08), (26, 1792, 7168, 14, 128, 1.1e9, 1.04),
            (28, 2048, 8192, 16, 128, 1.6e9, 1.03), (40, 3584, 14336, 28, 128, 6.8e9, 0.99)]


@pytest.mark.parametrize("L,d,ff,h,kv,n_printed,ratio", TABLE_A4)
def test_chinchilla_table_a4_ratio_column(L, d, ff, h, kv, n_printed, ratio):
    """FLOPs (Appendix F, without embedding and final-logit terms) / 6N, at T=2048, V=32000.

    The printed N are rounded (73M, 1.1B); the ratios were computed with exact counts. The count
    13 L d^2 + V d (12 L d^2 of blocks, L d^2 more for Gopher-style relative-position projections, tied
    embeddings) matches every printed N at its printed precision, and with it every ratio agrees to two
    decimals. (With the printed N instead, rows 1 and 4 give 1.04 and 1.09.)
    """
    shape = ModelShape(n_layer=L, d_model=d, n_head=h, d_head=kv, d_ff=ff, vocab_size=32000, n_ctx=2048)
    n_exact = 13 * L * d * d + 32000 * d
    assert abs(n_exact / n_printed - 1) < 0.04  # 1.1B is 1.14B to two figures
    flops = 3 * forward_flops_per_sequence_chinchilla(shape, embeddings=False) / 2048
    assert round(flops / (6 * n_exact), 2) == ratio


def test_flop_conventions():
    shape = named_shape("m", vocab_size=256, n_ctx=256)
    n = param_breakdown(shape)["nonembed"]
    assert flops_per_token(shape, "6N") == 6 * n
    assert flops_per_token(shape, "6N+attn") == 6 * n + 6 * shape.n_layer * 256 * shape.d_model
    full = flops_per_token(shape, "chinchilla")
    assert full == 3 * forward_flops_per_sequence_chinchilla(shape) / 256
    assert full > flops_per_token(shape, "6N")  # attention and logits add to 6N at this small width
    with pytest.raises(ScalingLabError, match="unknown FLOP convention '7N'"):
        flops_per_token(shape, "7N")


def test_kaplan_table1_approximation():
    shape = ModelShape(n_layer=24, d_model=1024, n_head=16, d_head=64, d_ff=4096, vocab_size=50257,
                       n_ctx=1024)
    assert param_breakdown(shape)["nonembed"] == pytest.approx(12 * 24 * 1024 ** 2, rel=0.002)


def test_precision_is_part_of_the_spec_and_auto_resolves_by_width_and_device(monkeypatch):
    from scalinglab.plan.spec import RunSpec
    from scalinglab.train import precision
    shape = ModelShape(n_layer=2, d_model=64, n_head=2, d_head=32, d_ff=256, vocab_size=256, n_ctx=64)
    fp32, bf16 = RunSpec(shape=shape, n_tokens=1000), RunSpec(shape=shape, n_tokens=1000, precision="bf16")
    assert "precision" not in fp32.to_dict()  # run ids from before the field existed are unchanged
    assert bf16.run_id != fp32.run_id and RunSpec.from_dict(bf16.to_dict()) == bf16
    with pytest.raises(ScalingLabError, match="bad precision"):
        RunSpec(shape=shape, n_tokens=1000, precision="fp16")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    wide = precision.BF16_MIN_WIDTH_CPU
    assert precision.resolve_precision("auto", wide - 1, "cpu") == "fp32"
    assert precision.resolve_precision("auto", wide, "cpu") == "bf16"
    assert precision.resolve_precision("fp32", 4096, "cpu") == "fp32"
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.resolve_precision("auto", 4096, "cpu") == "fp32"  # no BF16 instructions: never
    with pytest.raises(ScalingLabError, match="unknown `precision` 'half'"):
        precision.resolve_precision("half", 64, "cpu")


def test_the_peak_is_measured_once_per_device_precision_and_threads(tmp_path, monkeypatch):
    from scalinglab.train import mfu
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path))
    calls = []

    def probe(device, precision):
        calls.append((device, precision))
        return 1e11
    monkeypatch.setattr(mfu, "_probe", probe)
    assert mfu.peak_flops("cpu", "fp32") == 1e11 and mfu.peak_flops("cpu", "fp32") == 1e11
    assert mfu.peak_flops("cpu", "bf16") == 1e11
    assert calls == [("cpu", "fp32"), ("cpu", "bf16")]  # the second fp32 call read the cache
    cached = (tmp_path / "peak_flops.json").read_text()
    assert "| fp32 | threads" in cached and "| bf16 | threads" in cached


PROBE_IN_A_PROCESS = """
import sys, time
from scalinglab.train import mfu
def probe(device, precision):  # a probe that takes a while and says that it ran
    with open(sys.argv[1], "a") as fh:
        fh.write("probed\\n")
    time.sleep(1.0)
    return 7e10
mfu._probe = probe
print(mfu.peak_flops("cpu", "fp32"))
"""


def test_processes_started_together_probe_the_peak_once(tmp_path):
    """Packed workers start together: eight probes sharing one GPU each measured a share of it, and the
    cached peak made every run's MFU too high. One probes (alone) while the others wait and read it."""
    import os
    import subprocess
    import sys
    log = tmp_path / "probes.log"
    env = dict(os.environ, SCALINGLAB_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", PROBE_IN_A_PROCESS, str(log)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [float(o) for o in outs] == [7e10] * 4
    assert log.read_text().count("probed") == 1  # unlocked: 4 (each process probed beside the others)


def test_the_matmul_probe_measures_a_plausible_cpu_peak():
    import torch

    from scalinglab.train import mfu
    torch.set_num_threads(1)
    peak = mfu._probe("cpu", "fp32")
    assert 1e9 < peak < 1e12  # one core: 1 GFLOP/s .. 1 TFLOP/s (measured here: ~1e11)


def test_runs_are_packed_onto_gpus_by_their_memory():
    from scalinglab.model.accounting import memory_needed
    from scalinglab.plan.spec import RunSpec
    from scalinglab.run.executor import Job
    from scalinglab.run.local import MAX_RUNS_PER_GPU, gpu_slots, runs_per_gpu
    small = named_shape("debug", n_ctx=128)
    big = named_shape("xl", n_ctx=1024)
    jobs = [Job(RunSpec(shape=s, n_tokens=10_000, batch_size=32), "x") for s in (small, big)]
    need = memory_needed(big, 32)
    assert need > memory_needed(small, 32) > 16 * 1e5  # weights+grads+moments at least
    assert runs_per_gpu(jobs, free_bytes=int(3 * need / 0.8)) == 3  # the largest run decides
    assert runs_per_gpu(jobs, free_bytes=need // 2) == 1  # never zero: the run may still fit alone
    assert runs_per_gpu(jobs[:1], free_bytes=80 * 2**30) == MAX_RUNS_PER_GPU
    assert gpu_slots(2, 3) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0", "cuda:1"]


# Peak GPU memory measured on an H200 (torch.cuda.max_memory_allocated, benchmarks/gpu.py, docs/gpu.md):
# the gpu-small preset's shapes at context 512 x batch 64.
H200_PEAK_GIB = [((9, 448), "bf16", 5.76), ((9, 448), "fp32", 9.47),
                 ((19, 928), "bf16", 25.75), ((19, 928), "fp32", 41.70)]


@pytest.mark.parametrize("layers_width, precision, peak_gib", H200_PEAK_GIB)
def test_training_memory_estimate_is_just_above_the_measured_peak(layers_width, precision, peak_gib):
    from scalinglab.model.accounting import ModelShape, memory_needed
    L, d = layers_width
    shape = ModelShape(n_layer=L, d_model=d, n_head=d // 32, d_head=32, d_ff=4 * d, vocab_size=256, n_ctx=512)
    estimate = memory_needed(shape, 64, precision) / 2**30
    assert peak_gib < estimate < 1.10 * peak_gib  # above (packing divides memory by it), but not far


def test_mfu_above_one_reprobes_the_peak_and_is_never_reported_above_100_percent(tmp_path, monkeypatch):
    """Issue 29: a peak probed on a busy machine and cached gave MFUs of 152-180%. Above 1 the peak is
    probed again (the higher kept in the cache); if the run still beats it, no MFU rather than a false one."""
    import math

    from scalinglab.train import mfu
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path))
    probes = iter([50e9, 100e9, 100e9])
    monkeypatch.setattr(mfu, "_probe", lambda device, precision: next(probes))
    assert mfu.peak_flops("cpu", "fp32") == 50e9  # the busy first probe, cached
    assert mfu.utilisation(80e9, 50e9, "cpu", "fp32") == pytest.approx(0.8)  # re-probed: 100 GFLOP/s
    assert mfu.peak_flops("cpu", "fp32") == 100e9  # the cache keeps the higher
    assert math.isnan(mfu.utilisation(150e9, 100e9, "cpu", "fp32"))  # still above the peak: not reported
    assert mfu.utilisation(30e9, 100e9, "cpu", "fp32") == pytest.approx(0.3)
