"""Queries over a law, published or fitted: the compute-optimal plan for a budget, the loss of a model.

A law is a PublishedLaw or any fit: both implement ScalingLaw (fit/core/base.py). Each says what it
``answers`` ("loss", "optimal"), and a query it cannot answer, or a fit that did not converge, is refused
with one line that says why. Every answer carries its warnings: how far it extrapolates beyond the data the
law was fitted on, and where no shape of the model family is near the size asked for.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from .errors import ScalingLabError
from .fit.core.base import ScalingLaw
from .fit.fitfile import load_fit
from .model.accounting import param_breakdown
from .model.family import family_shapes, shape_for_params
from .plan.answer import Plan
from .published import LAWS, published_law
from .studydir import FIT_FILE, StudyDir

SHAPE_TOLERANCE = 1.5  # a suggested shape further than this factor from the size asked for is flagged
EXTRAPOLATION_NOTE = 1.0  # any query beyond the fitted data is marked with its factor


def resolve_law(spec: str, select: str | None = None):
    """A published law by name, a study directory's fit, or a fit from a FIT.json file (``select`` picks one
    fit of a file of several: ``chinchilla:3``, ``kaplan:L(N,D)``, ...)."""
    if spec in LAWS:
        return published_law(spec)
    path = Path(spec)
    if path.is_dir():
        study = StudyDir(path)
        if not study.has(FIT_FILE):
            raise ScalingLabError(f"{path} is not a finished study directory (no fit.json); give a FIT.json "
                                  f"or one of {', '.join(LAWS)}")
        return study.law(select)  # the form its backtest chose (Approach 3 of older studies), or a key
    if path.suffix.lower() == ".json" or path.exists():
        return load_fit(path, select)
    return published_law(spec)  # raises the unknown-law error


def _positive(param: str, value: float, what: str = "") -> float:
    if value is None or not math.isfinite(value) or value <= 0:
        raise ScalingLabError(f"`{param}`{what} must be a positive number, got {value}", params=(param,))
    return float(value)


def law_name(law: ScalingLaw) -> str:
    """A published law's name, or ``fit:KEY`` (with the form `--law auto` chose and why)."""
    name = law.name
    chosen = law.settings.get("selection") or {}
    if chosen.get("chosen"):
        name += f" (law auto: the {chosen['chosen']} form, {chosen.get('why', 'chosen by backtest')})"
    return name


def usable(law: ScalingLaw, query: str, allow_unconverged: bool = False, given: tuple[str, ...] = ()
           ) -> list[str]:
    """Refuse a query the law cannot answer or a fit that did not converge; returns the warnings to carry."""
    if query not in law.answers:
        what = {"optimal": "a compute-optimal plan (`flops`)",
                "loss": "the loss of a model (`n_params`, `n_tokens`)"}
        can = " and ".join(what.get(a, a) for a in law.answers) or "nothing plan asks"
        raise ScalingLabError(f"{law_name(law)} ({law.form}) cannot give "
                              f"{what[query]}; it answers {can}", params=("flops", "n_params", "n_tokens"))
    if any(k not in law.inputs for k in given):
        raise ScalingLabError(f"`unique_tokens` applies to the data-constrained law, not {law_name(law)} "
                              f"({law.form})", params=("unique_tokens",))
    if query == "loss" and set(law.inputs) != {"N", "D", *given}:
        unique = " (U: `unique_tokens`)" if "U" in law.inputs else ""
        raise ScalingLabError(f"{law_name(law)} ({law.form}) needs {', '.join(law.inputs)}{unique}",
                              params=("unique_tokens",) if unique else ())
    if not law.converged:
        why = "; ".join(law.warnings) or "the optimiser did not converge"
        if not allow_unconverged:
            raise ScalingLabError(f"{law_name(law)} did not converge ({why}): refit, or pass "
                                  "`allow_unconverged` to plan with it anyway", params=("allow_unconverged",))
        return [f"the fit did not converge: {why}"]
    return [f"not identified (the prediction holds): {n}" for n in law.not_identified]


def _extrapolation(law, **values) -> tuple[dict, list[str]]:
    """How far each queried value lies beyond the range of the data the fit saw (factor > 1), with
    warnings."""
    data = law.settings.get("data_range") or {}
    factors, warnings = {}, []
    for name, v in values.items():
        if name not in data or v is None:
            continue
        lo, hi = data[name]
        f = v / hi if v > hi else (lo / v if v < lo else 1.0)
        factors[name] = f
        if f > EXTRAPOLATION_NOTE:
            side = "above the largest" if v > hi else "below the smallest"
            warnings.append(f"{name} = {v:.4g} is {f:.3g}x {side} {name} the law was fitted on "
                            f"({lo:.4g}..{hi:.4g}): extrapolated")
    return factors, warnings


def _shape_context(law, vocab_size, n_ctx) -> tuple[int, int, str]:
    s = law.settings
    vocab = vocab_size or s.get("vocab_size") or 32000
    ctx = n_ctx or s.get("n_ctx") or 2048
    source = ("given" if vocab_size or n_ctx else s.get("vocab_from", "the study's") if s.get("vocab_size")
              else "default")
    return int(vocab), int(ctx), source


def _shape(n_opt: float, kind: str, vocab: int, ctx: int) -> tuple[dict, list[str]]:
    shape = shape_for_params(n_opt, kind=kind, vocab_size=vocab, n_ctx=ctx)
    got = float(param_breakdown(shape)[kind])
    out = shape.to_dict() | {"n_params_kind": kind, "n_params": got}
    warnings = []
    if not 1 / SHAPE_TOLERANCE <= got / n_opt <= SHAPE_TOLERANCE:
        shapes = family_shapes(vocab, ctx)
        lo, hi = (float(param_breakdown(x)[kind]) for x in (shapes[0], shapes[-1]))
        warnings.append(f"no shape of the model family is within {SHAPE_TOLERANCE:g}x of N_opt = {n_opt:.4g} "
                        f"(the family spans {lo:.3g}..{hi:.3g} {kind} parameters at vocab {vocab}, n_ctx "
                        f"{ctx}): the nearest, {got:.4g}, is shown, not a model of that size")
    return out, warnings


def plan_budget(law: ScalingLaw, flops: float, *, vocab_size: int | None = None, n_ctx: int | None = None,
                allow_unconverged: bool = False, unique_tokens: float | None = None) -> Plan:
    """Compute-optimal n_params, n_tokens (and loss, when the law gives one) for ``flops``, with a model
    shape of that size in the study's vocabulary and context for a study fit; for the data-constrained law,
    for ``unique_tokens`` unique tokens (repeated as the budget needs)."""
    C = _positive("flops", flops, " (compute budget)")
    given = {} if unique_tokens is None else {"U": _positive("unique_tokens", unique_tokens)}
    for name, v in (("vocab_size", vocab_size), ("n_ctx", n_ctx)):
        if v is not None and v < 1:
            raise ScalingLabError(f"`{name}` must be a positive integer, got {v}", params=(name,))
    warnings = usable(law, "optimal", allow_unconverged, tuple(given))
    n_opt, d_opt = (float(v) for v in law.optimal(C, **given))
    if not (math.isfinite(n_opt) and math.isfinite(d_opt) and n_opt > 0 and d_opt > 0):
        raise ScalingLabError(f"{law_name(law)} has no compute optimum at {C:.4g} FLOPs (N_opt = "
                              f"{n_opt:.4g}, D_opt = {d_opt:.4g}): its exponents do not describe a loss that "
                              "falls with N and D")
    allocation_law = "loss" not in law.answers  # Approaches 1 and 2: C -> N_opt, D_opt, no loss of N and D
    loss = float(law.predict(n_opt, d_opt, **given)) if not allocation_law else law.optimal_loss(C)
    if given:  # how often the unique data are seen
        warnings.append(f"D_opt = {d_opt:.4g} tokens is {d_opt / given['U']:.3g} epochs of the "
                        f"{given['U']:.4g} unique tokens")
    factors, extra = _extrapolation(law, C=C)
    warnings += extra
    convention = "C = 6ND (Kaplan 2020 §2.1; Hoffmann 2022 eq. 4)"
    if allocation_law:  # fitted on the runs' own FLOP count (a study's: Appendix F), not on 6ND
        convention = (f"C as the fitted runs counted their FLOPs (the law maps C to N_opt and D_opt "
                      f"directly): here 6 N_opt D_opt = {6 * n_opt * d_opt:.4g}")
    if allocation_law and loss is not None:
        warnings.append("the loss is Approach 2's L_opt = k_L C^-gamma: a pure power law with no irreducible "
                        "term, so it falls without bound and reads low far beyond the fitted budgets; a loss "
                        "law of N and D (e.g. --fit chinchilla:3) gives losses")
    if n_opt < 1 or d_opt < 1:
        warnings.append(f"{C:.3g} FLOPs gives N_opt = {n_opt:.3g} parameters and D_opt = {d_opt:.3g} tokens: "
                        f"below one, no model")
    kind = law.n_params_kind if law.n_params_kind in ("total", "nonembed") else "total"
    vocab, ctx, source = _shape_context(law, vocab_size, n_ctx)
    shape = None
    if n_opt >= 1:
        shape, extra = _shape(n_opt, kind, vocab, ctx)
        shape["context_from"] = source
        warnings += extra
    interval = law.optimal_interval(C, **given)
    if interval is not None:
        interval = {"n_params": list(interval["N_opt"]), "n_tokens": list(interval["D_opt"])} | (
            {"loss": list(interval["L_opt"])} if "L_opt" in interval else {})
    return Plan("budget", law_name(law), n_opt, d_opt, flops=C, loss=None if loss is None else float(loss),
                note=law.note, shape=shape, interval=interval, extrapolation=factors.get("C"),
                flop_convention=convention, warnings=tuple(warnings))


def plan_in_family(law: ScalingLaw, flops: float, cfg, vocab_size: int, min_steps: int = 1) -> Plan:
    """The plan a study makes for ``flops`` (its held-out run, its allocations, `plan --law STUDY_DIR`):
    the budget spent in the study's own FLOP count (Appendix F) on the model family's shape the law puts
    lowest; not the closed form of C = 6ND, which differs from it by 1.1-1.8x at small shapes."""
    from .plan.grid import optimum_in_family
    C = _positive("flops", flops, " (compute budget)")
    spec = optimum_in_family(law.predict, C, cfg, vocab_size, min_steps)
    n, d = float(param_breakdown(spec.shape)["total"]), float(spec.n_tokens)
    interval = law.predict_interval(n, d)
    return Plan("family", law_name(law), n, d, flops=C, loss=float(law.predict(n, d)),
                shape=spec.shape.to_dict() | {"n_params_kind": "total"},
                interval={"loss": list(interval)} if interval is not None else None,
                prediction_interval={"loss": list(law.predict_interval(n, d, kind="prediction"))}
                if interval is not None else None,
                flop_convention=FAMILY_FLOP_CONVENTION, spec=spec)


FAMILY_FLOP_CONVENTION = ("flops: exact training FLOPs, Hoffmann et al. 2022 Appendix F (every term, "
                          "backward = 2x forward), for budgets, the held-out run and allocations alike")


def plan_budget_in_study(study_dir: str | Path, law, flops: float, *,
                         allow_unconverged: bool = False, unique_tokens: float | None = None) -> Plan:
    """`plan --law STUDY_DIR --flops C`: plan_in_family with the study's config and vocabulary, and the
    factor C extrapolates beyond the study's largest budget."""
    study = StudyDir(study_dir)
    cfg = study.config()
    warnings = usable(law, "optimal", allow_unconverged)
    with study.store() as store:
        runs = store.runs()
    vocab = int(runs["vocab_size"].iloc[0])
    largest = float(runs.loc[runs["role"] == "grid", "budget"].max())
    if "loss" not in law.answers or unique_tokens is not None:  # an allocation law (Approach 1, 2), or for
        # given unique tokens: N_opt and D_opt from the law, a shape of the study's family
        plan = plan_budget(law, flops, vocab_size=vocab, n_ctx=cfg.n_ctx, allow_unconverged=allow_unconverged,
                           unique_tokens=unique_tokens)
        return replace(plan, extrapolation=plan.flops / largest)
    plan = plan_in_family(law, flops, cfg, vocab)
    if plan.flops > largest:
        warnings.append(f"{plan.flops:.3g} FLOPs is {plan.flops / largest:.3g}x the study's largest "
                        f"budget ({largest:.3g}): extrapolated")
    return replace(plan, extrapolation=plan.flops / largest, warnings=tuple(warnings))


def plan_point(law: ScalingLaw, n_params: float, n_tokens: float, *, allow_unconverged: bool = False,
               unique_tokens: float | None = None) -> Plan:
    """Predicted loss of a model of ``n_params`` trained on ``n_tokens`` (of ``unique_tokens`` unique ones,
    for the data-constrained law): the law's confidence interval and, for a fitted law, the prediction
    interval of one new run (run-to-run noise added)."""
    N = _positive("n_params", n_params)
    D = _positive("n_tokens", n_tokens)
    given = {} if unique_tokens is None else {"U": _positive("unique_tokens", unique_tokens)}
    warnings = usable(law, "loss", allow_unconverged, tuple(given))
    conf, kinds, pred = law.predict_interval(N, D, **given), None, None
    if conf is not None:
        sd, source = law.noise_sd()
        pred = law.predict_interval(N, D, kind="prediction", **given)
        form_sd = law.extrapolation_sd({"N": N, "D": D})
        kinds = {"interval": f"{100 * law.level:g}% bootstrap confidence interval of the law",
                 "prediction_interval": f"one new run: the law's interval with run-to-run noise sd {sd:.3g} "
                                        f"(log loss, from {source})"
                                        + (f" and the form's backtest error at this extrapolation, sd "
                                           f"{float(form_sd):.3g}" if form_sd else "")}
    factors, extra = _extrapolation(law, N=N, D=D)
    return Plan("point", law_name(law), N, D, loss=float(law.predict(N, D, **given)),
                interval={"loss": list(conf)} if conf is not None else None,
                prediction_interval={"loss": list(pred)} if pred is not None else None, interval_kinds=kinds,
                extrapolation=factors or None, warnings=tuple(warnings + extra))
