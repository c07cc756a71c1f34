"""`scalinglab plan`: the compute-optimal model for a budget, or the loss of a model, under a law."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ScalingLabError
from ..predict import plan_budget, plan_budget_in_study, plan_point, resolve_law
from ..published import LAWS
from .common import emit_json, positive_float


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="compute-optimal N and D for a budget, or the loss of a model",
                       description="Plan under a published law or a fitted one (FIT.json from `fit --out`).")
    p.add_argument("--law", default="chinchilla",
                   help=f"{' | '.join(LAWS)} | FIT.json (default chinchilla)")
    p.add_argument("--flops", type=positive_float, metavar="C", help="compute budget in FLOPs, e.g. 5.76e23")
    p.add_argument("--params", type=positive_float, metavar="N", help="model size (parameters)")
    p.add_argument("--tokens", type=positive_float, metavar="D", help="training tokens")
    p.add_argument("--fit", metavar="KEY",
                   help="which fit of a file of several (`fit --law all --out`), e.g. "
                                                 "chinchilla:2 or kaplan:L(N,D); default chinchilla:3")
    p.add_argument("--allow-unconverged", action="store_true",
                   help="plan with a fit that did not converge (its warnings are printed with the plan)")
    p.add_argument("--unique-tokens", type=positive_float, metavar="U", default=None,
                   help="with the data-constrained law (`fit --law data-constrained`, Muennighoff et al. "
                        "2023): the unique tokens there are; the plan repeats them as the budget needs")
    p.add_argument("--vocab-size", type=int, default=None,
                   help="vocabulary for the model shape (default: the study's for a study fit, else "
                        "the law's)")
    p.add_argument("--n-ctx", type=int, default=None,
                   help="context length for the model shape (default: the study's for a study fit, "
                        "else 2048)")
    p.add_argument("--schedule", metavar="SPEC",
                   help="with a whole-curve fit (`fit --law multi-power --out`): the loss curve of this LR "
                        "schedule: cosine[:min=F] | wsd[:cooldown=F,min=F] | constant | a CSV of step,lr")
    p.add_argument("--steps", type=int, help="with --schedule: the run's steps")
    p.add_argument("--peak-lr", type=positive_float, help="with --schedule: its peak LR")
    p.add_argument("--warmup", type=int, default=None,
                   help="with --schedule: warm-up steps (default: the trainer's, min(100, steps / 4))")
    p.add_argument("--size", metavar="KEY", help="with --schedule: which size's fit of the file")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    if args.schedule is not None:
        return _schedule(args)
    if args.flops is not None and (args.params is not None or args.tokens is not None):
        raise ScalingLabError("give either --flops C, or --params N with --tokens D, not both")
    if args.flops is None and (args.params is None or args.tokens is None):
        raise ScalingLabError("give --flops C for a compute-optimal plan, or both --params N and --tokens D")
    law = resolve_law(args.law, args.fit)
    unique = args.unique_tokens
    if args.flops is not None and Path(args.law).is_dir():  # a study: its family, vocab and FLOP count
        plan = plan_budget_in_study(args.law, law, args.flops, allow_unconverged=args.allow_unconverged,
                                    unique_tokens=unique)
    elif args.flops is not None:
        plan = plan_budget(law, args.flops, vocab_size=args.vocab_size, n_ctx=args.n_ctx,
                           allow_unconverged=args.allow_unconverged, unique_tokens=unique)
    else:
        plan = plan_point(law, args.params, args.tokens, allow_unconverged=args.allow_unconverged,
                          unique_tokens=unique)
    out = plan.to_dict()
    if args.json:
        emit_json(out)
    else:
        print(render(out))
        for w in out.get("warnings", ()):
            print(f"warning: {w}", file=sys.stderr)
    return 0


def render(out: dict) -> str:
    lines = [f"law: {out['law']}"]
    if out.get("note"):
        lines.append(f"  ({out['note']})")
    if isinstance(out.get("extrapolation"), float) and "flop_convention" in out:
        lines.append(f"  {out['extrapolation']:.3g}x the largest C the law was fitted on; "
                     f"{out['flop_convention']}")
    for key in ("flops", "n_params", "n_tokens", "tokens_per_param", "loss"):
        if key in out:
            span = ""
            iv = out.get("interval")
            if isinstance(iv, dict) and key in iv:
                span = f"   [{iv[key][0]:.6g}, {iv[key][1]:.6g}]"
            elif isinstance(iv, list) and key == "loss":
                span = f"   [{iv[0]:.6g}, {iv[1]:.6g}] law's 95% CI"
                if out.get("prediction_interval"):
                    pi = out["prediction_interval"]
                    span += f"; one new run [{pi[0]:.6g}, {pi[1]:.6g}]"
            lines.append(f"  {key:<17}{_sig(out[key])}{span}")
    if "shape" in out:
        s = out["shape"]
        lines.append(f"  shape            n_layer={s['n_layer']} d_model={s['d_model']} n_head={s['n_head']} "
                     f"d_ff={s['d_ff']} vocab={s['vocab_size']} n_ctx={s['n_ctx']} "
                     f"({s['n_params_kind']} params {_sig(s.get('n_params', out['n_params']))})")
    return "\n".join(lines)


def _sig(v) -> str:
    """A number as plan prints it: 6 significant digits (the JSON keeps every digit)."""
    return f"{float(v):.6g}"


def _schedule(args) -> int:
    """`plan --law CURVEFITS.json --schedule SPEC --steps S --peak-lr LR`: the predicted loss curve of a
    schedule, from a whole-curve law fitted to other schedules of the same model size."""
    import numpy as np

    from ..fit.curvelaws import CurveFit
    from ..fit.fitfile import load_fits
    from ..plan.schedules import per_step
    if args.flops is not None or args.params is not None or args.tokens is not None:
        raise ScalingLabError("--schedule predicts a loss curve: give --steps and --peak-lr, not --flops, "
                              "--params or --tokens")
    if args.steps is None or args.peak_lr is None:
        raise ScalingLabError("--schedule needs --steps S and --peak-lr LR")
    if Path(args.law).is_dir():  # a study: its whole-curve fits (curvefits.json)
        from ..studydir import StudyDir
        found = StudyDir(args.law).curve_fits()
        if found is None:
            raise ScalingLabError(f"{args.law} has no whole-curve fits (a study with curve_laws = true "
                                  "writes them; or `fit STUDY --law multi-power --out FILE`)")
        fits = [f for f in found[0] if isinstance(f, CurveFit)]
    else:
        fits = [f for f in load_fits(args.law) if isinstance(f, CurveFit)]
    if not fits:
        raise ScalingLabError(f"{args.law} is not a whole-curve fit (from `fit --law multi-power|"
                              "lr-annealing --out FILE`)")
    if args.size is not None:  # the size as fitted (N=1.2e+06, model=large) or just its value
        fits = [f for f in fits if args.size in (f.key, f.approach, f.approach.split("=", 1)[-1])] or \
            _no_size(args, fits)
    elif len(fits) > 1:
        _no_size(args, fits)
    fit = fits[0]
    key = fit.approach
    if not fit.converged and not args.allow_unconverged:
        raise ScalingLabError(f"the {fit.label} fit did not converge ("
                              f"{'; '.join(fit.warnings) or 'the optimiser stopped'}); "
                              "--allow-unconverged to use it anyway")
    lr = per_step(args.schedule, args.steps, peak=args.peak_lr, warmup=args.warmup)
    at = np.unique(np.linspace(1, args.steps - 1, min(args.steps - 1, 200)).astype(int))
    loss = fit.predict(lr, at)
    band = fit.predict_interval(lr, at)
    warnings = list(fit.warnings) + [f"not identified (the prediction holds): {n}"
                                     for n in fit.not_identified]
    area = float(np.sum(lr))
    seen = fit.settings.get("area")
    if seen and not seen[0] <= area <= 1.0001 * seen[1]:  # S1 past what the fit saw: say so
        warnings.append(f"this schedule's area (sum of LRs) {area:.4g} lies outside the fitted curves' "
                        f"{seen[0]:.4g} .. {seen[1]:.4g}: the prediction extrapolates")
    out = {"law": fit.law, "size": key, "schedule": args.schedule, "steps": args.steps,
           "peak_lr": args.peak_lr, "final_loss": float(loss[-1]),
           "final_loss_ci": [float(band[0][-1]), float(band[1][-1])] if band else None,
           "curve": [{"step": int(s) + 1, "lr": float(lr[s]), "loss": float(v)} for s, v in zip(at, loss)],
           "warnings": warnings}
    if args.json:
        emit_json(out)
        return 0
    ci = out["final_loss_ci"]
    print(f"{fit.label}, schedule {args.schedule}, {args.steps} steps at peak LR {args.peak_lr:g}: final "
          f"loss {out['final_loss']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}] {100 * fit.level:g}% CI" if ci
                                             else ""))
    for frac in (0.1, 0.25, 0.5, 0.75):
        i = int(np.searchsorted(at, frac * args.steps))
        print(f"  step {at[i] + 1:>8,}  lr {lr[at[i]]:.3g}  loss {loss[i]:.4f}")
    for w in out["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _no_size(args, fits):
    raise ScalingLabError(f"{args.law} has fits for {', '.join(f.approach for f in fits)}: choose one with "
                          "--size")
