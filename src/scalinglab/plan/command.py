"""`scalinglab.plan(LAW, flops=C)` or `plan(LAW, params=N, tokens=D)`: the `plan` command as a function,
returning a Plan (its ``to_dict()`` is `plan --json`). ``scalinglab.plan`` is this package made callable
(callable.py).

    import scalinglab
    print(scalinglab.plan("chinchilla", params=70e9, tokens=1.4e12).loss)
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ScalingLabError


def plan(law="chinchilla", *, flops: float | None = None, params: float | None = None,
         tokens: float | None = None, select: str | None = None, vocab_size: int | None = None,
         n_ctx: int | None = None, allow_unconverged: bool = False, unique_tokens: float | None = None):
    """`scalinglab plan`: a Plan (the compute-optimal run for ``flops``, or the loss of ``params`` trained on
    ``tokens``) under ``law``: a published law's name, a fit (any result of ``fit``), a FIT.json path, or
    a study directory (its budget planned in its own model family, as `plan --law STUDY_DIR` does)."""
    from ..predict import plan_budget, plan_budget_in_study, plan_point, resolve_law
    if flops is not None and (params is not None or tokens is not None):
        raise ScalingLabError("give either `flops`, or `params` with `tokens`, not both",
                              params=("flops", "n_params", "n_tokens"))
    if flops is None and (params is None or tokens is None):
        raise ScalingLabError("give `flops` for a compute-optimal plan, or both `params` and `tokens`",
                              params=("flops", "n_params", "n_tokens"))
    resolved = resolve_law(str(law), select) if isinstance(law, (str, Path)) else law
    if flops is not None and isinstance(law, (str, Path)) and Path(law).is_dir():
        return plan_budget_in_study(law, resolved, flops, allow_unconverged=allow_unconverged,
                                    unique_tokens=unique_tokens)
    if flops is not None:
        return plan_budget(resolved, flops, vocab_size=vocab_size, n_ctx=n_ctx,
                           allow_unconverged=allow_unconverged, unique_tokens=unique_tokens)
    return plan_point(resolved, params, tokens, allow_unconverged=allow_unconverged,
                      unique_tokens=unique_tokens)
