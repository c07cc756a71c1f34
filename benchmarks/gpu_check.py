"""Everything a GPU window must show, as ONE command that stops by itself (issue 31).

    bash benchmarks/gpu_check.sh            # on the GPU machine: writes $OUT/gpu_check.json
    python benchmarks/gpu_check.py --device cpu --study-dir DIR --preset debug --skip-tests   # the dry run

Parts, each written to the JSON file as soon as it has its numbers (a cut-off run keeps what it measured):
1. ``cuda_tests``: ``pytest tests/gpu`` (passed / skipped / failed counts, seconds);
2. ``study``: ``scalinglab run --preset gpu-quick`` from a clean directory (or --study-dir): exit status,
   wall time, held-out predicted / measured / error, whether the law converged, and per run its N, D,
   tokens/s, MFU and device from the store, with how many runs shared the GPU (packing);
3. ``packing``: the preset's first budget's runs, ``--packing-steps`` steps each, one at a time and at the
   executor's default runs per GPU (benchmarks/gpu.py --parts packing): wall times and the speed-up;
4. ``ddp``: with two or more GPUs, `train --nproc 2 --device cuda` and `--fsdp` against one GPU (final
   losses and tokens/s); skipped on one.
A deadline (default 520 s, under the device's 10-minute call limit) is kept: a part that would run past it
is stopped (SIGTERM: a study checkpoints and can be resumed) or not started, and the JSON says where it was
cut. The study comes first: it is what the window is for.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scalinglab import jsonsafe

T0 = time.monotonic()
PACKING_MIN_S = 45.0  # the packing part is not started with less left (it takes ~30 s on a GPU)


def left(deadline: float) -> float:
    return deadline - (time.monotonic() - T0)


class Report:
    """The JSON file, rewritten after every part (atomically), so that what was measured survives a cut."""

    def __init__(self, path: Path):
        self.path, self.doc = path, {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                     "parts": {}, "cut_short": None}

    def put(self, key: str, value) -> None:
        self.doc["parts"][key] = value
        self.doc["elapsed_s"] = time.monotonic() - T0
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(jsonsafe.dumps(self.doc, indent=1, default=str))  # strict: NaN -> null
        os.replace(tmp, self.path)


def run_bounded(cmd: list[str], seconds: float, **kw) -> tuple[int | None, str, str, float]:
    """(exit status or None when stopped at the deadline, stdout, stderr, wall seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)
    try:
        out, err = proc.communicate(timeout=max(seconds, 1.0))
        return proc.returncode, out, err, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # a study checkpoints every worker's run and exits 3
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        return None, out, err, time.monotonic() - t0


def device_info(device: str) -> dict:
    import torch
    info = {"torch": torch.__version__, "device": device, "gpus": 0}
    if device != "cpu" and torch.cuda.is_available():
        from scalinglab.train.mfu import peak_flops
        info |= {"gpus": torch.cuda.device_count(), "name": torch.cuda.get_device_name(0),
                 "memory_gib": torch.cuda.get_device_properties(0).total_memory / 2 ** 30,
                 # every run's MFU denominator, probed here alone on the GPU (and cached) before any run
                 "peak_tflops": {p: peak_flops("cuda", p) / 1e12 for p in ("bf16", "fp32")}}
    return info


def cuda_tests(seconds: float) -> dict:
    rc, out, err, wall = run_bounded([sys.executable, "-m", "pytest", "-q", "tests/gpu", "-p",
                                      "no:cacheprovider"], seconds)
    tail = (out.strip().splitlines() or [""])[-1]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", tail)}
    return {"exit": rc, "summary": tail, "counts": counts, "seconds": wall}


def runs_of(study: Path) -> list[dict]:
    """Every finished run's numbers as the store has them (tokens/s, MFU, device, processes)."""
    with sqlite3.connect(f"file:{study / 'study.sqlite'}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM runs WHERE status = 'done'")]
    keep = ("run_id", "role", "budget", "n_params_total", "n_tokens", "val_loss", "tokens_per_s", "mfu",
            "wall_time_s", "device")
    return [{k: r.get(k) for k in keep if k in r} for r in rows]


def study_part(args, seconds: float) -> dict:
    study = Path(args.study_dir) if args.study_dir else Path(tempfile.mkdtemp(prefix="gpu-quick-"))
    cmd = [sys.executable, "-m", "scalinglab", "run", "--preset", args.preset, "--out", str(study), "--json",
           "--device", args.device]
    rc, out, err, wall = run_bounded(cmd, seconds)
    part = {"preset": args.preset, "dir": str(study), "exit": rc, "wall_s": wall,
            "finished": rc in (0, 4), "stderr_tail": err.strip().splitlines()[-5:]}
    try:
        summary = json.loads(out) if out.strip() else None
    except ValueError:
        summary = None
    if summary is not None:
        h = summary.get("holdout") or {}
        part |= {"law_converged": summary.get("law_converged"), "law": (summary.get("law") or {}).get("form"),
                 "n_runs": summary.get("n_runs"),
                 "holdout": {k: h.get(k) for k in ("predicted", "measured", "rel_error", "inside_interval",
                                                   "n_params", "n_tokens", "flops_budget")}}
    if (study / "study.sqlite").exists():
        runs = runs_of(study)
        part["runs"] = runs
        mfus = [r["mfu"] for r in runs if isinstance(r.get("mfu"), (int, float))]
        part["mfu_max"] = max(mfus) if mfus else None
        grid = [r for r in runs if r.get("role") == "grid"]
        largest = max(grid, key=lambda r: r.get("n_params_total") or 0) if grid else None
        part["largest_grid_run"] = largest
        part["largest_run"] = max(runs, key=lambda r: r.get("n_params_total") or 0) if runs else None
    part["packing"] = [line.strip() for line in err.splitlines() if "per GPU" in line][:3]
    return part


def packing_part(args, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "packing.json"
        cmd = [sys.executable, str(Path(__file__).with_name("gpu.py")), "--parts", "packing", "--preset",
               args.preset, "--steps", str(args.packing_steps), "--device", args.device, "--packing-k",
               "1,default", "--out", str(out)]
        rc, _, err, wall = run_bounded(cmd, seconds)
        rows = json.loads(out.read_text()).get("packing", []) if out.exists() else []
    speedup = rows[-1]["speedup_vs_1"] if len(rows) == 2 else None
    return {"exit": rc, "wall_s": wall, "rows": rows, "speedup": speedup,
            "stderr_tail": err.strip().splitlines()[-3:] if rc else []}


def ddp_part(args, seconds: float, gpus: int) -> dict:
    if gpus < 2:
        return {"skipped": f"{gpus} GPU(s): DDP and FSDP on NCCL need two"}
    base = [sys.executable, "-m", "scalinglab", "train", "--size", "s", "--tokens", "2e6", "--device", "cuda",
            "--precision", "bf16", "--json"]
    out = {}
    for label, extra in (("one", ["--nproc", "1"]), ("ddp2", ["--nproc", "2"]), ("fsdp2", ["--nproc", "2",
                                                                                           "--fsdp"])):
        with tempfile.TemporaryDirectory() as d:
            rc, o, e, wall = run_bounded(base + extra + ["--out", d], seconds / 3)
        res = json.loads(o.strip().splitlines()[-1]) if rc == 0 and o.strip() else {}
        out[label] = {"exit": rc, "wall_s": wall, "val_loss": res.get("val_loss"),
                      "tokens_per_s": res.get("tokens_per_s")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "gpu_check.json"))
    ap.add_argument("--device", default="cuda", help="cuda (the window) | cpu (the dry run)")
    ap.add_argument("--preset", default="gpu-quick")
    ap.add_argument("--study-dir", default=None, help="the study directory (default: a new empty one)")
    ap.add_argument("--deadline", type=float, default=520.0, help="seconds, all parts together")
    ap.add_argument("--skip-tests", action="store_true", help="leave out pytest tests/gpu (the dry run)")
    ap.add_argument("--packing-steps", type=int, default=300, help="steps of each run the packing part times")
    args = ap.parse_args()
    report = Report(Path(args.out))
    info = device_info(args.device)
    report.put("device", info)
    if not args.skip_tests:
        report.put("cuda_tests", cuda_tests(min(120.0, left(args.deadline) - 60)))
    reserve = 90 if info["gpus"] >= 2 else 0  # for the DDP part
    study = study_part(args, left(args.deadline) - reserve - 10)
    report.put("study", study)
    if not study["finished"]:
        report.doc["cut_short"] = "the study (stopped at the deadline: resume it with the same command)"
    report.doc["not_started"] = []  # parts the deadline left no time for
    if left(args.deadline) - reserve > PACKING_MIN_S:
        report.put("packing", packing_part(args, left(args.deadline) - reserve - 5))
    else:
        report.doc["cut_short"] = report.doc["cut_short"] or "before the packing part"
        report.doc["not_started"].append("packing")
    if left(args.deadline) > 30:
        report.put("ddp", ddp_part(args, left(args.deadline) - 10, info["gpus"]))
    else:
        report.doc["cut_short"] = report.doc["cut_short"] or "before the DDP part"
        report.doc["not_started"].append("ddp")
    report.put("done", True)
    print(json.dumps({"out": str(report.path), "elapsed_s": time.monotonic() - T0,
                      "cut_short": report.doc["cut_short"]}))


if __name__ == "__main__":
    main()
