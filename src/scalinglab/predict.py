"""Queries over a law, published or fitted: the compute-optimal plan for a budget, the loss of a model.

A law is anything with ``predict(N, D)``, ``optimal(C)``, ``predict_interval``, ``optimal_interval`` and
``n_params_kind``: a PublishedLaw or a FitResult.
"""
from __future__ import annotations

import math
from pathlib import Path

from .errors import ScalingLabError
from .fit.result import FitResult
from .model.family import shape_for_params
from .published import LAWS, published_law


def resolve_law(spec: str):
    """A published law by name, or a fitted one from a FIT.json file."""
    if spec in LAWS:
        return published_law(spec)
    path = Path(spec)
    if path.is_dir():
        if not (path / "fit.json").exists():
            raise ScalingLabError(f"{path} is not a finished study directory (no fit.json); give a FIT.json "
                                  f"or one of {', '.join(LAWS)}")
        return FitResult.load(path / "fit.json")
    if path.suffix.lower() == ".json" or path.exists():
        return FitResult.load(path)
    return published_law(spec)  # raises the unknown-law error


def _positive(name: str, value: float) -> float:
    if value is None or not math.isfinite(value) or value <= 0:
        raise ScalingLabError(f"{name} must be a positive number, got {value}")
    return float(value)


def law_name(law) -> str:
    return getattr(law, "name", None) or f"fit:{law.law}-approach{law.approach}"


def plan_budget(law, flops: float, *, vocab_size: int | None = None, n_ctx: int = 2048) -> dict:
    """Compute-optimal n_params, n_tokens and loss for ``flops``, with a model shape of that size."""
    C = _positive("--flops (compute budget)", flops)
    n_opt, d_opt = (float(v) for v in law.optimal(C))
    out = {"law": law_name(law), "flops": C, "n_params": n_opt, "n_tokens": d_opt,
           "loss": float(law.predict(n_opt, d_opt)), "tokens_per_param": d_opt / n_opt}
    kind = law.n_params_kind if law.n_params_kind in ("total", "nonembed") else "total"
    vocab = vocab_size or getattr(law, "vocab_size", None) or 32000
    out["shape"] = shape_for_params(n_opt, kind=kind, vocab_size=vocab, n_ctx=n_ctx).to_dict()
    out["shape"]["n_params_kind"] = kind
    interval = law.optimal_interval(C)
    if interval is not None:
        out["interval"] = {"n_params": list(interval["N_opt"]), "n_tokens": list(interval["D_opt"]),
                           "loss": list(interval["L_opt"])}
    return out


def plan_in_family(law, flops: float, cfg, vocab_size: int, min_steps: int = 1) -> dict:
    """The plan a study makes for ``flops`` (its held-out run, its allocations, `plan --law STUDY_DIR`):
    the budget spent in the study's own FLOP count (Appendix F) on the model family's shape the law puts
    lowest; not the closed form of C = 6ND, which differs from it by 1.1-1.8x at small shapes."""
    from .model.accounting import param_breakdown
    from .plan.grid import optimum_in_family
    C = _positive("--flops (compute budget)", flops)
    spec = optimum_in_family(law.predict, C, cfg, vocab_size, min_steps)
    n, d = float(param_breakdown(spec.shape)["total"]), float(spec.n_tokens)
    out = {"law": law_name(law), "flops": C, "n_params": n, "n_tokens": d, "loss": float(law.predict(n, d)),
           "tokens_per_param": d / n, "shape": spec.shape.to_dict() | {"n_params_kind": "total"},
           "flop_convention": FAMILY_FLOP_CONVENTION, "spec": spec.to_dict()}
    interval = law.predict_interval(n, d)
    if interval is not None:
        out["interval"] = {"loss": list(interval)}
    return out


FAMILY_FLOP_CONVENTION = ("flops: exact training FLOPs, Hoffmann et al. 2022 Appendix F (every term, backward = "
                          "2x forward), for budgets, the held-out run and allocations alike")


def plan_budget_in_study(study_dir: str | Path, law, flops: float) -> dict:
    """`plan --law STUDY_DIR --flops C`: plan_in_family with the study's config and vocabulary, and the
    factor C extrapolates beyond the study's largest budget."""
    import json

    from .plan.study import StudyConfig
    from .store import SQLiteStore
    study_dir = Path(study_dir)
    try:
        config = json.loads((study_dir / "config.json").read_text())
        cfg = StudyConfig(**{k: v for k, v in config.items() if k != "study_id"})
    except (OSError, ValueError, TypeError) as exc:
        raise ScalingLabError(f"{study_dir}/config.json is not a study config ({exc})") from None
    runs = SQLiteStore.open(study_dir / "study.sqlite").runs()
    out = plan_in_family(law, flops, cfg, int(runs["vocab_size"].iloc[0]))
    del out["spec"]
    return out | {"extrapolation": out["flops"] / float(runs.loc[runs["role"] == "grid", "budget"].max())}


def plan_point(law, n_params: float, n_tokens: float) -> dict:
    """Predicted loss of a model of ``n_params`` trained on ``n_tokens`` (bootstrap interval when known)."""
    N = _positive("--params", n_params)
    D = _positive("--tokens", n_tokens)
    out = {"law": law_name(law), "n_params": N, "n_tokens": D, "loss": float(law.predict(N, D)),
           "tokens_per_param": D / N, "flops_6nd": 6 * N * D}
    interval = law.predict_interval(N, D)
    if interval is not None:
        out["interval"] = list(interval)
    return out
