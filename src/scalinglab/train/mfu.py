"""Model FLOPs utilisation: a run's achieved training FLOP/s over the peak of the device it ran on.

The peak is measured, not looked up: a short square-matmul probe in the run's precision with the run's
threads (CPU) or on its GPU, the best of a few repeats, cached per device, dtype, threads and torch version
(in the scalinglab cache: a new machine or torch measures again). The achieved rate counts the exact
Appendix-F FLOPs of the tokens trained per second of training (evals excluded), so MFU here is Chinchilla
FLOPs over matmul peak: attention and the non-matmul work are counted, the optimiser step is not.
"""
from __future__ import annotations

import json
import platform
import time

import torch

from ..atomic import waiting_lock, write_text
from ..data.shards import default_cache_dir

PROBE_N = {"cpu": 1024, "cuda": 8192}
PROBE_SECONDS = 0.2  # per repeat: long enough to reach the steady clock, short beside any run
DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        model = ""
    return model or platform.processor() or "cpu"


def _probe(device: str, precision: str) -> float:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    n, dtype = PROBE_N[kind], DTYPE[precision]
    gen = torch.Generator(device=device).manual_seed(0)  # never the global RNG a run's init draws from
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    sync = torch.cuda.synchronize if kind == "cuda" else (lambda: None)
    a @ b
    sync()
    best = 0.0
    for _ in range(3):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < PROBE_SECONDS:
            a @ b
            reps += 1
            if kind == "cuda" and reps % 8 == 0:
                sync()
        sync()
        best = max(best, 2.0 * n ** 3 * reps / (time.perf_counter() - t0))
    return best


def utilisation(achieved: float, peak: float, device: str, precision: str, world: int = 1) -> float:
    """achieved / peak FLOP/s. Above 1 the cached peak was measured on a busy machine (issue 29: 152-180%
    printed): the peak is probed again and the higher kept; still above 1, the peak is suspect and the MFU is
    not reported (NaN) rather than a number above 100%."""
    if not (achieved > 0 and peak > 0):
        return float("nan")
    if achieved <= peak:
        return achieved / peak
    fresh = peak_flops(device, precision, reprobe=True) * world
    return achieved / fresh if achieved <= fresh else float("nan")


def peak_flops(device: str, precision: str, reprobe: bool = False) -> float:
    """FLOP/s of a square matmul on ``device`` in ``precision`` with this process's torch threads (cached;
    ``reprobe``: measured again, the higher of the two kept).

    One probe at a time on a machine (a file lock beside the cache): packed workers start together, and
    eight probes sharing one GPU each measured an eighth of it, a peak that made every run's MFU up to 8x
    too high. The first probes alone while the others wait, and they read what it cached."""
    threads = torch.get_num_threads() if not device.startswith("cuda") else 0
    key = f"{device_name(device)} | {precision} | threads {threads} | torch {torch.__version__}"
    path = default_cache_dir() / "peak_flops.json"
    known = _cached(path)
    if not reprobe and isinstance(known.get(key), (int, float)):
        return float(known[key])
    with waiting_lock(path.with_suffix(".lock")):  # beside the cache
        known = _cached(path)  # another process may have probed while this one waited
        if reprobe or not isinstance(known.get(key), (int, float)):
            old = known.get(key) if isinstance(known.get(key), (int, float)) else 0.0
            known[key] = max(_probe(device, precision), float(old))  # a busy machine only ever lowers a probe
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(known, indent=1, sort_keys=True))
    return float(known[key])


def _cached(path) -> dict:
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}
