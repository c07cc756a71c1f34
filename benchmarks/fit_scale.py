"""Fits on large tables: time and peak memory at 10k, 100k and 1M rows (issue 15 B20; issue 30 R9 with
--law all: every law the table allows, as `scalinglab fit --law all` fits it).

Two tables, simulated from Chinchilla's law: ``--table finals`` (one row per run, 2% noise: Approach 3
and Kaplan's L(N), L(D), L(C), L(N,D)) and ``--table curves`` (learning curves of 200 evals per run on 10
IsoFLOP budgets, three batch sizes, a gradient noise scale and unique tokens: every law, Approaches 1 and
2, B_crit and L(N,S) and the data-constrained law included). Each size runs in its own process so that its
peak resident memory (ru_maxrss) is its own; the time is that of ``scalinglab.fit(table, law="all")``
after the table is loaded, with each law's share.
Usage: python benchmarks/fit_scale.py [--sizes 10000 100000 1000000] [--law chinchilla|all]
                                      [--table finals|curves]
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
n, which, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
law = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
rng = np.random.default_rng(0)
if kind == "finals":
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e11), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e13), n))
    loss = chinchilla_loss(N, D, **law) * np.exp(rng.normal(0, 0.02, n))
    runs = pd.DataFrame({"N": N, "D": D, "loss": loss})
    runs["C"] = 6 * runs["N"] * runs["D"]
else:  # n rows: n / 200 runs of 200 evals, 10 budgets, sizes spread about each budget's optimum
    R, K = max(n // 200, 20), 200
    budget = np.repeat(np.geomspace(1e17, 1e20, 10), -(-R // 10))[:R]
    N = np.exp(np.log(np.sqrt(budget / 120)) + rng.uniform(-1.5, 1.5, R))
    batch = rng.choice([2.0 ** 17, 2.0 ** 19, 2.0 ** 21], R)
    step = np.round(np.maximum(budget / (6 * N) / batch, K)[:, None] * np.geomspace(0.01, 1, K)).clip(1)
    D = step * batch[:, None]
    Nb = np.broadcast_to(N[:, None], D.shape)
    loss = chinchilla_loss(Nb, D, **law) * np.exp(rng.normal(0, 0.01, D.shape))
    runs = pd.DataFrame({"run_id": np.repeat([f"r{i}" for i in range(R)], K), "N": Nb.ravel(), "D": D.ravel(),
                         "step": step.ravel(), "loss": loss.ravel(), "budget": np.repeat(budget, K),
                         "batch_size": np.repeat(batch, K),
                         "noise_scale": (2e8 / loss ** 5 * np.exp(rng.normal(0, 0.1, D.shape))).ravel(),
                         "unique_tokens": np.repeat(budget / (6 * N) * rng.choice([0.25, 1, 4], R), K)})
    runs = runs.drop_duplicates(["run_id", "step"]).reset_index(drop=True)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if which == "all":
    import dataclasses
    import scalinglab
    from scalinglab.fit import every
    shares = {}
    def timed(fam):  # each law's share of the time: its family's fitter, timed per call
        def fit(table, which, ctx):
            t = time.perf_counter()
            try:
                return fam.fit(table, which, ctx)
            finally:
                shares[f"{fam.name} {which}"] = time.perf_counter() - t
        return dataclasses.replace(fam, fit=fit if fam.fit else None)
    every.FAMILIES = tuple(timed(fam) for fam in every.FAMILIES)
    fits = scalinglab.fit(runs, law="all")
    res = next(f for f in fits if f.key == "chinchilla:3")
    laws = {f.key: bool(f.converged) for f in fits}
else:
    res, shares, laws = ChinchillaFit().fit(runs).result_, {}, {}
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": len(runs), "seconds": dt, "peak_rss_mib": peak / 1024, "table_rss_mib": base / 1024,
                  "converged": res.converged, "params": dict(res.params), "shares": shares, "laws": laws}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--law", default="chinchilla", choices=("chinchilla", "all"))
    ap.add_argument("--table", default="finals", choices=("finals", "curves"))
    args = ap.parse_args()
    for n in args.sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), args.law, args.table], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        p = r["params"]
        print(f"{r['rows']:>9,} rows ({args.table}): {r['seconds']:7.2f} s, "
              f"peak RSS {r['peak_rss_mib']:7.0f} MiB "
              f"(table loaded: {r['table_rss_mib']:.0f} MiB); Approach 3 converged {r['converged']}; "
              f"E {p['E']:.4f} A {p['A']:.1f} B {p['B']:.1f} alpha {p['alpha']:.4f} beta {p['beta']:.4f}")
        if r["shares"]:
            print("    " + ", ".join(f"{k} {v:.1f} s" for k, v in r["shares"].items() if v >= 0.05))
            print(f"    {len(r['laws'])} fits, converged: {sum(r['laws'].values())}; not converged: "
                  f"{', '.join(k for k, ok in r['laws'].items() if not ok) or 'none'}")


if __name__ == "__main__":
    main()
