"""`scalinglab demo`: fit the shipped table of simulated runs and plan a budget, against the true law."""
from __future__ import annotations

from ..fit.chinchilla.approach3 import ChinchillaFit
from ..fit.core.table import load_runs
from ..predict import plan_budget
from ..published import PublishedLaw
from ..simulate import DEMO_PATH, DEMO_TRUE
from .common import emit_json, positive_float
from .plan import render


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="fit the shipped demo runs and plan a budget",
                       description="Fits the demo table shipped with scalinglab (runs simulated from a known "
                                   "Chinchilla law with 1% noise; generator: scalinglab.simulate) and plans.")
    p.add_argument("--flops", type=positive_float, default=1e22, help="budget to plan (default 1e22)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="K", help="resamples (default 1000)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    runs, _ = load_runs(DEMO_PATH)
    result = ChinchillaFit(bootstrap=args.bootstrap, ci_flops=args.flops).fit(runs).result_
    truth = PublishedLaw(name="demo-truth", kind="chinchilla", params=DEMO_TRUE,
                         citation="scalinglab.simulate", n_params_kind="total", vocab_size=32000)
    fitted_plan = plan_budget(result, args.flops).to_dict()
    true_plan = plan_budget(truth, args.flops).to_dict()
    if args.json:
        emit_json({"fit": result.to_dict(draws=False), "true_params": DEMO_TRUE, "plan": fitted_plan,
                   "true_plan": true_plan})
        return 0
    print(f"demo: {len(runs)} simulated runs from {DEMO_PATH.name} (true law: "
          + ", ".join(f"{k}={v:g}" for k, v in DEMO_TRUE.items()) + ")\n")
    print(result.summary())
    print("\nplan under the fitted law:")
    print(render(fitted_plan))
    print("\nplan under the true law:")
    print(render(true_plan))
    print("\nThe same on runs you train yourself: `scalinglab run` (a study on the embedded corpus).")
    return 0
