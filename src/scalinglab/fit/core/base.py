"""What every fitted law answers, Approach 3 or any other: one interface, one file format.

A fit has ``law`` (the paper's family), ``approach`` (which fit within it), ``form``, ``params``, ``ci``,
``converged``, ``warnings``, ``n_runs`` (runs it saw) and ``n_points`` (points it was fitted to: runs, curve
evals, envelope samples or IsoFLOP minima). It is one of:

- a loss law (``target == "loss"``): ``predict(**inputs)`` is the loss; when its inputs are N and D it also
  answers ``optimal(C)`` (the minimum of the loss along C = 6ND);
- an allocation law (Chinchilla Approaches 1 and 2, ``target == "N_opt"``): ``optimal(C)`` only;
- the critical batch law (``target == "B_crit"``): ``predict(L=...)`` is B_crit in tokens.

Intervals of every answer come from the bootstrap draws kept with the fit: ``predict_interval`` (a
confidence interval of the mean law, or with ``kind="prediction"`` one for a single new run, the run-to-run
noise added in quadrature in log) and ``optimal_interval``. ``save``/``load_fit`` round-trip any fit.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Mapping, Protocol

import numpy as np

from ...atomic import write_text
from ...errors import ScalingLabError
from ...jsonsafe import dumps
from .robust import percentile_interval, z

FORMAT = "scalinglab.fit"
FORMAT_MANY = "scalinglab.fits"
VERSION = 2
READS = (1, 2)  # version 1: Approach 3 files of scalinglab 0.1, read unchanged


class ScalingLaw(Protocol):
    """What `plan`, the study and the report ask of a law, fitted (FitBase) or published
    (published.PublishedLaw): one interface, no probing for which it is."""

    name: str  # how plan names it: a published law's name, ``fit:KEY`` for a fit
    form: str  # its formula
    inputs: tuple[str, ...]
    answers: tuple[str, ...]  # "loss", "optimal", "B_crit", "curve"
    converged: bool
    warnings: tuple[str, ...]
    not_identified: tuple[str, ...]
    settings: Mapping[str, object]  # data_range, vocab_size, n_ctx, selection where known
    n_params_kind: str  # "total" or "nonembed"
    note: str
    level: float

    def predict(self, *args, **inputs) -> np.ndarray: ...
    def optimal(self, C, **given) -> tuple[np.ndarray, np.ndarray]: ...
    def optimal_loss(self, C) -> np.ndarray | None: ...
    def predict_interval(self, *args, kind: str = "confidence", **inputs): ...
    def optimal_interval(self, C, **given) -> dict | None: ...
    def noise_sd(self) -> tuple[float, str]: ...
    def extrapolation_sd(self, X: Mapping[str, np.ndarray]) -> np.ndarray | float: ...


@dataclass(frozen=True, kw_only=True)
class FitBase:
    """What every fit is and answers. The fields are one shape for every law (saved by ``to_dict``, read back
    by fit/fitfile.py); subclasses add the law (``_law_fn``, ``_allocate``) and how it prints."""

    law: str  # the paper's family: chinchilla, kaplan, bcrit, data-constrained, a form, a whole-curve law
    approach: str  # which fit within it: "3", "L(N,D)", "N=1.2e+06", ...
    params: Mapping[str, float]
    objective: float
    n_runs: int  # the runs it saw
    n_points: int  # the points it was fitted to: runs, curve evaluations, envelope samples, IsoFLOP minima
    converged: bool  # a usable law (DESIGN §10), not only a stopped optimiser; why not: ``warnings``
    ci: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    diagnostics: Mapping[str, object] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)  # how it was fitted (seed included)
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)  # bootstrap (K, len(params))
    level: float = 0.95  # of every interval

    inputs: ClassVar[tuple[str, ...]] = ()
    target: ClassVar[str] = "loss"

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType({k: float(v) for k, v in self.params.items()}))
        object.__setattr__(self, "ci", MappingProxyType({k: (float(lo), float(hi)) for k, (lo, hi) in
                                                         self.ci.items()}))
        diagnostics = dict(self.diagnostics)
        if not self.converged and not diagnostics.get("warnings"):
            # every NO names its reason (issue 29): a verdict with none is a fitter's bug, said as such
            diagnostics["warnings"] = [f"not converged, and the fitter gave no reason (optimiser status: "
                                       f"{diagnostics.get('status', 'unknown')})"]
        object.__setattr__(self, "diagnostics", MappingProxyType(_jsonable(diagnostics)))
        object.__setattr__(self, "settings", MappingProxyType(_jsonable(dict(self.settings))))
        if self.draws is not None:
            draws = np.asarray(self.draws, dtype=float).reshape(-1, len(self.params))
            draws.setflags(write=False)
            object.__setattr__(self, "draws", draws)

    @staticmethod
    def fields_of(d: Mapping) -> dict:
        """The shared fields of a saved fit (``to_dict``), for a subclass's ``from_dict``."""
        bs = d.get("bootstrap") or {}
        # strict JSON writes a NaN as null: an objective or an interval bound that was not a number reads
        # back as NaN / no interval, not as an invalid file (issue 30 R18)
        ci = {k: v for k, v in (d.get("ci") or {}).items() if v is not None and None not in v}
        return dict(law=d["law"], approach=str(d["approach"]), params=d["params"],
                    objective=float("nan") if d["objective"] is None else float(d["objective"]),
                    n_runs=int(d["n_runs"]),
                    n_points=int(d.get("n_points", d["n_runs"])), converged=bool(d["converged"]),
                    ci=ci, settings=d.get("settings", {}), draws=draws_of(d),
                    level=float(bs.get("level", 0.95)),
                    diagnostics={"not_identified": list(d.get("not_identified", ()))}
                    | dict(d.get("diagnostics", {})) | {"warnings": list(d.get("warnings", ()))})

    # -- what the fit is --------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """A short unique name: ``chinchilla:3``, ``kaplan:L(N,D)+E``, ``bcrit:noise scale``."""
        plus = "+E" if self.law == "kaplan" and "E" in self.params else ""
        return f"{self.law}:{self.approach}{plus}"

    @property
    def name(self) -> str:
        return f"fit:{self.key}"

    @property
    def note(self) -> str:
        return ""

    def optimal_loss(self, C) -> np.ndarray | None:
        """The loss at the compute optimum where the law gives it directly (Approach 2's L_opt); else None."""
        return None

    @property
    def label(self) -> str:
        return {"chinchilla": f"Chinchilla Approach {self.approach}",
                "kaplan": f"Kaplan {self.approach}" + (" + E" if "E" in self.params else ""),
                "bcrit": f"B_crit ({self.approach})", "data-constrained": "Data-constrained D'"}.get(
            self.law, f"{self.law} {self.approach}")

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self.diagnostics.get("warnings", ()))

    @property
    def not_identified(self) -> tuple[str, ...]:
        """Notes on parameters these data do not pin down although the fit is right (a flat direction, a
        limit of the form): its predictions hold, those values mean nothing. Not a reason to refuse."""
        return tuple(self.diagnostics.get("not_identified", ()))

    @property
    def answers(self) -> tuple[str, ...]:
        """The queries this fit can answer: "loss" (of given inputs), "optimal" (N, D for a budget),
        "B_crit"."""
        if self.target == "N_opt":
            return ("optimal",)
        if self.target == "B_crit":
            return ("B_crit",)
        # a law of N and D (and of given quantities such as U, unique tokens) allocates C over N and D
        return ("loss", "optimal") if {"N", "D"} <= set(self.inputs) <= {"N", "D", "U"} else ("loss",)

    @property
    def n_params_kind(self) -> str:
        return str(self.settings.get("n_params_kind") or "unspecified")

    # -- the law on arrays: subclasses ------------------------------------------------------------------
    def _law_fn(self, X: Mapping[str, np.ndarray], P: Mapping[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _allocate(self, C: np.ndarray, P: Mapping[str, np.ndarray], given: Mapping | None = None):
        """(N_opt, D_opt) at C under parameters P; loss laws of N and D minimise along C = 6ND, with the
        other inputs ``given`` (U for the data-constrained law)."""
        return numeric_optimum(self._law_fn, C, P, given)

    # -- queries ----------------------------------------------------------------------------------------
    def _inputs(self, args, inputs) -> dict[str, np.ndarray]:
        if args:
            if len(args) > len(self.inputs):
                raise ScalingLabError(f"{self.label} takes {len(self.inputs)} input(s) "
                                      f"({', '.join(self.inputs)}), got {len(args)}")
            inputs = dict(zip(self.inputs, args)) | dict(inputs)
        missing = [k for k in self.inputs if k not in inputs]
        extra = [k for k in inputs if k not in self.inputs]
        if missing or extra:
            wrong = f"missing {', '.join(missing)}" if missing else f"not {', '.join(extra)}"
            raise ScalingLabError(f"{self.label} ({self.form}) takes {', '.join(self.inputs)}; {wrong}")
        return {k: np.asarray(v, dtype=float) for k, v in inputs.items()}

    def predict(self, *args, **inputs) -> np.ndarray:
        """The law at the given inputs, positional in the order of ``inputs`` or by name:
        ``predict(N, D)`` or ``predict(N=1e8, D=1e9)``; the loss for loss laws, B_crit for the batch law."""
        if "loss" not in self.answers and "B_crit" not in self.answers:
            raise ScalingLabError(f"{self.label} is an allocation law: it answers optimal(C) (N_opt, D_opt "
                                  "for a budget), not the loss of a given model")
        return self._law_fn(self._inputs(args, inputs), dict(self.params))

    def optimal(self, C, **given) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal (N_opt, D_opt) at C FLOPs; a law of more than N and D needs its other inputs
        ``given`` (``U=`` unique tokens for the data-constrained law)."""
        if "optimal" not in self.answers:
            raise ScalingLabError(f"{self.label} ({self.form}) does not allocate compute: only laws of N and "
                                  "D and Chinchilla Approaches 1-3 answer optimal(C)")
        given = self._given(given)
        n, d = self._allocate(np.asarray(C, dtype=float), dict(self.params), given or None)
        return np.asarray(n, dtype=float), np.asarray(d, dtype=float)

    def _given(self, given: Mapping) -> dict:
        # a loss law of N, D and more (U) needs the rest given; an allocation law (inputs C) needs nothing
        need = [k for k in self.inputs if k not in ("N", "D")] if {"N", "D"} <= set(self.inputs) else []
        missing, extra = [k for k in need if k not in given], [k for k in given if k not in need]
        if missing:
            what = {"U": "number of unique tokens it may repeat (`unique_tokens`)"}
            raise ScalingLabError(f"{self.label} allocates compute for a given "
                                  f"{', '.join(what.get(k, k) for k in missing)}: give it",
                                  params=("unique_tokens",))
        if extra:
            raise ScalingLabError(f"{self.label} ({self.form}) takes no {', '.join(extra)}",
                                  params=("unique_tokens",))
        return {k: np.asarray(v, dtype=float) for k, v in given.items()}

    def noise_sd(self) -> tuple[float, str]:
        """(sd of log loss of one run about the law, where it comes from): measured seed repeats when the
        study recorded them (settings ``noise_sd``), else the fit's residuals (robust: 1.4826 MAD,
        corrected for the parameters fitted)."""
        if self.settings.get("noise_sd") is not None:
            return float(self.settings["noise_sd"]), str(self.settings.get("noise_source", "given"))
        sd = self.diagnostics.get("residual_sd")
        return (float(sd), "fit residuals") if sd is not None else (0.0, "none")

    def extrapolation_sd(self, X: Mapping[str, np.ndarray]) -> np.ndarray | float:
        """The sd of log loss this law's form missed by in its backtests at the extrapolation factor of X
        (f = 6ND over the largest 6ND fitted; ``selection.error_model`` of a `--law auto` fit,
        fit/backtest.py): s (1 + log2 f), f >= 1. 0 for a fit without a backtest."""
        model = (self.settings.get("selection") or {}).get("error_model") or {}
        top = ((self.settings.get("data_range") or {}).get("C") or [None, None])[1]
        if not model.get("s") or not top or not {"N", "D"} <= set(X):
            return 0.0
        f = np.maximum(6.0 * X["N"] * X["D"] / top, 1.0)
        return float(model["s"]) * (1.0 + np.log2(f))

    def predict_interval(self, *args, kind: str = "confidence", **inputs):
        """Bootstrap percentile interval of ``predict`` at the inputs (arrays allowed: (lo, hi) arrays).

        ``kind="confidence"``: the mean law's uncertainty. ``kind="prediction"``: for one new run, the
        run-to-run noise (``noise_sd``) and the form's backtest error at that extrapolation
        (``extrapolation_sd``) added in quadrature in log loss. None without bootstrap draws."""
        if kind not in ("confidence", "prediction"):
            raise ScalingLabError(f"interval kind must be confidence or prediction, not {kind!r}")
        mid = self.predict(*args, **inputs)
        if self.draws is None or len(self.draws) == 0:
            return None
        X = self._inputs(args, inputs)
        shape = np.broadcast_shapes(*(v.shape for v in X.values()))
        Xb = {k: np.broadcast_to(v, shape)[None, ...] for k, v in X.items()}
        P = {k: col.reshape((-1,) + (1,) * len(shape)) for k, col in self.draw_columns().items()}
        with np.errstate(all="ignore"):
            values = self._law_fn(Xb, P)
        lo, hi = percentile_interval(values, self.level)
        if kind == "prediction":
            sd, _ = self.noise_sd()
            sd = np.hypot(sd, self.extrapolation_sd(X))
            spread = z(self.level)
            with np.errstate(all="ignore"):
                down = np.hypot(np.maximum(np.log(mid / lo), 0.0), spread * sd)
                up = np.hypot(np.maximum(np.log(hi / mid), 0.0), spread * sd)
            lo, hi = mid * np.exp(-down), mid * np.exp(up)
        return (float(lo), float(hi)) if np.ndim(lo) == 0 else (lo, hi)

    def optimal_interval(self, C, **given) -> dict[str, tuple] | None:
        """Bootstrap intervals of N_opt and D_opt (and the loss there, for loss laws) at C (scalar or
        array)."""
        self.optimal(C, **given)  # the same refusal for a fit that does not allocate
        if self.draws is None or len(self.draws) == 0:
            return None
        given = self._given(given)
        C = np.asarray(C, dtype=float)
        P = {k: col.reshape((-1,) + (1,) * C.ndim) for k, col in self.draw_columns().items()}
        with np.errstate(all="ignore"):
            n, d = self._allocate(C[None, ...], P, given or None)
            out = {"N_opt": percentile_interval(n, self.level), "D_opt": percentile_interval(d, self.level)}
            if "loss" in self.answers:
                out["L_opt"] = percentile_interval(self._law_fn({"N": n, "D": d, **given}, P), self.level)
        scalar = C.ndim == 0
        return {k: ((float(lo), float(hi)) if scalar else (lo, hi)) for k, (lo, hi) in out.items()}

    def draw_columns(self) -> dict[str, np.ndarray]:
        return dict(zip(self.params, np.asarray(self.draws).T))

    # -- presentation: summary() is each subclass's; these lines are shared ----------------------------
    def _param_lines(self) -> list[str]:
        """One line per parameter: its value and, with a bootstrap, its interval."""
        lines = []
        for name, value in self.params.items():
            ci = self.ci.get(name)
            span = f"  [{ci[0]:.4g}, {ci[1]:.4g}] {100 * self.level:g}% CI" if ci else ""
            lines.append(f"  {name:<8}{value:>14.6g}{span}")
        return lines

    def _note_lines(self) -> list[str]:
        return ([f"  warning: {w}" for w in self.warnings]
                + [f"  not identified: {w}" for w in self.not_identified])

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        """Jupyter: the parameters with their intervals, whether the fit converged, its warnings."""
        import html
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.6g}</td><td>"
            + (f"[{self.ci[k][0]:.4g}, {self.ci[k][1]:.4g}]" if k in self.ci else "") + "</td></tr>"
            for k, v in self.params.items())
        warn = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
        return (f"<b>{html.escape(self.label)}</b>: <code>{html.escape(self.form)}</code><br>"
                f"converged: <b>{'yes' if self.converged else 'NO'}</b>, runs {self.n_runs}"
                f"<table><tr><th>param</th><th>value</th><th>{100 * self.level:g}% CI</th></tr>{rows}</table>"
                + (f"<ul>{warn}</ul>" if warn else ""))

    # -- files ------------------------------------------------------------------------------------------
    def _common_tail(self, out: dict, draws: bool, **bootstrap) -> dict:
        """The to_dict keys every result shares after its own: ci, warnings, diagnostics, settings and the
        bootstrap draws (``bootstrap``: extra keys of that entry)."""
        if self.ci:
            out["ci"] = {k: list(v) for k, v in self.ci.items()}
        out["warnings"] = list(self.warnings)
        out["not_identified"] = list(self.not_identified)
        out["diagnostics"] = {k: v for k, v in self.diagnostics.items() if k != "warnings"}
        out["settings"] = dict(self.settings)
        if self.draws is not None:
            out["bootstrap"] = {"n": int(len(self.draws)), "level": self.level, "columns": list(self.params),
                                "seed": self.settings.get("seed")} | bootstrap
            if draws:
                out["bootstrap"]["draws"] = self.draws.tolist()
        return out

    def save(self, path: str | Path) -> Path:
        """The versioned JSON file (strict JSON; written atomically, never half a file)."""
        doc = {"format": FORMAT, "version": VERSION, **self.to_dict()}
        return write_text(Path(path), dumps(doc, indent=1))


def draws_of(d: Mapping) -> np.ndarray | None:
    """A saved fit's bootstrap draws, columns in its params' order (None without them)."""
    bs = d.get("bootstrap") or {}
    if bs.get("draws") is None:
        return None
    order = bs.get("columns", list(d["params"]))
    cols = np.asarray(bs["draws"], dtype=float).reshape(-1, len(order))
    return np.stack([cols[:, order.index(k)] for k in d["params"]], axis=1)


def data_range(**columns) -> dict[str, list[float]]:
    """[min, max] of each input the fit saw, kept in its settings so a query can say how far it
    extrapolates."""
    return {k: [float(np.min(v)), float(np.max(v))] for k, v in columns.items() if v is not None and len(v)}


def numeric_optimum(loss_fn, C: np.ndarray, P: Mapping[str, np.ndarray], given: Mapping | None = None,
                    n_grid: int = 801):
    """(N_opt, D_opt) minimising loss_fn(N, D, **given) along C = 6ND, for any loss law of N and D: a
    log-spaced grid of N from 1 to C/6, refined by the parabola through the best point and its neighbours.

    C may carry leading axes that broadcast with P's arrays (bootstrap draws along axis 0)."""
    C = np.asarray(C, dtype=float)
    log_top = np.log(np.maximum(C / 6.0, 1.0))
    u = np.linspace(0.0, 1.0, n_grid).reshape((-1,) + (1,) * C.ndim)
    logN = u * log_top  # (grid, *C.shape)
    Pg = {k: np.asarray(v)[None, ...] for k, v in P.items()}
    with np.errstate(all="ignore"):
        L = loss_fn({"N": np.exp(logN), "D": C / (6.0 * np.exp(logN)), **(given or {})}, Pg)
    L = np.where(np.isfinite(L), L, np.inf)
    i = np.clip(np.argmin(L, axis=0), 1, n_grid - 2)
    take = lambda a, j: np.take_along_axis(a, j[None, ...], axis=0)[0]  # noqa: E731
    l0, l1, l2 = take(L, i - 1), take(L, i), take(L, i + 1)
    with np.errstate(all="ignore"):
        shift = 0.5 * (l0 - l2) / (l0 - 2 * l1 + l2)
    shift = np.where(np.isfinite(shift), np.clip(shift, -1, 1), 0.0)
    log_n = (i + shift) / (n_grid - 1) * log_top
    n = np.exp(log_n)
    return n, C / (6.0 * n)


def _jsonable(obj):
    """numpy scalars inside a fit's diagnostics and settings as plain Python numbers."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def read_doc(path: Path) -> dict:
    """A fit file's JSON document, checked: a scalinglab fit file of a version this code reads."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ScalingLabError(f"no such fit file: {path}") from None
    except IsADirectoryError:
        raise ScalingLabError(f"{path} is a directory, not a fit file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScalingLabError(f"{path} is not a valid fit file: corrupt JSON "
                              f"({getattr(exc, 'msg', type(exc).__name__)})") from None
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, FORMAT_MANY):
        raise ScalingLabError(f"{path} is not a scalinglab fit file (no \"format\": \"{FORMAT}\")")
    if doc.get("version") not in READS:
        raise ScalingLabError(f"{path} is a fit file of version {doc.get('version')!r}; this scalinglab "
                              f"reads versions {', '.join(map(str, READS))}: refit with `scalinglab fit`")
    return doc
