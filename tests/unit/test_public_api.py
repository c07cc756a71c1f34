"""Pins the public API that users' scripts import (DESIGN.md §6): a rename must fail here first."""
import inspect

import scalinglab
from scalinglab import ScalingLabError
from scalinglab.fit import ChinchillaFit, FitResult, laws
from scalinglab.model.accounting import ModelShape, param_breakdown
from scalinglab.predict import plan_budget, plan_point, resolve_law
from scalinglab.published import LAWS


def test_public_names():
    assert scalinglab.__version__
    assert issubclass(ScalingLabError, Exception)
    assert set(LAWS) == {"chinchilla", "chinchilla-unrounded", "chinchilla-20", "epoch", "kaplan"}
    for name in ("kaplan_loss_n", "kaplan_loss_d", "kaplan_loss_c", "kaplan_loss_nd", "kaplan_loss_ns",
                 "critical_batch_size", "min_steps", "min_examples", "gradient_noise_scale",
                 "chinchilla_loss", "chinchilla_optimal", "chinchilla_lse_log_loss",
                 "data_constrained_tokens"):
        assert callable(getattr(laws, name)), name
    for name in ("params", "ci", "objective", "n_runs", "converged", "predict", "optimal", "summary",
                 "to_dict", "from_dict", "save", "load", "a", "b"):
        assert hasattr(FitResult, name) or name in FitResult.__dataclass_fields__, name
    assert list(inspect.signature(ModelShape).parameters) == [
        "n_layer", "d_model", "n_head", "d_head", "d_ff", "vocab_size", "n_ctx", "tied", "positions"]
    assert all(map(callable, (param_breakdown, plan_budget, plan_point, resolve_law)))


def test_fitter_settings_are_keyword_only():
    sig = inspect.signature(ChinchillaFit)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
    assert {"loss", "delta", "tau", "grid", "fixed_E", "bootstrap", "ci_level", "ci_flops", "seed"} <= set(
        sig.parameters)


def test_the_python_api_mirrors_the_cli(tmp_path):
    """Issue 29 §4: scalinglab.fit / plan / compare return what the CLI prints (the same numbers through
    the same code), and the modules of those names still import as before."""
    import json

    from scalinglab.fit.chinchilla.approach3 import ChinchillaFit as Fitter
    from scalinglab.simulate import DEMO_TRUE, isoflop_runs
    from tests.cli_helpers import call
    runs = isoflop_runs(DEMO_TRUE, budgets=[1e18, 1e19, 1e20], sizes_per_budget=6, noise=0.005, seed=3)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    fit = scalinglab.fit(tmp_path / "runs.csv", bootstrap=50)
    assert fit.params == Fitter(bootstrap=50).fit(runs).result_.params
    assert fit.summary() + "\n" == call("fit", tmp_path / "runs.csv", "--bootstrap", "50").stdout
    every = scalinglab.fit(runs, law="all")
    assert {f.key for f in every} >= {"chinchilla:2", "chinchilla:3", "kaplan:L(N,D)"}
    plan = scalinglab.plan(fit, flops=1e21)
    fit.save(tmp_path / "fit.json")
    told = json.loads(call("plan", "--law", tmp_path / "fit.json", "--flops", "1e21", "--json").stdout)
    assert plan.to_dict() == told
    told = json.loads(call("plan", "--params", "70e9", "--tokens", "1.4e12", "--json").stdout)
    assert scalinglab.plan("chinchilla", params=70e9, tokens=1.4e12).to_dict() == told
    other = isoflop_runs(DEMO_TRUE | {"E": DEMO_TRUE["E"] * 1.05}, budgets=[1e18, 1e19, 1e20],
                         sizes_per_budget=6, noise=0.005, seed=4)
    Fitter(bootstrap=50).fit(other).result_.save(tmp_path / "other.json")
    result = scalinglab.compare([tmp_path / "fit.json", tmp_path / "other.json"], budgets=[1e19])
    cli = json.loads(call("compare", tmp_path / "fit.json", tmp_path / "other.json", "--at", "1e19",
                          "--json").stdout)
    assert result == cli and result["multipliers"][0]["at"][0]["multiplier"] > 1
    from scalinglab.compare import multiplier  # the modules are still modules
    from scalinglab.plan.spec import RunSpec
    assert callable(multiplier) and RunSpec
