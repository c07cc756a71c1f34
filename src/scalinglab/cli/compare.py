"""`scalinglab compare A B [...]`: studies (or fitted-law files) side by side, and the compute multiplier."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ScalingLabError


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="laws of two or more studies side by side, and the compute multiplier",
                       description="The fitted laws of studies (or fit files) side by side with intervals, "
                                   "their loss-vs-compute frontiers overlaid, and the compute multiplier of "
                                   "each against the first: how many times the compute it needs to reach "
                                   "the loss the first reaches at a budget (> 1: each FLOP is worth less), "
                                   "with a paired-bootstrap interval. Writes an HTML page.")
    p.add_argument("inputs", nargs="+", metavar="STUDY_OR_FIT", help="the first is the reference")
    p.add_argument("--law", default="chinchilla:3", help="the fit compared (default chinchilla:3)")
    p.add_argument("--at", metavar="C", action="append", type=float,
                   help="a budget (FLOPs, 6ND) to give the multiplier at; repeatable (default: the "
                        "reference study's budgets)")
    p.add_argument("--out", metavar="FILE", default="compare.html", help="the page (default compare.html)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")


def run(args) -> int:
    from ..atomic import write_text
    from ..compare import compare, text
    from ..jsonsafe import dumps
    from ..report.compare_page import page
    if args.at is not None and any(not (c > 0 and c < float("inf")) for c in args.at):
        raise ScalingLabError(f"--at must be positive budgets in FLOPs, got {args.at}")
    out = Path(args.out)
    if out.is_dir():
        raise ScalingLabError(f"--out {out} is a directory; give a file name")
    result, sides = compare(args.inputs, law=args.law, budgets=sorted(args.at) if args.at else None)
    write_text(out, page(result, sides))
    print(dumps(result, indent=1) if args.json else text(result))
    print(f"wrote {out}", file=sys.stderr)
    return 0
