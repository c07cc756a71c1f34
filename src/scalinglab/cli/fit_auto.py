"""`scalinglab fit SOURCE --backtest` and `--law auto|interaction|farseer`: the candidate forms of L(N, D),
their rolling-origin backtest and the form chosen by it (fit/backtest.py)."""
from __future__ import annotations

from ..errors import ScalingLabError
from ..fit.backtest import render_table, select
from ..fit.forms import FORMS
from .common import emit_json

OWN_LAWS = ("chinchilla", "kaplan")  # `--law` names that mean their paper's whole family (cli/fit.py)


def answers(law: str) -> bool:
    """Whether `--law NAME` is this module's: auto, or a registered form other than the papers' families."""
    return law == "auto" or (law in FORMS and law not in OWN_LAWS)


def run_backtest(args, runs) -> int:
    """`fit --backtest`: every form's backtest on the runs, and the form `--law auto` would choose."""
    fit, bt = select(runs)
    sel = fit.settings["selection"]
    if args.json:
        emit_json({"backtest": sel["table"], "cuts": bt.cuts, "chosen": sel["chosen"], "why": sel["why"],
                   "n_runs": fit.n_runs, "points": bt.points.to_dict(orient="records")})
    else:
        print(f"backtest of {len(bt.forms)} forms on {fit.n_runs} runs: fit below each of {len(bt.cuts)} "
              f"compute cuts ({', '.join(f'{c:.3g}' for c in bt.cuts)}), predict the runs above")
        print(render_table(sel["table"], sel["chosen"]))
        print(f"--law auto chooses {sel['chosen']}: {sel['why']}")
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
