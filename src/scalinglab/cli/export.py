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
                   help="default: STUDY_DIR/export/runs.csv (or curves, .parquet), inside the study")
    p.add_argument("--json", action="store_true",
                   help="print {\"wrote\": FILE, \"rows\": K, ...} as one JSON object")


def run(args) -> int:
    from ..studydir import StudyDir
    if args.format not in ("csv", "parquet"):
        raise ScalingLabError(f"--format must be csv or parquet, not {args.format!r}")
    if args.format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:  # issue 30 R19: was an ImportError traceback
            raise ScalingLabError("--format parquet needs pyarrow: pip install pyarrow (or --format csv)") \
                from None
    if args.role not in ("grid", "holdout", "noise"):
        raise ScalingLabError(f"--role must be grid, holdout or noise, not {args.role!r}")
    study = StudyDir(args.study_dir).path
    what = "curves" if args.curves else "runs"
    out = Path(args.out) if args.out else study / "export" / f"{what}.{args.format}"
    if not args.out:
        from ..lock import refuse_links
        refuse_links(study)  # a linked export/ would take the file outside the study (issue 30 R2)
    if out.suffix.lower() not in ((".parquet", ".pq") if args.format == "parquet" else (".csv",)):
        raise ScalingLabError(f"--out {out}: a {args.format} file's name ends in "
                              f"{'.parquet' if args.format == 'parquet' else '.csv'}")
    if out.is_dir():
        raise ScalingLabError(f"--out {out} is a directory; give a file name")
    with StudyDir(study).store() as store:
        runs = store.runs(role=args.role, status="done")
        if not len(runs):
            raise ScalingLabError(f"{study} has no finished {args.role} run to export")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ScalingLabError(f"cannot write {out} ({exc.strerror}): give --out FILE elsewhere") from None
        store.export(out, curves=args.curves, role=args.role)
    rows = _rows(out)
    note = (WHAT_HOLDS_CURVES if args.curves else WHAT_HOLDS_RUNS)
    if args.json:
        from .common import emit_json
        emit_json({"wrote": str(out), "rows": rows, "runs": int(len(runs)), "role": args.role,
                   "curves": bool(args.curves), "format": args.format, "fit_gives": note})
    else:
        print(f"wrote {out}: {rows} rows ({len(runs)} {args.role} runs); `scalinglab fit` of it gives {note}",
              file=sys.stderr)
    return 0


def _rows(path: Path) -> int:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq
        return int(pq.ParquetFile(path).metadata.num_rows)
    with open(path) as fh:
        return sum(1 for _ in fh) - 1


# what `fit FILE --law all` of an export reproduces of the study's own fits (tests/integration/test_study.py)
WHAT_HOLDS_RUNS = ("the study's Chinchilla Approaches 2 and 3 and Kaplan's L(N), L(N,D); the laws of "
                   "learning curves (Approach 1, L(D) and L(C) on the envelope, L(N,S), B_crit) need "
                   "--curves")
WHAT_HOLDS_CURVES = "every law of the study, equal to its own fits"
