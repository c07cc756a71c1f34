"""`scalinglab fit SOURCE --backtest` and `--law auto|interaction|farseer`: the candidate forms of L(N, D),
their rolling-origin backtest and the form chosen by it (fit/backtest.py)."""
from __future__ import annotations

import math

from ..errors import ScalingLabError
from ..fit.backtest import backtest, select
from ..fit.forms import FORM_NAMES, finals_nd, fit_forms
from .common import emit_json

FORM_LAWS = ("auto", "interaction", "farseer")  # `--law` values this module answers


def render_table(rows: list[dict], chosen: str | None = None) -> str:
    """The backtest table as text: one row per form."""
    head = (f"  {'form':<12}{'params':>6}{'in-sample':>11}{'backtest':>10}{'max':>8}"
            f"{'<2x':>8}{'2-4x':>8}{'>4x':>8}  cuts converged")
    lines = [head]
    for r in rows:
        bins = {tuple(b["factor"]): b["mean_abs_error"] for b in r["by_factor"]}
        cells = [_pct(bins.get(k)) for k in ((1.0, 2.0), (2.0, 4.0), (4.0, None))]
        mark = " <- chosen" if r["form"] == chosen else ""
        lines.append(f"  {r['form']:<12}{r['n_params']:>6}{_pct(r['insample_rms']):>11}{_pct(r['score']):>10}"
                     f"{_pct(r['max_abs_error']):>8}{cells[0]:>8}{cells[1]:>8}{cells[2]:>8}  "
                     f"{r['cuts_converged']}/{r['cuts_fitted']}{mark}")
    lines.append("  (|log error| in %: in-sample rms on every run; backtest = mean over cuts of the mean |error| "
                 "above the cut; by extrapolation factor 6ND / largest 6ND fitted)")
    return "\n".join(lines)


def _pct(v) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.2f}%"


def run_backtest(args, runs) -> int:
    """`fit --backtest`: every form's backtest on the runs, and the form `--law auto` would choose."""
    finals = finals_nd(runs)
    full = fit_forms(finals)
    bt = backtest(finals, tuple(f for f in FORM_NAMES if f in full), full_fits=full)
    chosen, why = bt.choose()
    rows = bt.table()
    if args.json:
        emit_json({"backtest": rows, "cuts": bt.cuts, "chosen": chosen, "why": why, "n_runs": len(finals),
                   "points": bt.points.to_dict(orient="records")})
    else:
        print(f"backtest of {len(full)} forms on {len(finals)} runs: fit below each of {len(bt.cuts)} compute "
              f"cuts ({', '.join(f'{c:.3g}' for c in bt.cuts)}), predict the runs above")
        print(render_table(rows, chosen))
        print(f"--law auto chooses {chosen}: {why}")
    return 0


def fit_auto(args, runs):
    """`--law auto` (the backtest's choice) or a pinned form, fitted on every run with the bootstrap."""
    pin = None if args.law == "auto" else args.law
    if args.approach is not None:
        raise ScalingLabError(f"--approach applies to --law chinchilla, not {args.law}")
    fit, bt = select(runs, pin=pin, bootstrap=args.bootstrap, seed=args.seed)
    return fit, bt


def print_selection(fit) -> None:
    sel = fit.settings.get("selection") or {}
    if not sel:
        return
    print(f"law auto: the {sel['chosen']} form ({sel['why']})")
    print(render_table(sel["table"], sel["chosen"]))
    model = sel.get("error_model") or {}
    if model.get("s"):
        print(f"  prediction intervals include its backtest error: sd {100 * model['s']:.2f}% x (1 + log2 f) "
              f"of log loss at extrapolation factor f")
