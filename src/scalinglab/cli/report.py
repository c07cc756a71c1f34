"""`scalinglab report STUDY_DIR`: report.html (self-contained) and one PNG per figure; --json: the held-out
check."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ..errors import ScalingLabError
from .common import emit_json


def add_parser(sub) -> None:
    p = sub.add_parser("report",
                       help="write a study's report.html and figures; --json prints the held-out check")
    p.add_argument("study_dir", metavar="STUDY_DIR")
    p.add_argument("--out", metavar="DIR",
                   help="where report.html and the PNGs go (default: STUDY_DIR/report)")
    p.add_argument("--json", action="store_true", help="print {\"holdout\": {...}} as one JSON object")
    p.add_argument("--format", default=None, choices=("md", "tex"),
                   help="md | tex: print the law that predicts and the allocation table as Markdown or LaTeX "
                        "(no page written)")
    p.add_argument("--refit", action="store_true",
                   help="fit every law again (and save fits.json) instead of drawing the study's saved fits")


def run(args) -> int:
    from ..lock import DirLock, refuse_links, running_note
    from ..report.summary import render
    from ..studydir import StudyDir  # light: the page's modules (matplotlib) only when it is written
    path = Path(args.study_dir)
    study = StudyDir(path)
    summary = study.summary()
    note = running_note(path)
    if note:
        print(note, file=sys.stderr)
    if args.format:
        if args.json:
            raise ScalingLabError("give --json or --format md|tex, not both")
        if summary.holdout is None:
            raise ScalingLabError(f"{path} is a batch sweep: it has no law of N and D or allocations to "
                                  "tabulate")
        from ..report.tables import allocation_table, law_table
        law = study.law()
        print(law_table(law, args.format) + "\n\n" + allocation_table(summary.allocations, args.format,
                                                                        law.label))
        return 0
    if args.json:
        if summary.holdout is None:  # a batch sweep has no held-out run
            emit_json({k: summary.raw[k] for k in ("study", "study_id", "kind", "bcrit") if k in summary.raw})
            return 0
        h = summary.holdout
        emit_json({"holdout": {"predicted": h.predicted, "measured": h.measured, "rel_error": h.rel_error,
                               "interval": list(h.interval) if h.interval else None,
                               "inside_interval": h.inside_interval, "fit_converged": h.fit_converged,
                               "law": h.raw.get("law")},
                   "law_converged": summary.law_converged, "final": summary.final})
    else:
        refuse_links(path)  # a linked report/ would take the page outside the study (issue 30 R2)
        print(render(summary))
        from ..report.html import build, study_inputs
        out = Path(args.out) if args.out else path / "report"
        # the study is written to when the page goes inside it, or when --refit rewrites its fits.json
        # (issue 30 R13: with --out elsewhere it was rewritten while `run` held the lock)
        writes_study = args.refit or out.resolve().is_relative_to(path.resolve())
        with DirLock(path, "report") if writes_study else contextlib.nullcontext():
            page = build(study_inputs(study, summary, refit=args.refit), out)
        print(f"wrote {page}")
    return 0

