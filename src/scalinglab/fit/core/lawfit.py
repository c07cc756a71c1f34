"""LawFit: the result of fitting any law other than Approach 3, and the robust fitter they share.

A law here is a named function of some inputs (N, D, C, S_min, L) with named positive-scale constants and
exponents. It is fitted in log space, minimising the SUM over points of Huber_delta(log prediction -
log target), as Approach 3 is (Hoffmann et al. 2022, §D.2): a vectorised pass over a grid of starts, then
scipy's trust-region least squares from the best few. Intervals come from refits on resampled runs
(whole runs, so the points of one learning curve stay together).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from ...errors import NotFittable, ScalingLabError
from .base import FitBase, data_range
from .robust import huber, percentile_interval, residual_sd
from .threads import one_blas_thread
from .verdict import E_FLOOR, judge, resamples, verdict_intervals, verdict_note


@dataclass(frozen=True)
class Law:
    """A law to fit: ``fn(inputs, params) -> prediction``; scale params are fitted in log."""

    name: str
    formula: str
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    scales: frozenset  # params fitted as log(value): positive constants (N_c, A, E, ...)
    fn: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], np.ndarray]
    starts: Mapping[str, Sequence[float]]  # natural-scale starting values per param
    cite: str = ""
    signed: frozenset = frozenset()  # params free in sign (an interaction exponent); other non-scales >= 0

    def lower_bounds(self) -> np.ndarray:
        """Exponents are >= 0 (a law's direction is part of its form); scales (in log) and signed params
        are free."""
        return np.array([-np.inf if p in self.scales or p in self.signed else 0.0 for p in self.params])


@dataclass(frozen=True, kw_only=True)
class LawFit(FitBase):
    """An immutable fitted law: params, bootstrap draws and intervals, and what it was fitted on.

    ``law`` is the paper's family ("kaplan", "chinchilla", "bcrit", "data-constrained"), ``approach`` says
    which fit within it ("L(N)", "L(N,D)", "1", "2", ...), ``form`` is the formula fitted, ``target`` what
    it predicts ("loss"; "N_opt" for the allocation laws of Approaches 1 and 2; "B_crit"), ``inputs`` its
    variables. The queries and their intervals are FitBase's.
    """

    form: str
    inputs: tuple[str, ...] = ()
    target: str = "loss"
    fn: Callable | None = field(default=None, repr=False, compare=False)  # the law; from the registry on load
    # the points it was fitted to (its inputs, "target", "run" index, and context columns such as C): what
    # the report draws residuals and Kaplan Fig. 11 from
    points: "pd.DataFrame | None" = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "inputs", tuple(self.inputs or self.settings.get("inputs", ())))

    def _law_fn(self, X, P):
        if self.fn is None:
            raise ScalingLabError(f"{self.label}: this result cannot predict (its law is unknown here)")
        return self.fn(X, P)

    def _allocate(self, C, P, given=None):
        if self.target == "N_opt":  # Approaches 1 and 2: N_opt = k_N C^a, D_opt = k_D C^b
            return P["k_N"] * C ** P["a"], P["k_D"] * C ** P["b"]
        return super()._allocate(C, P, given)

    def optimal_loss(self, C) -> np.ndarray | None:
        """Approach 2's L_opt = k_L C^-gamma at C (None for a fit without it)."""
        if "gamma" not in self.params:
            return None
        return self.params["k_L"] * np.asarray(C, dtype=float) ** -self.params["gamma"]

    def residuals(self) -> np.ndarray:
        """Relative residuals fit / target - 1 at the points it was fitted to."""
        if self.points is None:
            raise ScalingLabError(f"{self.label}: no fitted points kept with this result")
        X = {k: self.points[k].to_numpy(dtype=float) for k in self.inputs}
        return self._law_fn(X, dict(self.params)) / self.points["target"].to_numpy() - 1

    def to_dict(self, *, draws: bool = True) -> dict:
        """JSON-ready: DESIGN.md §6 keys (law, approach, params, n_runs, converged, ci), then the rest."""
        out = {"law": self.law, "approach": self.approach, "key": self.key, "form": self.form,
               "target": self.target, "inputs": list(self.inputs), "params": dict(self.params)}
        for k in ("a", "b"):
            if k in self.params:
                out[k] = self.params[k]
        out |= {"objective": self.objective, "n_runs": self.n_runs, "n_points": self.n_points,
                "converged": self.converged}
        self._common_tail(out, draws)
        if draws and self.points is not None:  # what the figures draw from: saved with the fit
            out["points"] = {c: self.points[c].tolist() for c in self.points.columns}
        return out

    @classmethod
    def from_dict(cls, d: Mapping, fn: Callable | None = None) -> "LawFit":
        """A saved fit back; ``fn`` is its law's function (files keep names, not code: fit/registry.py)."""
        return cls(**cls.fields_of(d), form=d["form"], inputs=tuple(d.get("inputs", ())),
                   target=d.get("target", "loss"), fn=fn,
                   points=pd.DataFrame(d["points"]) if isinstance(d.get("points"), dict) else None)

    def summary(self) -> str:
        lines = [f"{self.label}: {self.form}",
                 f"  runs: {self.n_runs}   points: {self.n_points} "
                 f"({self.settings.get('points_are', 'points')})"
                 f"   objective: {self.objective:.6g}   converged: {'yes' if self.converged else 'NO'}"]
        return "\n".join(lines + self._param_lines() + self._note_lines())


# ---- the shared robust fitter ---------------------------------------------------------------------------

def _natural(law: Law, theta: np.ndarray) -> dict[str, np.ndarray]:
    return {p: (np.exp(theta[..., i]) if p in law.scales else theta[..., i])
            for i, p in enumerate(law.params)}


def _theta(law: Law, params: Mapping[str, float]) -> np.ndarray:
    return np.array([np.log(params[p]) if p in law.scales else params[p] for p in law.params], dtype=float)


def _log_pred(law: Law, theta: np.ndarray, X: Mapping[str, np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.log(law.fn(X, _natural(law, theta)))


@dataclass(frozen=True)
class Points:
    """What a law is fitted to: inputs, a positive target, and the run each point came from."""

    X: Mapping[str, np.ndarray]
    y: np.ndarray
    run: np.ndarray  # integer run index per point, for resampling whole runs

    def take(self, idx: np.ndarray) -> "Points":
        return Points({k: v[idx] for k, v in self.X.items()}, self.y[idx], self.run[idx])


def fit_law(law: Law, pts: Points, *, delta: float = 1e-3, n_polish: int = 6,
            extra_starts: Sequence[Mapping[str, float]] = ()) -> tuple[np.ndarray, float, dict]:
    """Best theta from the start grid (plus ``extra_starts``), polished; returns (theta, objective, diag)."""
    n_free = len(law.params)
    if len(pts.y) <= n_free:
        raise NotFittable(f"{law.name}: need more points than its {n_free} parameters; got {len(pts.y)}")
    logy = np.log(pts.y)
    grid = np.array([[np.log(v) if p in law.scales else v for p, v in zip(law.params, combo)]
                     for combo in product(*(law.starts[p] for p in law.params))], dtype=float)
    if extra_starts:
        grid = np.vstack([grid, [_theta(law, s) for s in extra_starts]])
    # every start on every point costs starts x points, every LM step steps x points: on a large table
    # the starts are screened and the best few fitted on a seeded subsample of SCREEN_POINTS points, and
    # only the best of those is refined on all of them (issue 30 R9: Kaplan's L(N, D) on 100k runs took
    # 39 s fitting six starts to every run; on 1M runs every law together must take under a minute)
    big = len(logy) > SCREEN_POINTS
    sub = screen_sample(pts) if big else pts
    sub_logy = np.log(sub.y)
    X = {k: v[None, :] for k, v in sub.X.items()}
    values = np.empty(len(grid))
    for lo in range(0, len(grid), 512):
        th = grid[lo:lo + 512]
        r = _log_pred(law, th[:, None, :], X) - sub_logy[None, :]  # (starts, points)
        values[lo:lo + 512] = np.where(np.isfinite(r).all(axis=1), huber(r, delta).sum(axis=1), np.inf)
    order = [i for i in np.argsort(values)[:n_polish] if np.isfinite(values[i])]
    if not order:
        raise NotFittable(f"{law.name}: no start gave a finite prediction on these points")
    # the best few advance together (batched LM), then scipy's trust-region finishes the best three: a flat
    # valley can leave LM short of the minimum, so the starts' agreement reads the finished values
    th, vals = refit_batched(law, grid[order], [sub] * len(order), delta, iters=200)
    vals = vals.astype(float)
    best, best_val = None, np.inf
    for i in np.argsort(vals)[:3]:
        t, v, _ = _polish(law, th[i], sub, sub_logy, delta, max_nfev=500)
        t, v = (t, v) if v <= vals[i] else (th[i], float(vals[i]))
        vals[i] = v
        if v < best_val:
            best, best_val = t, v
    if not np.isfinite(best_val):
        raise NotFittable(f"{law.name}: no start gave a finite prediction on these points")
    results = [float(v) for v in vals if np.isfinite(v)]
    ref = min(results)
    agree = sum(abs(v - ref) <= 1e-6 * max(1.0, abs(ref)) for v in results)
    diag = {"n_starts": int(len(grid)), "n_polished": len(results), "n_agree": int(agree)}
    if big:  # the subsample's minimum is close to all points' minimum: scipy's trust region goes there
        best, best_val, done = _polish(law, best, pts, logy, delta, max_nfev=BIG_NFEV, tol=BIG_TOL)
        if not np.isfinite(best_val):
            raise NotFittable(f"{law.name}: the fit to a subsample gave no finite prediction on all points")
        diag["screened_on"] = SCREEN_POINTS
        diag["polish_limit"] = not done  # a flat direction (E -> 0, say) takes it hundreds: said
    return best, float(best_val), diag


def screen_sample(pts: Points) -> Points:
    """The seeded subsample of SCREEN_POINTS points a large table's starts are screened and fitted on."""
    return pts.take(np.sort(np.random.default_rng(0).choice(len(pts.y), size=SCREEN_POINTS, replace=False)))


def _polish(law: Law, theta0: np.ndarray, pts: Points, logy: np.ndarray, delta: float, max_nfev: int = 2000,
            tol: float = 1e-12):
    X = pts.X

    def resid(th):
        r = _log_pred(law, th, X) - logy
        return np.where(np.isfinite(r), r, 1e3)

    lower = law.lower_bounds()
    try:
        sol = least_squares(resid, np.maximum(theta0, lower + 1e-9), loss="huber", f_scale=delta,
                            method="trf", x_scale="jac", bounds=(lower, np.inf), xtol=tol, ftol=tol,
                            gtol=tol, max_nfev=max_nfev)
    except (ValueError, FloatingPointError):
        return theta0, np.inf, False
    r = _log_pred(law, sol.x, X) - logy
    val = float(huber(r, delta).sum()) if np.isfinite(r).all() else np.inf
    return sol.x, val, sol.success


BOOT_ITERS = 60  # batched Levenberg-Marquardt steps per bootstrap refit, warm-started at the full fit
BOOT_FTOL = 1e-10  # ... each refit stops once a step lowers its objective by no more than this (relative)
BOOT_CHUNK_POINTS = 1_000_000  # resampled points refitted together (a padded array of this many floats)
SCREEN_POINTS = 2000  # above this many points, the start grid is screened on a subsample of this size
BIG_TOL = 1e-10  # scipy's tolerances for the one polish on all points of a large table (objective ~1e-10)
BIG_NFEV = 50  # ... and its evaluations (a well-posed law takes 6-13 from the subsample's optimum on 1M)


def bootstrap_law(law: Law, theta: np.ndarray, rebuild: Callable[[np.ndarray], "Points"],
                  run_ids: np.ndarray, *, n_boot: int, seed: int, delta: float = 1e-3) -> np.ndarray | None:
    """Draws (K, params) from refits (warm-started at theta) on runs resampled with replacement, or None;
    ``rebuild(picked_run_ids)`` makes the points of one resample (an envelope is rebuilt from its runs).
    Resample k is the same whatever ``n_boot`` (seeded, drawn in order): the verdict reads the first 100.

    The resamples are refitted together, in chunks of up to BOOT_CHUNK_POINTS points: their points are
    stacked into one padded (resample, point) array and advanced by one batched Levenberg-Marquardt (see
    ``refit_batched``), not one scipy call each.
    """
    rng = np.random.default_rng(seed)
    out, chunk, held = [], [], 0

    def refit(chunk):  # one chunk of resamples, refitted together
        th, val = refit_batched(law, theta, chunk, delta)
        out.extend(_natural(law, t) for t in th[np.isfinite(val)])

    for _ in range(n_boot):
        try:
            sample = rebuild(rng.choice(run_ids, size=len(run_ids), replace=True))
        except NotFittable:
            continue  # a resample too thin to give points (e.g. one budget left with 2 sizes)
        if len(sample.y) > len(law.params):
            chunk.append(sample)
            held += len(sample.y)
        # memory: the stacked chunk holds (resamples x points x params) floats, bounded by BOOT_CHUNK_POINTS
        if held >= BOOT_CHUNK_POINTS:
            refit(chunk)
            chunk, held = [], 0
    if chunk:
        refit(chunk)
    if not out:
        return None
    return np.array([[float(d[p]) for p in law.params] for d in out]).reshape(-1, len(law.params))


def refit_batched(law: Law, theta0: np.ndarray, samples: Sequence[Points], delta: float,
                  iters: int = BOOT_ITERS, ftol: float = BOOT_FTOL) -> tuple[np.ndarray, np.ndarray]:
    """Minimise each sample's sum of Huber(log residual) from theta0 (one start, or one per sample), all
    samples at once.

    Samples are padded to one length (padding carries weight 0). Each step: a forward-difference Jacobian,
    the IRLS Gauss-Newton system of the Huber loss (weight 1 inside delta, delta/|r| outside, whose
    gradient J'Wr is the Huber gradient exactly), Marquardt damping per sample, exponents held >= 0;
    a step is taken only where it lowers that sample's objective. A sample is done when a step lowered its
    objective by at most ``ftol`` of it, or its damping ran to the limit; the done are dropped from the
    arrays once they are a quarter of them. Returns (theta (S, k), objective (S,)).
    """
    S, k, n = len(samples), len(law.params), max(len(s.y) for s in samples)
    w = np.zeros((S, n))
    logy = np.zeros((S, n))
    X = {name: np.ones((S, n)) for name in samples[0].X}
    for i, s in enumerate(samples):
        m = len(s.y)
        w[i, :m], logy[i, :m] = 1.0, np.log(s.y)
        logy[i, m:] = logy[i, 0]
        for name, v in s.X.items():
            X[name][i, :m], X[name][i, m:] = v, v[0]  # padding repeats a real point: finite, weight 0
    lower = law.lower_bounds()

    def resid(th):  # (S, k) -> (S, n)
        r = _log_pred(law, th[:, None, :], X) - logy
        return np.where(np.isfinite(r), r, 1e3)

    def value(r):
        return (w * huber(r, delta)).sum(axis=1)

    theta_all = np.maximum(np.broadcast_to(theta0, (S, k)), lower).astype(float)
    f_all, finite_all = np.empty(S), np.empty(S, dtype=bool)
    theta, rows = theta_all.copy(), np.arange(S)  # the rows still in the arrays (indices of samples)
    r = resid(theta)
    f = value(r)
    lam = np.full(S, 1e-3)
    done = np.zeros(S, dtype=bool)
    eye = np.eye(k)

    def settle(keep):  # write the rows leaving the arrays back; keep the others
        gone = ~keep
        theta_all[rows[gone]], f_all[rows[gone]] = theta[gone], f[gone]
        finite_all[rows[gone]] = (np.abs(r[gone]) < 1e3).all(axis=1)

    for _ in range(iters):
        if done.sum() * 4 >= len(rows):  # compact: the done leave the arrays
            keep = ~done
            settle(keep)
            rows, theta, r, f, lam, w, logy = rows[keep], theta[keep], r[keep], f[keep], lam[keep], w[keep], \
                logy[keep]
            X = {name: v[keep] for name, v in X.items()}
            done = done[keep]
            if not len(rows):
                break
        h = 1e-7 * np.maximum(1.0, np.abs(theta))
        J = np.stack([(resid(theta + h[:, j:j + 1] * eye[j]) - r) / h[:, j:j + 1] for j in range(k)], axis=2)
        a = np.abs(r)
        wr = w * np.where(a <= delta, 1.0, delta / np.maximum(a, 1e-300))
        Jw = J * wr[:, :, None]  # batched matrix products (BLAS), not einsum: 100k points, 200 steps
        g = np.matmul(Jw.transpose(0, 2, 1), r[:, :, None])[:, :, 0]
        H = np.matmul(Jw.transpose(0, 2, 1), J)
        d = np.einsum("skk->sk", H)
        H = H + (lam[:, None] * d + 1e-12 * (1.0 + d.max(axis=1, keepdims=True)))[:, :, None] * eye
        try:
            step = -np.linalg.solve(H, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -np.einsum("skm,sm->sk", np.linalg.pinv(H), g)
        trial = np.maximum(theta + step, lower)
        r2 = resid(trial)
        f2 = value(r2)
        better = np.isfinite(f2) & (f2 < f)
        done |= better & (f - f2 <= ftol * np.abs(f))
        theta[better], r[better], f[better] = trial[better], r2[better], f2[better]
        lam = np.where(better, np.maximum(lam / 3.0, 1e-9), np.minimum(lam * 4.0, 1e9))
        done |= lam >= 1e9
    settle(np.zeros(len(rows), dtype=bool))
    return theta_all, np.where(finite_all, f_all, np.inf)


def rebuild_from(pts: "Points") -> Callable[[np.ndarray], "Points"]:
    """Resampling whole runs of a fixed point set (the points of a picked run, once per pick)."""
    by_run = {r: np.flatnonzero(pts.run == r) for r in np.unique(pts.run)}
    return lambda pick: pts.take(np.concatenate([by_run[r] for r in pick]))


@one_blas_thread
def make_result(law: Law, family: str, approach: str, pts: Points, *, delta: float = 1e-3, bootstrap: int = 0,
                seed: int = 0, level: float = 0.95, warnings: Sequence[str] = (),
                settings: Mapping | None = None, extra_starts: Sequence[Mapping[str, float]] = (),
                rebuild: Callable[[np.ndarray], Points] | None = None, run_ids: np.ndarray | None = None,
                context: Mapping[str, np.ndarray] | None = None) -> LawFit:
    """Fit ``law`` to ``pts`` (and bootstrap it over runs) into a LawFit; ``context`` adds columns (one value
    per point) to the result's ``points`` frame."""
    theta, objective, diag = fit_law(law, pts, delta=delta, extra_starts=extra_starts)
    # the verdict reads VERDICT_DRAWS resamples whether or not intervals were asked for (core/verdict.py)
    units = np.sort(pd.unique(pts.run)) if run_ids is None else run_ids  # pandas' hash: 30x numpy's at 1M
    n_boot = resamples(bootstrap, len(units), len(pts.y))
    all_draws = bootstrap_law(law, theta, rebuild or rebuild_from(pts), units, n_boot=n_boot, seed=seed,
                              delta=delta) if n_boot else None
    verdict_ci = verdict_intervals(all_draws, law.params)
    ci, draws = {}, None
    if bootstrap:
        draws = None if all_draws is None else all_draws[:bootstrap]
        ci = {} if draws is None else {p: tuple(float(x) for x in percentile_interval(draws[:, i], level))
                                       for i, p in enumerate(law.params)}
        diag["bootstrap_converged"] = 0 if draws is None else len(draws)
    params = {k: float(v) for k, v in _natural(law, theta).items()}
    irreducible = "E" if "E" in params else None
    # the caller's warnings are notes on the data (no B_crit law, say); the verdict's make a fit degenerate
    exponents = [p for p in law.params if p not in law.scales | law.signed]
    verdict = judge(params, verdict_ci, exponents=exponents, scales=law.scales, irreducible=irreducible,
                    target_min=float(pts.y.min()))
    notes = []
    if irreducible and params["E"] < E_FLOOR * float(pts.y.min()):
        rise, hold = _irreducible_profile(law, theta, objective, pts, delta)
        # E is not identified, not wrong, when a fit with E held well above 0 is as good by a likelihood-ratio
        # test (see _lr_rise; on a large table, on the subsample the test was made on): say so
        if rise <= _lr_rise(min(len(pts.y), SCREEN_POINTS), len(law.params)):
            others = judge({k: v for k, v in params.items() if k != "E"},
                           {k: v for k, v in verdict_ci.items() if k != "E"}, exponents=exponents,
                           scales=law.scales - {"E"})
            notes = [f"the irreducible term E ran to 0 ({params['E']:.3g}) where the fit hardly depends on "
                     f"it (held at {hold:.3g}, a tenth of the lowest loss, the objective rises "
                     f"{100 * rise:.2g}%, within a likelihood-ratio test's 95%): E is not identified by "
                     "these runs; predictions near them hold, "
                     "far extrapolations depend on E (its bootstrap interval)"]
            verdict = others
    if len(pts.y) <= len(law.params) + 1:  # DESIGN §10: one spare point or none tests nothing
        verdict.append(f"{len(pts.y)} points for {len(law.params)} parameters: no spare data to test the "
                       f"law (at least {len(law.params) + 2} needed)")
    if diag["n_agree"] < min(2, diag["n_polished"]):
        verdict.append(f"only {diag['n_agree']} of the {diag['n_polished']} best starts reach the lowest "
                       "objective: the minimum found is not reproducible")
    if not np.isfinite(objective):
        verdict.append("the objective is not finite at the fitted parameters")
    if diag.pop("polish_limit", False):
        verdict.append(f"the polish on all {len(pts.y):,} points stopped at its {BIG_NFEV}-evaluation limit, "
                       "still moving: the minimum is not confirmed")
    warnings = list(warnings) + verdict
    diag["residual_sd"] = _residual_sd(law, theta, pts)
    diag["not_identified"] = notes + verdict_note(bootstrap, len(units), len(pts.y))
    converged = not verdict
    n_runs = int(len(units))
    points = points_frame(pts, context)
    if len(points) < len(pts.y):
        settings = dict(settings or {}) | {"points_kept": f"{len(points):,} of {len(pts.y):,} points (whole "
                                                          "runs, seeded) kept for the figures"}
    return LawFit(law=family, approach=approach, form=law.formula, params=params, objective=objective,
                  n_runs=n_runs, n_points=int(len(pts.y)), converged=converged, ci=ci, inputs=law.inputs,
                  target="B_crit" if family == "bcrit" else "loss",
                  diagnostics=diag | {"warnings": list(warnings)},
                  settings={"delta": delta, "bootstrap": bootstrap, "seed": seed,
                            "ci_level": level if bootstrap else None, "cite": law.cite,
                            "inputs": list(law.inputs), "data_range": _range_of(law, pts)}
                  | dict(settings or {}),
                  draws=draws, level=level, fn=law.fn, points=points)


E_HOLD = 0.1  # E is held at this fraction of the lowest loss to test whether the fit depends on it
CHI2_1_95 = 3.841458820694124  # the chi-square (1 degree of freedom) 95% quantile


def _lr_rise(n: int, p: int) -> float:
    """The relative rise of the objective that one parameter held fixed may cost before the data reject
    it: the likelihood-ratio test at 95%. With the objective sum(r^2)/2 ~ (n - p) sigma^2 / 2 and
    Delta(sum r^2) / sigma^2 ~ chi2(1), the rise allowed is chi2_1(0.95) / (n - p) (19 runs, 5
    parameters: 27%; 240 runs: 1.6%). Huber is quadratic inside delta, where a good fit's residuals lie."""
    return CHI2_1_95 / max(n - p, 1)


def _irreducible_profile(law: Law, theta: np.ndarray, objective: float, pts: Points,
                         delta: float) -> tuple[float, float]:
    """(relative rise of the objective, E held): the law refitted with E held at E_HOLD x the lowest
    loss, every other parameter free (started from the fit)."""
    hold = E_HOLD * float(pts.y.min())
    if len(pts.y) > SCREEN_POINTS:  # a large table: the test on fit_law's subsample (a refit on every point
        # costs minutes where E runs flat), the free fit's objective taken there too
        pts = screen_sample(pts)
        objective = float(huber(_log_pred(law, theta, pts.X) - np.log(pts.y), delta).sum())
    rest = tuple(p for p in law.params if p != "E")
    fn = law.fn
    held = Law(name=law.name, formula=law.formula, inputs=law.inputs, params=rest,
               scales=frozenset(law.scales - {"E"}), fn=lambda X, p: fn(X, dict(p) | {"E": hold}),
               starts={k: v for k, v in law.starts.items() if k != "E"}, signed=law.signed)
    start = {k: float(v) for k, v in _natural(law, theta).items() if k != "E"}
    try:
        _, value, _ = fit_law(held, pts, delta=delta, extra_starts=[start])
    except NotFittable:
        return np.inf, hold
    return float(max(value - objective, 0.0) / max(objective, 1e-300)), hold


def _range_of(law: Law, pts: Points) -> dict:
    cols = dict(pts.X)
    if {"N", "D"} <= set(cols):
        cols["C"] = 6 * cols["N"] * cols["D"]
    return data_range(**cols)


def _residual_sd(law: Law, theta: np.ndarray, pts: Points) -> float:
    """Robust sd of the log residuals, scaled for the parameters fitted (as Approach 3's)."""
    return residual_sd(_log_pred(law, theta, pts.X) - np.log(pts.y), len(law.params))


POINTS_KEPT = 20_000  # a fit keeps at most this many of its points (whole runs, seeded) for its figures


def points_frame(pts: Points, context: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The points a fit keeps for its figures (residuals, Kaplan Fig. 11): all of them up to POINTS_KEPT,
    else the points of whole runs drawn at random (seeded) up to that many, so that a fit of a million
    runs neither holds nor writes a million rows per law (issue 30 R9)."""
    cols = {**pts.X, "target": pts.y, "run": pts.run, **dict(context or {})}
    if len(pts.y) > POINTS_KEPT:
        codes, runs = pd.factorize(pts.run)
        order = np.random.default_rng(0).permutation(len(runs))
        n_keep = max(1, int(np.searchsorted(np.cumsum(np.bincount(codes)[order]), POINTS_KEPT, side="right")))
        kept = np.zeros(len(runs), dtype=bool)
        kept[order[:n_keep]] = True
        cols = {k: np.asarray(v)[kept[codes]] for k, v in cols.items()}
    return pd.DataFrame(cols)
