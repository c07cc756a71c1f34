"""Which form extrapolates, and does `--law auto` choose it? Every published (N, D, loss) table in
../shared/reference-data plus any study directories given on the command line.

For each ladder: the top compute level is held out; `select` (backtest on the rest) picks a form; the
table prints every form's mean |error| on the held-out level beside the chosen one's, the 95% prediction
interval's coverage of the held-out runs, and the time of one `select` call.

    python benchmarks/law_selection.py [STUDY_DIR ...]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from scalinglab.fit.backtest import compute_levels, select
from scalinglab.fit.forms import FORMS, finals_nd, fit_forms

REF = Path(__file__).resolve().parents[2] / "shared" / "reference-data"


def ladders(studies=()) -> dict[str, pd.DataFrame]:
    out = {"epoch_chinchilla_excl5": pd.read_csv(REF / "epoch_chinchilla_excl5.csv")[["N", "D", "C", "loss"]]}
    oa = pd.read_csv(REF / "openathena2026_isoflops.csv")
    oa = oa[~oa["outlier"].astype(bool)]
    for exp, g in oa.groupby("experiment"):
        if "exp_loss" in exp:
            continue
        out[f"openathena:{exp.split('__')[0]}:{exp.split('__')[1]}"] = pd.DataFrame(
            {"N": g["params"], "D": g["tokens"], "loss": g["loss"], "budget": g["budget"]})
    cs = pd.DataFrame(json.loads((REF / "cs336_isoflops.json").read_text()))
    out["cs336"] = pd.DataFrame({"N": cs["parameters"], "C": cs["compute_budget"],
                                 "D": cs["compute_budget"] / (6 * cs["parameters"]), "loss": cs["final_loss"],
                                 "budget": cs["compute_budget"]})
    po = pd.read_csv(REF / "porian2024_isoflop_points.csv")
    for (ds, hp, _wu, dec, pc, _val), g in po.groupby(["dataset", "hparams", "warmup", "decay", "param_count",
                                                      "val"]):
        if hp == "tuned" and pc == "standard":
            out[f"porian:{ds}:{hp}:{dec}"] = pd.DataFrame({"N": g["N"], "D": g["tokens"], "loss": g["loss"],
                                                           "budget": g["flops"]})
    for s in studies:
        from scalinglab.store import SQLiteStore
        out[f"study:{Path(s).name}"] = SQLiteStore.open(Path(s) / "study.sqlite", readonly=True).curve_table()
    return out


def evaluate(name: str, table: pd.DataFrame) -> dict:
    finals = finals_nd(table)
    levels = compute_levels(finals)
    top = levels == levels.max()
    train, test = finals[~top], finals[top]
    t0 = time.perf_counter()
    fit, bt = select(train, bootstrap=200)
    seconds = time.perf_counter() - t0
    chosen = fit.settings["selection"]["chosen"]
    whole, _ = select(finals)  # the backtest on every run: what `fit TABLE --backtest` prints
    sel = whole.settings["selection"]
    fixed = fit_forms(train)
    N, D, y = (test[c].to_numpy(float) for c in ("N", "D", "loss"))
    errors = {f: float(np.mean(np.abs(np.log(g.predict(N, D) / y)))) for f, g in fixed.items()}
    lo, hi = fit.predict_interval(N, D, kind="prediction")
    return {"ladder": name, "runs": len(finals), "held_out": int(top.sum()), "chosen": chosen,
            "chosen_error": errors[chosen], "errors": errors,
            "covered": float(np.mean((lo <= y) & (y <= hi))),
            "n_covered": int(((lo <= y) & (y <= hi)).sum()),
            "seconds": seconds, "cuts": len(bt.cuts),
            "full": {"chosen": sel["chosen"], "cuts": len(sel["cuts"]),
                     "scores": {r["form"]: r["score"] for r in sel["table"]}}}


def main(argv):
    rows = []
    with threadpool_limits(1, "blas"):
        for name, table in ladders(argv).items():
            r = evaluate(name, table)
            rows.append(r)
            errs = "  ".join(f"{f} {100 * r['errors'].get(f, np.nan):5.2f}%" for f in FORMS)
            print(f"{name:45s} {r['runs']:4d} runs, top level {r['held_out']:3d}: {errs}  -> "
                  f"{r['chosen']:11s} {100 * r['chosen_error']:5.2f}%  covered {100 * r['covered']:3.0f}%  "
                  f"{r['seconds']:.1f} s",
                  flush=True)
    print("\nbacktest on every run of each table (score: mean over cuts of the mean |log error| above it):")
    for r in rows:
        sc = "  ".join(f"{f} {100 * v:5.2f}%" if v is not None else f"{f}   -   "
                       for f, v in r["full"]["scores"].items())
        print(f"{r['ladder']:45s} {r['full']['cuts']} cuts: {sc}  -> {r['full']['chosen']}")
    chin = np.array([r["errors"]["chinchilla"] for r in rows])
    auto = np.array([r["chosen_error"] for r in rows])
    best = np.array([min(r["errors"].values()) for r in rows])
    print(f"mean |error| at the top level over {len(rows)} ladders: chinchilla {100 * chin.mean():.2f}%, "
          f"auto {100 * auto.mean():.2f}%, best form in hindsight {100 * best.mean():.2f}%; auto better on "
          f"{int((auto < chin - 1e-4).sum())}, worse on {int((auto > chin + 1e-4).sum())}")
    held = sum(r["held_out"] for r in rows)
    print(f"95% prediction interval of the chosen law: holds {sum(r['n_covered'] for r in rows)} of {held} "
          f"held-out runs ({100 * sum(r['n_covered'] for r in rows) / held:.0f}%)")


if __name__ == "__main__":
    main(sys.argv[1:])
