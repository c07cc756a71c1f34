"""`scalinglab fit SOURCE`: fit a law to a table of runs (CSV/Parquet) and optionally save FIT.json."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from ..errors import NotFittable, ScalingLabError
from ..fit.chinchilla.approach3 import ChinchillaFit
from ..fit.core import table as runs_table
from ..fit.every import fit_every, plan_fits
from . import fit_auto
from .common import emit_json, in_cli_terms, positive_float

APPROACHES = ("1", "2", "3", "all")


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit a scaling law to runs (CSV/Parquet)",
                       description="Fit a scaling law to a table of runs from any trainer: columns N, D, "
                                   "loss (aliases n_params/params/n_params_total/n_params_nonembed, "
                                   "n_tokens/tokens), optional C/flops, run_id, step, budget.")
    p.add_argument("source", metavar="SOURCE", help="CSV or Parquet file of runs, or a study directory")
    p.add_argument("--law", default="chinchilla",
                   help="chinchilla | kaplan (with B_crit) | data-constrained | all (default chinchilla); "
                        "auto: the form of L(N, D) with the lowest backtest error (chinchilla, kaplan, "
                        "interaction, farseer), or interaction | farseer pinned; "
                        "multi-power | lr-annealing: a whole-curve law fitted to loss curves and their LR "
                        "schedules (a CSV with columns run, step, lr, loss; docs/fitting.md)")
    p.add_argument("--size-col", metavar="COLUMN",
                   help="whole-curve laws: one fit per value of this column (e.g. the model size)")
    p.add_argument("--approach", default=None,
                   help="Chinchilla approach: 1 | 2 | 3 | all (default 3; all with --law all)")
    p.add_argument("--transient", type=float, default=0.1,
                   help="curve-based fits skip each run's evals before this fraction of its steps "
                        "(default 0.1)")
    p.add_argument("--backtest", action="store_true",
                   help="rolling-origin backtest of every candidate form of L(N, D): fit below a compute "
                        "cut, predict the runs above, for several cuts; a table (--json: the same)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="K", help="bootstrap resamples for CIs")
    p.add_argument("--out", metavar="FIT.json", help="write the fit here (read back by `plan --law`)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--format", default="text", choices=("text", "md", "tex"),
                   help="text (default) | md | tex: each fit's parameter table as Markdown or LaTeX")
    p.add_argument("--report", metavar="DIR", help="also write report.html and the figures into DIR")
    p.add_argument("--loss", default="huber", choices=("huber", "mse", "asymmetric"))
    p.add_argument("--delta", type=positive_float, default=1e-3, help="Huber delta on log loss")
    p.add_argument("--fixed-E", type=positive_float, default=None, help="hold the irreducible loss E fixed")
    p.add_argument("--ci-flops", type=positive_float, default=None,
                   help="budget at which CIs of N_opt, D_opt, L_opt are given (default 4x largest run)")
    p.add_argument("--seed", type=int, default=0)
    for name, flag in (("N", "n"), ("D", "d"), ("loss", "loss"), ("run_id", "run"), ("step", "step")):
        p.add_argument(f"--{flag}-col", dest=f"col_{name}", metavar="COLUMN",
                       help=f"the column holding {name} (default: first alias found)" + (
                           "; for a study directory, a validation source (e.g. sotu): the law of that "
                           "source's loss" if name == "loss" else ""))
    p.add_argument("--n-units", metavar="U",
                   help="N column in 1 | K | M | B | T parameters (default: from the "
                                                  "column's name, e.g. params_M, else 1)")
    p.add_argument("--d-units", metavar="U", help="D column in 1 | K | M | B | T tokens (as --n-units)")
    p.add_argument("--loss-units", metavar="U", help="loss column in nats | bits (default: bits for a *_bits "
                                                     "column, else nats)")


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
        raise ScalingLabError(f"cannot write --out {path}: directory {parent} does not exist or is "
                              "not writable")
    return path


INPUT_FLAGS = (("col_N", "--n-col"), ("col_D", "--d-col"), ("col_loss", "--loss-col"),
               ("col_run_id", "--run-col"), ("col_step", "--step-col"), ("n_units", "--n-units"),
               ("d_units", "--d-units"), ("loss_units", "--loss-units"))


def _load(args):
    """A study's learning curves (their last rows are the finals) or the user's table, with what it means."""
    if Path(args.source).is_dir():
        given = [flag for dest, flag in INPUT_FLAGS if getattr(args, dest, None) and dest != "col_loss"]
        if given:
            raise ScalingLabError(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to a CSV or "
                                  "Parquet table, not a study directory (a study's columns and units are "
                                  "its own)")
        from ..lock import running_note
        from ..studydir import StudyDir
        study = StudyDir(args.source)
        note = running_note(args.source)
        if note:
            print(note, file=sys.stderr)
        with study.store() as store:
            runs = store.curve_table().with_context(**store.model_context())
        if len(runs) == 0:
            raise ScalingLabError(f"{args.source}: the study has no finished runs yet")
        if args.col_loss:
            runs = _source_loss(runs, args.col_loss, args.source)
        return runs
    columns = {"N": args.col_N, "D": args.col_D, "loss": args.col_loss, "run_id": args.col_run_id,
               "step": args.col_step}
    runs, _ = runs_table.load_runs(args.source, columns, n_units=args.n_units, d_units=args.d_units,
                                   loss_units=args.loss_units)
    for note in runs.input["notes"]:
        print(f"warning: {in_cli_terms(note, ('n_units', 'd_units'))}", file=sys.stderr)
    return runs


def _source_loss(runs, name: str, source: str):
    """A study's table with one validation source's loss as `loss` (--loss-col SOURCE or loss:SOURCE)."""
    frame = runs.frame
    have = [c.split(":", 1)[1] for c in frame.columns if c.startswith("loss:")]
    column = name if name.startswith("loss:") else f"loss:{name}"
    if column not in frame:
        why = f"per-source losses for {', '.join(have)}" if have else \
            "no per-source losses (its corpus has one source, or the study was run before they were kept)"
        raise ScalingLabError(f"--loss-col {name}: {source} has {why}")
    print(f"fitting the validation loss on {column[5:]} alone", file=sys.stderr)
    return runs.with_frame(frame.assign(loss=frame[column]).dropna(subset=["loss"]))


CURVE_LAWS = ("multi-power", "lr-annealing")


def run(args) -> int:
    if args.law in CURVE_LAWS:
        if args.format != "text":
            raise ScalingLabError("--format md|tex applies to laws of N, D and C, not the whole-curve laws")
        return _curve_law(args)
    _check_args(args)
    if args.backtest:
        from .fit_auto import run_backtest
        return run_backtest(args, _load(args))
    if fit_auto.answers(args.law):
        return _form_law(args)
    todo = plan_fits(args.law, args.approach)
    out = _check_out(args.out)
    runs = _load(args)
    if todo == [("chinchilla", "3")]:
        fits, skipped = [_approach3(runs, args)], []
    else:
        fits, skipped = fit_every(runs, todo, approach3=lambda t: _approach3(t, args),
                                  bootstrap=args.bootstrap, seed=args.seed, transient=args.transient,
                                  delta=args.delta)
    # a study's fits plan shapes in the study's vocabulary and context; a table's fits record what its
    # columns and units were taken to mean
    context = _context(runs)
    if context:
        fits = [dataclasses.replace(f, settings=dict(f.settings) | context) for f in fits]
    if not fits:
        raise ScalingLabError("no law could be fitted: "
                              + "; ".join(f"{s['law']} {s['approach']}: {s['reason']}" for s in skipped))
    _report(args, runs, next((f for f in fits if f.key == "chinchilla:3"), None))
    if out is not None:
        if len(todo) == 1:
            fits[0].save(out)
        else:
            _save_many(out, fits, skipped)
    if args.json:
        emit_json(fits[0].to_dict(draws=False) if len(todo) == 1 else
                  {"fits": [f.to_dict(draws=False) for f in fits], "skipped": skipped})
    elif args.format != "text":
        from ..report.tables import law_table
        print("\n\n".join(law_table(f, args.format) for f in fits))
    else:
        print("\n\n".join(f.summary() for f in fits))
        for s in skipped:
            print(f"skipped {s['law']} {s['approach']}: {s['reason']}")
        if out is not None:
            print(f"wrote {out}")
    return 0


def _check_args(args) -> None:
    if args.size_col:
        raise ScalingLabError("--size-col applies to the whole-curve laws (--law multi-power | lr-annealing)")
    if args.json and args.format != "text":
        raise ScalingLabError("give --json or --format md|tex, not both")
    if args.approach is not None:
        _check_choice("--approach", args.approach, APPROACHES)
    if args.bootstrap and args.bootstrap < 2:
        raise ScalingLabError(f"--bootstrap needs at least 2 resamples, got {args.bootstrap}")
    if not 0 <= args.transient < 1:
        raise ScalingLabError(f"--transient must be in [0, 1), got {args.transient}")


def _context(runs) -> dict:
    """What a fit's settings record of its table: a study's model context (its fits plan shapes in the
    study's vocabulary and context), a file's columns and units as read."""
    return dict(runs.context) | ({"input": dict(runs.input)} if runs.input else {})


def _form_law(args) -> int:
    """--law auto | interaction | farseer: one candidate form (the backtest's choice for auto)."""
    from .fit_auto import fit_auto, print_selection
    out = _check_out(args.out)
    runs = _load(args)
    fit, _ = fit_auto(args, runs)
    context = _context(runs)
    if context:
        fit = dataclasses.replace(fit, settings=dict(fit.settings) | context)
    if out is not None:
        fit.save(out)
    _report(args, runs, fit if fit.key == "chinchilla:3" else None, also=[fit])
    if args.json:
        emit_json(fit.to_dict(draws=False))
    elif args.format != "text":
        from ..report.tables import law_table
        print(law_table(fit, args.format))
    else:
        print_selection(fit)
        print(fit.summary())
        if out is not None:
            print(f"wrote {out}")
    return 0


def _report(args, runs, fit3, also=()) -> None:
    """--report DIR: the study report's figures and tables for a table of runs from any trainer (``also``:
    a fit of a form that `--law all` does not fit, shown with the others)."""
    if not args.report:
        return
    from ..report.html import build
    if fit3 is None:
        try:
            fit3 = _approach3(runs, args)
        except ScalingLabError:
            fit3 = None
    from ..fit.every import REPORT_BOOTSTRAP, fit_every, plan_fits
    has_curves = "step" in {str(c).lower() for c in runs.frame.columns}
    fits, skipped = fit_every(runs, plan_fits("all"), approach3=lambda _: _given(fit3),
                              bootstrap=args.bootstrap or REPORT_BOOTSTRAP)  # the asked resamples, if any
    page = build({"title": f"scalinglab fit {args.source}", "curves": runs if has_curves else None,
                  "finals": runs, "fit3": fit3,
                  "fits": ([f for f in fits if f is not fit3] + [f for f in also if f is not fit3], skipped)},
                 Path(args.report))
    print(f"wrote {page}", file=sys.stderr)


def _given(fit3):
    if fit3 is None:
        raise NotFittable("no Approach 3 fit for this table")
    return fit3


def _approach3(runs, args):
    from ..fit.chinchilla.approach3 import SCREEN_RUNS
    if len(runs) > 50 * SCREEN_RUNS:  # a long fit says what it is doing (1M runs: ~7 s)
        print(f"fitting {len(runs):,} rows: the 4500 starts screened on {SCREEN_RUNS:,} of them, the best "
              "polished on all", file=sys.stderr)
    fitter = ChinchillaFit(loss=args.loss, delta=args.delta, fixed_E=args.fixed_E, bootstrap=args.bootstrap,
                           ci_flops=args.ci_flops, seed=args.seed)
    return fitter.fit(runs).result_


def _save_many(path: Path, fits: list, skipped: list, extra: dict | None = None) -> None:
    """Every fit with its bootstrap draws, in one file `plan --law FILE --fit KEY` reads."""
    from ..fit.fitfile import write_fits
    write_fits(path, fits, skipped, **(extra or {}))


def _curve_law(args) -> int:
    """`fit CURVES.csv|STUDY --law multi-power|lr-annealing`: one fit per model size (``--size-col``; a
    study's N), each with its in-sample mean |relative error| per curve and, with ``--bootstrap K``,
    intervals from K refits on resampled curve segments."""
    from ..fit.curvelaws import curves_from_table, estimate_summary, fit_curves, leave_one_out_estimates
    out = _check_out(args.out)
    runs, estimates = None, None
    if Path(args.source).is_dir() and (Path(args.source) / "result.json").exists():  # one run's directory
        curve = _run_curve(Path(args.source))
        groups, notes, prefix = {curve.name: [curve]}, [], "run="
    elif Path(args.source).is_dir():
        runs, notes = _study_runs(Path(args.source)), []
        groups = {}
        for n, curve in sorted(runs.values(), key=lambda nc: nc[0]):
            groups.setdefault(f"{n:.6g}", []).append(curve)
        prefix = "N="
    else:
        groups, notes = curves_from_table(runs_table.read_table(args.source), group=args.size_col)
        prefix = f"{args.size_col}=" if args.size_col else ""
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    fits = [fit_curves(curves, args.law, name=f"{prefix}{key}", bootstrap=args.bootstrap, seed=args.seed)
            for key, curves in groups.items()]
    fits = [dataclasses.replace(f, settings=dict(f.settings) | {"source": str(args.source)}) for f in fits]
    if runs is not None:  # a study: each run's end estimated from its first 30% / 50% (the others' law)
        estimates = leave_one_out_estimates(runs, law=args.law)
    extra = {"estimates": estimates, "estimate_summary": estimate_summary(estimates)} if estimates else {}
    if out is not None:
        if len(fits) == 1 and not extra:
            fits[0].save(out)
        else:
            _save_many(out, fits, [], extra)
    if args.json:
        emit_json((fits[0].to_dict(draws=False) if len(fits) == 1 and not extra else
                   {"fits": [f.to_dict(draws=False) for f in fits], "skipped": []}) | extra)
        return 0
    print("\n\n".join(f.summary() for f in fits))
    if estimates:
        print("\nfinal loss estimated part-way, with the law of the study's other runs (docs/fitting.md):")
        print(f"  {'run':12s} {'N':>9s} {'from':>5s} {'estimated':>9s} {'measured':>9s} {'error':>7s}")
        for r in estimates:
            print(f"  {r['run_id']:12s} {r['N']:9.4g} {100 * r['fraction']:4.0f}% {r['final']:9.4f} "
                  f"{r['measured']:9.4f} {100 * r['error']:+6.2f}%" + ("" if r["converged"] else
                                                                      "  (flagged)"))
        for frac, s in extra["estimate_summary"].items():
            print(f"  from {100 * float(frac):.0f}%: median |error| {100 * s['median_abs_error']:.2f}%, max "
                  f"{100 * s['max_abs_error']:.2f}% over {s['n']} runs")
    if out is not None:
        print(f"wrote {out}")
    return 0


def _run_curve(run_dir: Path):
    """A run directory's dense curve (result.json's probe points past warm-up, its spec's LR per step)."""
    import json

    import numpy as np

    from ..fit.curvelaws import Curve
    from ..plan import schedules
    from ..plan.spec import RunSpec
    try:
        result = json.loads((run_dir / "result.json").read_text())
        spec = RunSpec.from_dict(json.loads((run_dir / "config.json").read_text())["spec"])
        peak, run_id, curve = float(result["lr"]), str(result["run_id"]), list(result.get("curve") or [])
    except (OSError, ValueError, KeyError, TypeError):
        raise ScalingLabError(f"{run_dir}: result.json and config.json are not a run's (unreadable or "
                              "missing fields)") from None
    pts = [p for p in curve if p["step"] > schedules.warmup_of(spec) + 1]
    if len(pts) < 3:
        raise ScalingLabError(f"{run_dir}: the run kept {len(pts)} curve point(s) past its warm-up; a fit "
                              "needs at least 3 (runs from before scalinglab kept curves have none)")
    column = "probe" if all(p.get("probe") is not None for p in pts) else "loss"
    return Curve(run_id, schedules.of_run(spec, peak), np.array([p["step"] - 1 for p in pts]),
                 np.array([p[column] for p in pts], dtype=float))


def _study_runs(study: Path) -> dict:
    """A study's finished grid runs as whole curves: {run_id: (N, Curve)} (fit/curvelaws/)."""
    from ..fit.curvelaws import curves_of_runs
    from ..studydir import StudyDir
    with StudyDir(study).store() as store:
        rows = store.training_curves()
    if not len(rows):
        raise ScalingLabError(f"{study}: no finished run has a training curve (studies trained before "
                              "scalinglab kept them have none)")
    return curves_of_runs(rows)
