"""Which precision a run trains in: fp32, or bf16 autocast (matmuls in bf16, weights and optimiser in fp32).

The choice changes the loss, so the resolved value is part of the run's spec (RunSpec.precision); `auto`
is resolved before the spec is made. On a GPU `auto` is bf16 where the GPU supports it. On a CPU, bf16
autocast pays only for wide models: measured here (AMD EPYC with AVX-512 BF16, torch 2.13, one thread,
benchmarks/ddp_scaling.py, table in docs/training.md) it is slower than fp32 below d_model 256 and faster
from 256 on; `auto` picks bf16 from BF16_MIN_WIDTH_CPU on CPUs that have BF16 instructions.
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import ScalingLabError

CHOICES = ("auto", "fp32", "bf16")
BF16_MIN_WIDTH_CPU = 256


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """AVX-512 BF16 or AMX: the CPU instructions that make bf16 matmuls faster than fp32 ones."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def resolve_precision(choice: str, d_model: int, device: str) -> str:
    """fp32 or bf16 for a model of width ``d_model`` on ``device`` ("cpu" or "cuda..."), from ``choice``."""
    if choice not in CHOICES:
        raise ScalingLabError(f"unknown `precision` {choice!r}: choose one of {', '.join(CHOICES)}",
                              params=("precision",))
    if choice != "auto":
        return choice
    if device.startswith("cuda"):
        import torch
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() and d_model >= BF16_MIN_WIDTH_CPU else "fp32"
