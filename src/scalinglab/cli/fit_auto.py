"""`scalinglab fit SOURCE --backtest` and `--law auto|interaction|farseer`: the candidate forms of L(N, D),
their rolling-origin backtest and the form chosen by it (fit/backtest.py)."""
from __future__ import annotations

from ..errors import ScalingLabError
from ..fit.backtest import backtest, render_table, select, unusable
from ..fit.forms import FORMS, finals_nd, fit_forms
from .common import emit_json

OWN_LAWS = ("chinchilla", "kaplan")  # `--law` names that mean their paper's whole family (cli/fit.py)


def answers(law: str) -> bool:
    """Whether `--law NAME` is this module's: auto, or a registered form other than the papers' families."""
    return law == "auto" or (law in FORMS and law not in OWN_LAWS)


def run_backtest(args, runs) -> int:
    """`fit --backtest`: every form's backtest on the runs, and the form `--law auto` would choose."""
    finals = finals_nd(runs)
    full = fit_forms(finals)
    bt = backtest(finals, tuple(f for f in FORMS if f in full), full_fits=full)
    chosen, why = bt.choose(unusable(full, finals))
    rows = bt.table()
    if args.json:
        emit_json({"backtest": rows, "cuts": bt.cuts, "chosen": chosen, "why": why, "n_runs": len(finals),
                   "points": bt.points.to_dict(orient="records")})
    else:
        print(f"backtest of {len(full)} forms on {len(finals)} runs: fit below each of {len(bt.cuts)} "
              f"compute cuts ({', '.join(f'{c:.3g}' for c in bt.cuts)}), predict the runs above")
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
