"""`scalinglab fit SOURCE`: fit a law to a table of runs (CSV/Parquet) and optionally save FIT.json."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ScalingLabError
from ..fit import io
from ..fit.estimators import ChinchillaFit
from .common import emit_json, positive_float

LAWS = ("chinchilla", "kaplan", "all")
APPROACHES = ("1", "2", "3", "all")
IMPLEMENTED = {("chinchilla", "3")}


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit a scaling law to runs (CSV/Parquet)",
                       description="Fit a scaling law to a table of runs from any trainer: columns N, D, loss "
                                   "(aliases n_params/params/n_params_total/n_params_nonembed, "
                                   "n_tokens/tokens), optional C/flops, run_id, step, budget.")
    p.add_argument("source", metavar="SOURCE", help="CSV or Parquet file of runs, or a study directory")
    p.add_argument("--law", default="chinchilla", help="chinchilla | kaplan | all (default chinchilla)")
    p.add_argument("--approach", default="3", help="1 | 2 | 3 | all (default 3)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="K", help="bootstrap resamples for CIs")
    p.add_argument("--out", metavar="FIT.json", help="write the fit here (read back by `plan --law`)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--loss", default="huber", choices=("huber", "mse", "asymmetric"))
    p.add_argument("--delta", type=positive_float, default=1e-3, help="Huber delta on log loss")
    p.add_argument("--fixed-E", type=positive_float, default=None, help="hold the irreducible loss E fixed")
    p.add_argument("--ci-flops", type=positive_float, default=None,
                   help="budget at which CIs of N_opt, D_opt, L_opt are given (default 4x largest run)")
    p.add_argument("--seed", type=int, default=0)
    for name in ("N", "D", "loss"):
        p.add_argument(f"--{name.lower()}-col", dest=f"col_{name}", metavar="COLUMN",
                       help=f"the column holding {name} (default: first alias found)")


def _check_choice(flag: str, value: str, choices) -> str:
    if value not in choices:
        raise ScalingLabError(f"unknown {flag} {value!r}: choose one of {', '.join(choices)}")
    return value


def _check_out(out: str | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.is_dir():
        raise ScalingLabError(f"--out {path} is a directory; give a file name such as fit.json")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ScalingLabError(f"cannot write --out {path}: directory {parent} does not exist or is not writable")
    return path


def run(args) -> int:
    law = _check_choice("--law", args.law, LAWS)
    approach = _check_choice("--approach", args.approach, APPROACHES)
    if (law, approach) not in IMPLEMENTED:
        raise ScalingLabError(f"--law {law} --approach {approach} is not implemented yet; "
                              f"this version fits --law chinchilla --approach 3")
    if args.bootstrap and args.bootstrap < 2:
        raise ScalingLabError(f"--bootstrap needs at least 2 resamples, got {args.bootstrap}")
    out = _check_out(args.out)
    if Path(args.source).is_dir():
        from ..store import SQLiteStore
        store_path = Path(args.source) / "study.sqlite"
        if not store_path.exists():
            raise ScalingLabError(f"{args.source} is not a study directory (no study.sqlite)")
        runs = SQLiteStore.open(store_path).fit_table()
        if len(runs) == 0:
            raise ScalingLabError(f"{args.source}: the study has no finished runs yet")
    else:
        runs, _ = io.load_runs(args.source, {"N": args.col_N, "D": args.col_D, "loss": args.col_loss})
    fitter = ChinchillaFit(loss=args.loss, delta=args.delta, fixed_E=args.fixed_E, bootstrap=args.bootstrap,
                           ci_flops=args.ci_flops, seed=args.seed)
    result = fitter.fit(runs).result_
    if out is not None:
        result.save(out)
    if args.json:
        emit_json(result.to_dict(draws=False))
    else:
        print(result.summary())
        if out is not None:
            print(f"wrote {out}")
    return 0
