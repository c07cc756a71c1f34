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
