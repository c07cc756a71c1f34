"""What Ray costs over the local executor: the whole `debug` study (grid, fit, held-out run, report) run
twice from the CLI, once per executor, on this machine; both wall times and the ratio, measured in one run.

The Ray time includes starting and stopping a local cluster (~4 s here), putting the shards in the object
store and Ray's scheduling; the training itself is the same code with the same threads (one per core).
Usage: python benchmarks/ray_overhead.py [--preset debug]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def study(preset: str, out: Path, *extra: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "scalinglab", "run", "--preset", preset, "--out", str(out),
                        "--json", *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"study failed ({' '.join(extra) or 'local'}): {r.stderr[-2000:]}")
    return wall, json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="debug")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        local, s_local = study(args.preset, Path(root) / "local")
        ray, s_ray = study(args.preset, Path(root) / "ray", "--executor", "ray")
    same = s_local["holdout"]["measured"] == s_ray["holdout"]["measured"]
    print(f"preset {args.preset}: {s_local['n_runs']} grid runs + held-out run")
    print(f"  local executor  {local:7.1f} s")
    print(f"  ray executor    {ray:7.1f} s   (local cluster started and stopped by the run)")
    print(f"  ray / local     {ray / local:7.3f}   overhead {ray - local:+.1f} s")
    print(f"  held-out loss identical: {same} ({s_local['holdout']['measured']:.6f} vs "
          f"{s_ray['holdout']['measured']:.6f})")


if __name__ == "__main__":
    main()
