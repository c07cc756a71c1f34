"""Fits on large tables: time and peak memory at 10k, 100k and 1M runs (issue 15 B20; issue 30 R9 with
--law all: every law the table allows, as `scalinglab fit --law all` fits it).

Each size runs in its own process so that its peak resident memory (ru_maxrss) is its own. Runs are
simulated from Chinchilla's law with 2% noise; the fit must recover it (printed beside the time).
Usage: python benchmarks/fit_scale.py [--sizes 10000 100000 1000000] [--law chinchilla|all]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
from scalinglab.fit.chinchilla.approach3 import ChinchillaFit
from scalinglab.fit.laws import chinchilla_loss
n = int(sys.argv[1])
rng = np.random.default_rng(0)
N = np.exp(rng.uniform(np.log(1e7), np.log(1e11), n)); D = np.exp(rng.uniform(np.log(1e9), np.log(1e13), n))
law = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
runs = pd.DataFrame({"N": N, "D": D, "loss": chinchilla_loss(N, D, **law) * np.exp(rng.normal(0, 0.02, n))})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if sys.argv[2] == "all":
    import scalinglab
    fits = scalinglab.fit(runs.assign(C=6 * runs["N"] * runs["D"]), law="all")
    res = next(f for f in fits if f.key == "chinchilla:3")
else:
    res = ChinchillaFit().fit(runs).result_
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"runs": n, "seconds": dt, "peak_rss_mib": peak / 1024, "table_rss_mib": base / 1024,
                  "converged": res.converged, "params": dict(res.params)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--law", default="chinchilla", choices=("chinchilla", "all"))
    args = ap.parse_args()
    for n in args.sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), args.law], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        p = r["params"]
        print(f"{r['runs']:>9,} runs: {r['seconds']:7.2f} s, peak RSS {r['peak_rss_mib']:7.0f} MiB "
              f"(table loaded: {r['table_rss_mib']:.0f} MiB); converged {r['converged']}; E {p['E']:.4f} "
              f"A {p['A']:.1f} B {p['B']:.1f} alpha {p['alpha']:.4f} beta {p['beta']:.4f}")


if __name__ == "__main__":
    main()
