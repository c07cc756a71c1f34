"""A study directory, read: the one reader of every file a study leaves (study.py writes them), and the
typed summary it ends with.

``StudyDir(path)`` checks that ``path`` is a study (one error line when it is not) and reads each file on
demand: the store (read-only), config.json, summary.json (a ``StudySummary``, validated), the Approach 3
fit, the law that predicts (law.json), every other law (fits.json), the whole-curve laws
(curvefits.json). The report, the notebook, compare, plan, fit and export read studies through it.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from .errors import ScalingLabError
from .plan.answer import Plan

STORE_FILE = "study.sqlite"
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
FIT_FILE = "fit.json"  # Approach 3, the study's own fit
LAW_FILE = "law.json"  # the form that predicts (`--law auto`): `plan --law STUDY_DIR` reads it
FITS_FILE = "fits.json"  # every other law the runs allow, with draws and points: what the report draws
CURVE_FITS_FILE = "curvefits.json"  # the whole-curve law per model size, with the estimate table


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _bad(what: str) -> ValueError:
    return ValueError(what)


@dataclass(frozen=True)
class Holdout:
    """The held-out check: the law's prediction for a run at ``flops_budget`` and what it measured."""

    predicted: float
    measured: float
    rel_error: float
    flops_budget: float
    n_params: float
    n_tokens: float
    interval: tuple[float, float] | None = None
    inside_interval: bool | None = None
    interval_kind: str | None = None
    candidates: Mapping[str, float] = field(default_factory=dict)  # every candidate form's prediction
    fit_converged: bool | None = None  # the verdict of the law that made the prediction
    raw: Mapping = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, h) -> "Holdout":
        if not isinstance(h, dict):
            raise _bad("no held-out check")
        for key in ("predicted", "measured", "rel_error", "flops_budget", "n_params", "n_tokens"):
            if not _number(h.get(key)):
                raise _bad(f"holdout.{key} is not a number")
        iv = h.get("interval")
        if iv is not None and not (isinstance(iv, list) and len(iv) == 2 and all(map(_number, iv))):
            raise _bad("holdout.interval is not [lo, hi]")
        cands = h.get("candidates", {})
        if not isinstance(cands, dict) or not all(map(_number, cands.values())):
            raise _bad("holdout.candidates is not form -> predicted loss")
        return cls(predicted=h["predicted"], measured=h["measured"], rel_error=h["rel_error"],
                   flops_budget=h["flops_budget"], n_params=h["n_params"], n_tokens=h["n_tokens"],
                   interval=tuple(iv) if iv is not None else None, inside_interval=h.get("inside_interval"),
                   interval_kind=h.get("interval_kind"), candidates=dict(cands),
                   fit_converged=None if h.get("fit_converged") is None else bool(h["fit_converged"]), raw=h)


@dataclass(frozen=True)
class LawChoice:
    """The form that predicts (``--law auto``): its name, why, verdict and every candidate's backtest."""

    form: str
    why: str
    converged: bool
    backtest: tuple[Mapping, ...]
    warnings: tuple[str, ...] = ()
    not_identified: tuple[str, ...] = ()
    cuts: tuple[float, ...] = ()
    error_model: Mapping | None = None
    raw: Mapping = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, law) -> "LawChoice":
        if not (isinstance(law, dict) and isinstance(law.get("form"), str) and isinstance(law.get("why"), str)
                and isinstance(law.get("backtest"), list)
                and all(isinstance(r, dict) and isinstance(r.get("form"), str) for r in law["backtest"])):
            raise _bad("law is not the chosen form with its backtest table")
        return cls(form=law["form"], why=law["why"], converged=bool(law.get("converged", True)),
                   backtest=tuple(law["backtest"]), warnings=tuple(law.get("warnings") or ()),
                   not_identified=tuple(law.get("not_identified") or ()), cuts=tuple(law.get("cuts") or ()),
                   error_model=law.get("error_model"), raw=law)


@dataclass(frozen=True)
class StudySummary:
    """summary.json, validated: what `run` and `report` print and the report draws. A batch sweep has
    ``bcrit`` and no fit, held-out check or allocations. ``raw`` is the file's JSON, as written."""

    study: str
    study_id: str
    kind: str = "study"
    n_runs: int = 0
    fit: Mapping | None = None  # Approach 3 (to_dict without draws)
    holdout: Holdout | None = None
    allocations: tuple[Plan, ...] = ()  # the law's compute-optimal runs at the next budgets
    law: LawChoice | None = None
    bcrit: Mapping | None = None
    final: bool = True  # False: some grid run failed, the numbers are from the rest
    failed_runs: tuple = ()
    raw: Mapping = field(default_factory=dict, repr=False, compare=False)

    @property
    def law_converged(self) -> bool:
        """Whether the law that predicts (and made the held-out prediction) converged: when not, the study
        finished but its held-out check and allocations are not a law's (``run`` exits 4)."""
        if "law_converged" in self.raw:
            return bool(self.raw["law_converged"])
        if self.law is not None:
            return self.law.converged and self.holdout.fit_converged is not False
        return bool((self.fit or {}).get("converged", True))

    @property
    def allocation_rows(self) -> list[dict]:
        """The allocations as the study wrote them."""
        return list(self.raw.get("allocations", []))

    @classmethod
    def from_dict(cls, s) -> "StudySummary":
        """Raises ValueError naming what is missing or of the wrong type."""
        if not isinstance(s, dict):
            raise _bad("not a JSON object")
        if not isinstance(s.get("study"), str) or not isinstance(s.get("study_id"), str):
            raise _bad("no study name and id")
        common = dict(study=s["study"], study_id=s["study_id"], n_runs=int(s.get("n_runs") or 0), raw=s)
        if s.get("kind") == "batch-sweep":
            if not isinstance(s.get("bcrit"), dict):
                raise _bad("a batch sweep without its B_crit fits")
            return cls(kind="batch-sweep", bcrit=s["bcrit"], **common)
        if not isinstance(s.get("fit"), dict) or not isinstance(s["fit"].get("params"), dict):
            raise _bad("no fit")
        # what the text and the page print (issue 30 R12: a missing parameter, an empty allocation, a
        # wrong run_noise were tracebacks in `report`)
        fit = s["fit"]
        missing = [k for k in ("E", "A", "B", "alpha", "beta", "a", "b")
                   if not _number(fit["params"].get(k, fit.get(k)))]
        if missing:
            raise _bad(f"fit lacks {', '.join(missing)}")
        noise = s.get("run_noise")
        if noise is not None and not (isinstance(noise, dict) and all(
                _number(noise.get(k)) for k in ("sd_rel", "n_seeds", "n_params", "n_tokens"))):
            raise _bad("run_noise is not the seed repeats' sd, count and point")
        holdout = Holdout.from_dict(s.get("holdout"))
        if not isinstance(s.get("allocations", []), list):
            raise _bad("allocations is not a list")
        return cls(fit=s["fit"], holdout=holdout,
                   allocations=tuple(Plan.from_dict(a) for a in s.get("allocations", [])),
                   law=LawChoice.from_dict(s["law"]) if s.get("law") is not None else None,
                   final=bool(s.get("final", True)), failed_runs=tuple(s.get("failed_runs", [])), **common)

    def to_dict(self) -> dict:
        return dict(self.raw)


class StudyDir:
    """One study directory, read-only (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir() or not (self.path / STORE_FILE).is_file():
            raise ScalingLabError(f"{self.path} is not a study directory (no {STORE_FILE})")

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    @contextlib.contextmanager
    def store(self) -> Iterator:
        """The study's store, read-only (an immutable snapshot of a finished study; see store/sqlite.py),
        closed on leaving the block."""
        from .store import SQLiteStore
        store = SQLiteStore.open(self.path / STORE_FILE, readonly=True)
        try:
            yield store
        finally:
            store.close()

    def summary(self) -> StudySummary:
        """summary.json, or one error line saying why there is none."""
        path = self.path / SUMMARY_FILE
        if not path.exists():
            raise ScalingLabError(f"{self.path}: the study has not finished; re-run `scalinglab run` to "
                                  "complete it")
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ScalingLabError(f"{path} is corrupt; re-run `scalinglab run` to rewrite it") from None
        try:
            return StudySummary.from_dict(doc)
        except (ValueError, TypeError) as exc:
            raise ScalingLabError(f"{path} is not a study summary ({exc}); re-run `scalinglab run` to "
                                  "rewrite it") from None

    def summary_or_none(self) -> StudySummary | None:
        return self.summary() if self.has(SUMMARY_FILE) else None

    def config(self):
        """The StudyConfig the study ran with."""
        from .plan.config import StudyConfig
        try:
            config = json.loads((self.path / CONFIG_FILE).read_text())
            return StudyConfig(**{k: v for k, v in config.items() if k != "study_id"})
        except (OSError, ValueError, TypeError) as exc:
            raise ScalingLabError(f"{self.path}/{CONFIG_FILE} is not a study config ({exc})") from None

    def fit3(self):
        """Approach 3, the study's own fit (None before the grid finished, or for a batch sweep)."""
        from .fit.fitfile import load_fit
        return load_fit(self.path / FIT_FILE, "chinchilla:3") if self.has(FIT_FILE) else None

    def law(self, select: str | None = None):
        """The law `plan --law STUDY_DIR` uses: the form the backtest chose (law.json; Approach 3 for a
        study from before it), or with ``select`` the study fit of that key (law.json, fit.json, fits.json,
        curvefits.json, first match)."""
        from .fit.fitfile import load_fit, load_fits
        if not self.has(FIT_FILE):
            raise ScalingLabError(f"{self.path} is not a finished study directory (no {FIT_FILE})")
        if select is None:
            return load_fit(self.path / (LAW_FILE if self.has(LAW_FILE) else FIT_FILE))
        names = [n for n in (LAW_FILE, FIT_FILE, FITS_FILE, CURVE_FITS_FILE) if self.has(n)]
        for name in names:
            if any(f.key == select or f.key.split(":", 1)[1] == select for f in load_fits(self.path / name)):
                return load_fit(self.path / name, select)
        return load_fit(self.path / (FITS_FILE if self.has(FITS_FILE) else FIT_FILE), select)

    def fits(self) -> tuple[list, list[dict]]:
        """(fits, skipped) of fits.json: every law but Approach 3 the runs allowed; ([], []) without it."""
        from .fit.fitfile import read_fits
        if not self.has(FITS_FILE):
            return [], []
        fits, skipped = read_fits(self.path / FITS_FILE)
        return [f for f in fits if f.key != "chinchilla:3"], skipped

    def curve_fits(self) -> tuple[list, list | None] | None:
        """(whole-curve fits, the estimate table) of curvefits.json, or None for a study without."""
        from .fit.fitfile import read_fits
        if not self.has(CURVE_FITS_FILE):
            return None
        fits, _ = read_fits(self.path / CURVE_FITS_FILE)
        return fits, json.loads((self.path / CURVE_FITS_FILE).read_text()).get("estimates")

    def all_fits(self) -> dict:
        """Every saved fit by key: Approach 3, every other law, the curve laws (the law that predicts:
        ``law()``)."""
        out = {}
        fit3 = self.fit3()
        if fit3 is not None:
            out[fit3.key] = fit3
        from .fit.fitfile import load_fits
        for name in (FITS_FILE, CURVE_FITS_FILE):
            if self.has(name):
                for f in load_fits(self.path / name):
                    out.setdefault(f.key, f)
        return out
