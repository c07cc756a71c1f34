"""`scalinglab plan`: the compute-optimal model for a budget, or the loss of a model, under a law."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ScalingLabError
from ..predict import plan_budget, plan_budget_in_study, plan_point, resolve_law
from ..published import LAWS
from .common import emit_json, full, positive_float


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
    p.add_argument("--vocab-size", type=int, default=None,
                   help="vocabulary for the model shape (default: the study's for a study fit, else "
                        "the law's)")
    p.add_argument("--n-ctx", type=int, default=None,
                   help="context length for the model shape (default: the study's for a study fit, "
                        "else 2048)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    if args.flops is not None and (args.params is not None or args.tokens is not None):
        raise ScalingLabError("give either --flops C, or --params N with --tokens D, not both")
    if args.flops is None and (args.params is None or args.tokens is None):
        raise ScalingLabError("give --flops C for a compute-optimal plan, or both --params N and --tokens D")
    law = resolve_law(args.law, args.fit)
    if args.flops is not None and Path(args.law).is_dir():  # a study: its family, vocab and FLOP count
        out = plan_budget_in_study(args.law, law, args.flops, allow_unconverged=args.allow_unconverged)
    elif args.flops is not None:
        out = plan_budget(law, args.flops, vocab_size=args.vocab_size, n_ctx=args.n_ctx,
                          allow_unconverged=args.allow_unconverged)
    else:
        out = plan_point(law, args.params, args.tokens, allow_unconverged=args.allow_unconverged)
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
            lines.append(f"  {key:<17}{full(out[key])}{span}")
    if "shape" in out:
        s = out["shape"]
        lines.append(f"  shape            n_layer={s['n_layer']} d_model={s['d_model']} n_head={s['n_head']} "
                     f"d_ff={s['d_ff']} vocab={s['vocab_size']} n_ctx={s['n_ctx']} "
                     f"({s['n_params_kind']} params {full(s.get('n_params', out['n_params']))})")
    return "\n".join(lines)
