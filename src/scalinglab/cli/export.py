"""`scalinglab export STUDY_DIR`: a study's finished runs as the table `scalinglab fit` reads."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ScalingLabError


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a study's finished runs as CSV or Parquet (fit reads it back)",
                       description="A study's finished runs as a table: one row per run (N, D, loss, C, "
                                   "budget, ...), or with --curves one row per eval (each row's own step, "
                                   "tokens and loss so far). `scalinglab fit FILE` gives the study's fits.")
    p.add_argument("study_dir", metavar="STUDY_DIR")
    p.add_argument("--format", default="csv", help="csv | parquet (default csv)")
    p.add_argument("--curves", action="store_true", help="one row per eval instead of one per run")
    p.add_argument("--role", default="grid",
                   help="grid (the runs the laws are fitted to; default) | holdout | noise (seed repeats)")
    p.add_argument("--out", metavar="FILE",
                   help="default: ./STUDY-runs.csv (or -curves, .parquet) in the working directory")


def run(args) -> int:
    from ..studydir import StudyDir
    if args.format not in ("csv", "parquet"):
        raise ScalingLabError(f"--format must be csv or parquet, not {args.format!r}")
    if args.role not in ("grid", "holdout", "noise"):
        raise ScalingLabError(f"--role must be grid, holdout or noise, not {args.role!r}")
    study = StudyDir(args.study_dir).path
    what = "curves" if args.curves else "runs"
    out = Path(args.out) if args.out else Path(f"{study.resolve().name}-{what}.{args.format}")
    if out.suffix.lower() not in ((".parquet", ".pq") if args.format == "parquet" else (".csv",)):
        raise ScalingLabError(f"--out {out}: a {args.format} file's name ends in "
                              f"{'.parquet' if args.format == 'parquet' else '.csv'}")
    if out.is_dir():
        raise ScalingLabError(f"--out {out} is a directory; give a file name")
    with StudyDir(study).store() as store:
        if not len(store.runs(role=args.role, status="done")):
            raise ScalingLabError(f"{study} has no finished {args.role} run to export")
        store.export(out, curves=args.curves, role=args.role)
    print(f"wrote {out}", file=sys.stderr)
    return 0
