"""The figures of a scaling study, each mirroring a figure of Kaplan et al. 2020 or Hoffmann et al. 2022.

Every function takes plain tables (pandas) and fitted results and returns a matplotlib Figure, or raises
MissingData with a one-line reason when the study lacks what the figure needs (no curves, no sweep):
the report then states the reason instead of drawing an empty figure. No torch here (DESIGN.md §1).
"""
from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..errors import ScalingLabError  # noqa: E402
from ..fit import laws  # noqa: E402
from ..fit.core.robust import percentile_interval  # noqa: E402


def subplots(*args, **kwargs):
    """plt.subplots laid out once when drawn (saving with bbox_inches="tight" would draw each figure twice);
    per figure, so importing this module changes no global matplotlib setting."""
    return plt.subplots(*args, layout="constrained", **kwargs)


class MissingData(Exception):
    """The study has no data for this figure; the message says what is missing."""


class FlopAxis:
    """One FLOP convention for every axis of a page: the table's own C (a study's exact Appendix-F count),
    or C = 6ND when the table has none. A law's closed-form answers, which count C = 6ND, are moved onto
    the page's axis by the ratio C / 6ND the runs of that size have (interpolated in log N)."""

    def __init__(self, finals: pd.DataFrame | None = None):
        self.logn = self.logr = None
        self.name = "training FLOPs C = 6ND"
        if finals is not None and "C" in finals:
            ratio = finals["C"] / (6 * finals["N"] * finals["D"])
            if not np.allclose(ratio, 1.0, rtol=1e-3):
                order = np.argsort(finals["N"].to_numpy())
                self.logn = np.log(finals["N"].to_numpy()[order])
                self.logr = np.log(ratio.to_numpy()[order])
                self.name = "training FLOPs C (the runs' own count)"

    def from_6nd(self, C6, N) -> np.ndarray:
        """A budget counted as 6ND for a model of N parameters, on this page's axis."""
        if self.logn is None:
            return np.asarray(C6, dtype=float)
        return np.asarray(C6, dtype=float) * np.exp(np.interp(np.log(N), self.logn, self.logr))


def _mark_extrapolation(ax, largest: float | None, axis: str = "x") -> None:
    """Shade what lies beyond the largest run's compute: there the curves are the law's, not the data's."""
    if largest is None:
        return
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    if hi > largest:
        ax.axvspan(largest, hi, color="grey", alpha=0.08, lw=0, label="extrapolated (beyond the largest run)")
        ax.set_xlim(lo, hi)


def _plain_minor(ax) -> None:
    """Minor-tick labels on log axes that do not collide: over more than ~1.5 decades none (the decades say
    it); over less, only at 2 and 5 (and 3) x 10^k (else the axis may show no label at all)."""
    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log" or not min(lim) > 0:
            continue
        if np.log10(max(lim) / min(lim)) > 1.5:
            axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        else:
            subs = (2.0, 5.0) if np.log10(max(lim) / min(lim)) > 0.7 else (2.0, 3.0, 5.0)
            axis.set_minor_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
            plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}")
            axis.set_minor_formatter(plain)
            axis.set_major_formatter(plain)


def _size_colours(sizes):
    sizes = np.sort(np.unique(sizes))
    cmap = plt.get_cmap("viridis")
    return {n: cmap(i / max(1, len(sizes) - 1)) for i, n in enumerate(sizes)}


def learning_curves(curves: pd.DataFrame | None) -> plt.Figure:
    """Loss vs tokens and vs FLOPs per model size, with the compute envelope (Kaplan Fig. 1; Hoffmann Fig. 2
    left)."""
    if curves is None or curves.empty:
        raise MissingData("no learning curves in this study (a table without run_id and step)")
    from ..fit.core.curves import envelope
    fig, axes = subplots(1, 2, figsize=(11, 4.2))
    colours = _size_colours(curves["N"])
    for _, g in curves.groupby("run_id"):
        g = g[g["step"] > 0]
        c = colours[g["N"].iloc[0]]
        axes[0].plot(g["D"], g["loss"], color=c, lw=1)
        axes[1].plot(g["C"], g["loss"], color=c, lw=1)
    try:
        env = envelope(curves, "C", transient=0.1)
        axes[1].plot(env["C"], env["loss"], color="crimson", lw=2, label="compute envelope (min over runs)")
        axes[1].legend(fontsize=8)
    except ScalingLabError:  # too few runs for an envelope: the curves alone still say something
        pass
    for ax, xlabel in zip(axes, ("tokens D", "training FLOPs C")):
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="held-out loss (nats/token)")
        _plain_minor(ax)
        ax.grid(alpha=0.3, which="both")
    norm = matplotlib.colors.LogNorm(curves["N"].min(), curves["N"].max())
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=norm)
    fig.colorbar(sm, ax=axes, label="parameters N")
    fig.suptitle("Learning curves by model size (Kaplan 2020 Fig. 1; Hoffmann 2022 Fig. 2 left)")
    return fig


def isoflop_valleys(finals: pd.DataFrame, minima: pd.DataFrame) -> plt.Figure:
    """Final loss vs N per budget with the fitted parabolas and their minima (Hoffmann 2022 Fig. 3 left)."""
    if "budget" not in finals or finals["budget"].nunique() < 1:
        raise MissingData("no IsoFLOP budgets in this table")
    if finals.groupby("budget")["N"].nunique().max() < 3:
        raise MissingData("no budget has 3+ model sizes: nothing to draw a valley through")
    fig, ax = subplots(figsize=(6.5, 4.5))
    budgets = np.sort(finals["budget"].unique())
    cmap = plt.get_cmap("plasma")
    for i, C in enumerate(budgets):
        g = finals[finals["budget"] == C]
        col = cmap(i / max(1, len(budgets) - 1) * 0.85)
        ax.scatter(g["N"], g["loss"], color=col, s=22, label=f"{C:.3g} FLOPs")
        if len(g) >= 3:
            x = np.log(g["N"].to_numpy())
            p = np.polyfit(x, g["loss"].to_numpy(), 2)
            xs = np.linspace(x.min() - 0.2, x.max() + 0.2, 100)
            ax.plot(np.exp(xs), np.polyval(p, xs), color=col, lw=1)
    if minima is not None and len(minima):
        ax.scatter(minima["N_opt"], minima["L_opt"], marker="*", s=140, color="black", zorder=5,
                   label="minima")
    ax.set(xscale="log", xlabel="parameters N", ylabel="final held-out loss",
           title="IsoFLOP valleys (Hoffmann 2022 Fig. 3 left)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def allocation(fits: list, published: dict, c_range: tuple[float, float], flop_axis: "FlopAxis",
               largest: float | None = None, note: str = "") -> plt.Figure:
    """N_opt(C) and D_opt(C) for each approach with bootstrap bands (percentiles of the fits' draws),
    published laws as a labelled reference (Hoffmann 2022 Fig. 1 and Fig. A3).

    ``fits`` holds (label, fit, six_nd): a fit answering optimal(C) and optimal_interval(C); six_nd says
    it counts C as 6ND (Approach 3's closed form), moved onto the page's axis by ``flop_axis``."""
    if not fits:
        raise MissingData("no fitted allocation (Approaches 1, 2 or 3) to draw")
    C = np.geomspace(c_range[0], c_range[1], 60)
    fig, axes = subplots(1, 2, figsize=(11, 4.2))
    for label, fit, six_nd in fits:
        n, d = fit.optimal(C)
        x = flop_axis.from_6nd(C, n) if six_nd else C
        band = fit.optimal_interval(C)
        for ax, y, key in zip(axes, (n, d), ("N_opt", "D_opt")):
            line, = ax.plot(x, y, lw=1.8, label=label + ("" if fit.converged else " (NOT converged)"),
                            ls="-" if fit.converged else ":")
            if band is not None:
                lo, hi = band[key]
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    for name, law in published.items():
        n, d = laws.chinchilla_optimal(C, A=law["A"], B=law["B"], alpha=law["alpha"], beta=law["beta"])
        axes[0].plot(C, n, ls="--", lw=1, color="grey", label=f"{name}, published: reference only "
                                                               f"(other tokenizer and data, C = 6ND)")
        axes[1].plot(C, d, ls="--", lw=1, color="grey")
    for ax, ylabel in zip(axes, ("compute-optimal parameters N_opt", "compute-optimal tokens D_opt")):
        ax.set(xscale="log", yscale="log", xlabel=flop_axis.name, ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
        _mark_extrapolation(ax, largest)
    axes[0].legend(fontsize=7)
    fig.suptitle("Compute-optimal allocation, bands = 95% bootstrap intervals (Hoffmann 2022 Fig. 1, A3)"
                 + note)
    return fig


def holdout(h: dict | None) -> plt.Figure:
    """The held-out check: predicted loss with its interval against the measured loss."""
    if not h:
        raise MissingData("this study has no held-out run")
    fig, ax = subplots(figsize=(6, 4.4))
    lo, hi = h["interval"] if h.get("interval") else (h["predicted"], h["predicted"])
    kind = h.get("interval_kind") or "95% bootstrap interval of the law"
    ax.errorbar([0], [h["predicted"]], yerr=[[h["predicted"] - lo], [hi - h["predicted"]]], fmt="o",
                capsize=6, label=textwrap.fill(f"predicted, {kind}", 70))
    if h.get("fit_interval") and h.get("interval") and h["fit_interval"] != h["interval"]:
        flo, fhi = h["fit_interval"]
        ax.errorbar([0.08], [h["predicted"]], yerr=[[h["predicted"] - flo], [fhi - h["predicted"]]],
                    fmt="none", capsize=3, color="gray", label="the law's bootstrap interval alone")
    ax.scatter([1], [h["measured"]], color="crimson", zorder=5, label="measured")
    ax.set(xticks=[0, 1], xticklabels=["predicted", "measured"], xlim=(-0.6, 1.6), ylabel="held-out loss",
           title=f"Held-out run at {h['flops_budget']:.3g} FLOPs: error {100 * h['rel_error']:+.2f}%")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=8)  # below the axes: a long interval label fits
    return fig


def residuals(panels: list[tuple[str, str, np.ndarray, np.ndarray]]) -> plt.Figure:
    """One panel per fit: 100 ln(fit / measured) (about the relative residual in %, symmetric for the noisy
    ones such as the noise scale) at the points it was fitted to.

    ``panels`` holds (title, x label, x, fit / measured - 1) for each fit."""
    if not panels:
        raise MissingData("no fits with points to compare against")
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = subplots(rows, cols, figsize=(4.2 * cols, 2.7 * rows), squeeze=False)
    for ax, (title, xlabel, x, r) in zip(axes.flat, panels):
        with np.errstate(all="ignore"):
            r = 100 * np.log1p(r)
        ok = np.isfinite(r)
        ax.scatter(x[ok], r[ok], s=8, color="tab:blue", alpha=0.7)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xscale("log")
        _plain_minor(ax)
        spread = np.sqrt(np.mean(r[ok] ** 2)) if ok.any() else np.nan
        ax.set_title(f"{title}\nrms {spread:.2f}%", fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("100 ln(fit / measured)", fontsize=8)
    fig.suptitle("Residuals of each fit at its own points")
    return fig


def kaplan_fixed_compute_steps(fit_ns, n_levels: int = 5) -> plt.Figure:
    """Loss vs N at fixed compute (left) and at fixed steps S_min (right), measured points with the fitted
    L(N, S_min) drawn through them (Kaplan 2020 Fig. 11)."""
    if fit_ns is None or fit_ns.points is None:
        raise MissingData("no L(N,S) fit (needs learning curves)")
    pts = fit_ns.points.sort_values(["run", "S_min"])
    runs = [g for _, g in pts.groupby("run")]
    if pts["N"].nunique() < 3:
        raise MissingData(f"L(N,S) was fitted to {pts['N'].nunique()} model size(s); the figure needs 3+")
    fig, axes = subplots(1, 2, figsize=(11, 4.2), sharey=True)
    cmap = plt.get_cmap("plasma")
    N_all = np.geomspace(pts["N"].min() / 1.5, pts["N"].max() * 1.5, 80)
    # the tokens per step relate C and S_min: S_min ~ k C / N, k the study's median
    k = float(np.median(pts["S_min"] * pts["N"] / pts["C"]))
    for ax, col, unit in ((axes[0], "C", "FLOPs"), (axes[1], "S_min", "steps")):
        lo = max(g[col].min() for g in runs)
        hi = min(g[col].max() for g in runs)
        if not hi > lo:  # no value every run reaches: use the values most runs reach
            lo, hi = np.percentile([g[col].min() for g in runs],
                                   50), np.percentile([g[col].max() for g in runs], 50)
        levels = np.geomspace(lo, hi, n_levels) if hi > lo else np.array([lo])
        for i, v in enumerate(levels):
            c = cmap(0.85 * i / max(1, len(levels) - 1))
            xs, ys = [], []
            for g in runs:
                x = np.log(g[col].to_numpy())
                if x.min() <= np.log(v) <= x.max():
                    xs.append(g["N"].iloc[0])
                    ys.append(float(np.exp(np.interp(np.log(v), x, np.log(g["target"].to_numpy())))))
            ax.scatter(xs, ys, color=c, s=18, zorder=3, label=f"{v:.3g} {unit}")
            s_min = k * v / N_all if col == "C" else np.full_like(N_all, v)
            ax.plot(N_all, fit_ns.predict(N=N_all, S_min=s_min), color=c, lw=1, ls="--")
        ax.set(xscale="log", yscale="log", xlabel="parameters N (as fitted)",
               title=("fixed compute C" if col == "C" else "fixed steps S_min"))
        _plain_minor(ax)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("held-out loss")
    fig.suptitle(f"Loss vs N at fixed compute and fixed steps; dashed: fitted {fit_ns.form} "
                 "(Kaplan 2020 Fig. 11)")
    return fig


def tokens_per_param_fan(fit3, c_range: tuple[float, float], flop_axis: "FlopAxis",
                         largest: float | None = None, note: str = "") -> plt.Figure:
    """Bootstrap fan of the compute-optimal tokens per parameter D_opt/N_opt against compute."""
    draws = fit3.draws if fit3 is not None else None
    if draws is None or len(draws) < 10:
        raise MissingData("no bootstrap draws (the fit was made without bootstrap resamples)")
    C6 = np.geomspace(c_range[0], c_range[1], 50)
    E, A, B, alpha, beta = (draws[:, i][:, None] for i in range(5))
    with np.errstate(all="ignore"):
        n, d = laws.chinchilla_optimal(C6[None, :], A=A, B=B, alpha=alpha, beta=beta)
        ratio = d / n
    C = flop_axis.from_6nd(C6, fit3.optimal(C6)[0])
    fig, ax = subplots(figsize=(6, 3.6))
    for level, alpha_band in ((0.95, 0.15), (0.8, 0.25), (0.5, 0.35)):
        lo, hi = percentile_interval(ratio, level)
        ax.fill_between(C, lo, hi, color="tab:blue", alpha=alpha_band, lw=0)
    ax.plot(C, np.nanmedian(ratio, axis=0), color="tab:blue", lw=1.5, label="median")
    ax.axhline(20, color="grey", ls="--", lw=1, label="20 tokens/param (Chinchilla rule of thumb)")
    ax.set(xscale="log", yscale="log", xlabel=flop_axis.name, ylabel="D_opt / N_opt",
           title="Tokens per parameter at the optimum: 50/80/95% bootstrap fan" + note)
    ax.grid(alpha=0.3, which="both")
    _mark_extrapolation(ax, largest)
    ax.legend(fontsize=7)
    return fig


def loss_contours(fit3, c_range: tuple[float, float], flop_axis: "FlopAxis", largest: float | None = None,
                  note: str = "") -> plt.Figure:
    """Contours of the fitted L(N, D) over (C, N) with the efficient frontier N_opt(C) (Hoffmann 2022 Fig. 4),
    C on the page's FLOP axis."""
    if fit3 is None:
        raise MissingData("no Approach 3 fit")
    C6 = np.geomspace(c_range[0], c_range[1], 120)
    n_opt, _ = fit3.optimal(C6)
    N = np.geomspace(n_opt.min() / 10, n_opt.max() * 10, 120)
    CC, NN = np.meshgrid(C6, N)
    L = fit3.predict(NN, CC / (6 * NN))
    fig, ax = subplots(figsize=(6.5, 4.5))
    levels = np.linspace(np.nanmin(L), np.nanpercentile(L, 60), 20)  # resolve the valley, not the far corner
    cs = ax.contourf(flop_axis.from_6nd(CC, NN), NN, L, levels=levels, cmap="viridis_r", extend="max")
    fig.colorbar(cs, ax=ax, label="fitted loss")
    ax.plot(flop_axis.from_6nd(C6, n_opt), n_opt, color="crimson", lw=2, label="efficient frontier N_opt(C)")
    ax.set(xscale="log", yscale="log", xlabel=flop_axis.name, ylabel="parameters N",
           title="Fitted L(N, D) on IsoFLOP axes (Hoffmann 2022 Fig. 4)" + note)
    edges = flop_axis.from_6nd(np.array([C6[0], C6[-1]])[:, None], N[None, :])
    ax.set_xlim(edges[0].max(), edges[1].min())  # where every N of the grid has a value on this axis
    if largest is not None:
        ax.axvline(largest, color="grey", lw=1, ls="--", label="largest run: extrapolated to the right")
    from matplotlib.ticker import LogLocator, NullFormatter
    ax.xaxis.set_major_locator(LogLocator(numticks=6))  # decades only: labels that do not overlap
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=8)
    return fig


def loss_vs_n_embeddings(finals: pd.DataFrame, frontier: pd.DataFrame | None = None) -> plt.Figure:
    """Loss on the compute-efficient frontier against N with and without embedding parameters (Kaplan 2020
    Fig. 6). ``frontier`` (N, N_nonembed, loss) is the lowest loss each size reaches where it wins the
    compute envelope (or the IsoFLOP minima): on an IsoFLOP grid the best run of a size is a run of another
    budget, and those zigzag. One panel when the two counts agree to 1%."""
    if "N_nonembed" not in finals:
        raise MissingData("the table has no non-embedding parameter count (n_params_nonembed)")
    if finals["N"].nunique() < 2:
        raise MissingData("one model size: no trend in N to draw")
    best = frontier if frontier is not None and len(frontier) >= 2 else \
        finals.loc[finals.groupby("N")["loss"].idxmin()].sort_values("N")
    how = "compute-efficient frontier" if best is frontier else "best run per size"
    same = np.allclose(finals["N"], finals["N_nonembed"], rtol=0.01)
    panels = [("N", "parameters N (all = non-embedding to 1%)")] if same else \
        [("N", "all parameters (Chinchilla's N)"), ("N_nonembed", "non-embedding parameters (Kaplan's N)")]
    fig, axes = subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), sharey=True, squeeze=False)
    for ax, (col, label) in zip(axes[0], panels):
        ax.scatter(finals[col], finals["loss"], s=12, color="lightgrey", label="every run's final loss")
        ax.plot(best[col], best["loss"], "o-", color="tab:blue", label=how)
        ax.set(xscale="log", yscale="log", xlabel=label)
        _plain_minor(ax)
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("held-out loss")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Loss vs model size with and without embeddings (Kaplan 2020 Fig. 6)")
    return fig


def critical_batch(noise_fit, sweep_fit) -> plt.Figure:
    """B_crit against loss: the gradient noise scale per eval and/or a batch sweep's B_crit = E_min/S_min,
    each
    with its fitted B_crit(L) = B*/L^(1/alpha_B) over the losses it was fitted at (Kaplan 2020 Fig. 10)."""
    if noise_fit is None and sweep_fit is None:
        raise MissingData("no gradient noise scale recorded and no batch-size sweep")
    fig, ax = subplots(figsize=(6.5, 4))
    for fit, colour, marker, what in ((noise_fit, "crimson", "o", "noise scale B_simple per eval"),
                                      (sweep_fit, "black", "s", "batch sweep E_min/S_min")):
        if fit is None:
            continue
        p = fit.points
        ax.scatter(p["L"], p["target"], marker=marker, s=12 if marker == "o" else 30, color=colour,
                   alpha=0.5 if marker == "o" else 1, label=what)
        L = np.geomspace(p["L"].min(), p["L"].max(), 50)
        ok = "" if fit.converged else "NOT converged (not a law), "
        ax.plot(L, fit.predict(L=L), color=colour, lw=1.5 if fit.converged else 1.0,
                ls="-" if fit.converged else ":",
                label=f"fit, {ok}B* {fit.params['B_star']:.3g}, alpha_B {fit.params['alpha_B']:.3g}")
    ax.set(xscale="log", yscale="log", xlabel="loss", ylabel="critical batch (tokens)",
           title="Critical batch size vs loss (Kaplan 2020 Fig. 10)")
    _plain_minor(ax)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def curve_law_fits(section: dict | None) -> plt.Figure:
    """The whole-curve law over the measured curves (Luo et al. 2025, Fig. 1 style): each run's probe
    loss against its step, the law fitted to its model size drawn through it; flagged fits dashed."""
    if not section or not section.get("fits"):
        raise MissingData("the study fitted no whole-curve law (curve_laws = false, or no dense curves)")
    fits, runs = section["fits"], section["runs"]
    colours = _size_colours(sorted({n for n, _ in runs.values()}))
    fig, ax = subplots(figsize=(7, 4.2))
    for fit in fits:
        n = float(fit.approach.split("=", 1)[1])
        for n_run, curve in runs.values():
            if n_run != n:
                continue
            ax.scatter(curve.steps + 1, curve.loss, s=5, color=colours[n], alpha=0.5)
            ax.plot(curve.steps + 1, fit.predict(curve), color=colours[n], lw=1,
                    ls="-" if fit.converged else "--")
        ax.plot([], [], color=colours[n], ls="-" if fit.converged else "--",
                label=f"N {n:.3g}" + ("" if fit.converged else " (flagged)"))
    ax.set(xscale="log", xlabel="step", ylabel="probe loss (nats/token)",
           title="Multi-Power Law per model size over the measured curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig


def curve_estimates(rows: list[dict] | None) -> plt.Figure:
    """Each run's final loss as estimated from its first 30% and 50% (the law of the study's other runs)
    against the measured one; hollow markers: estimates from a flagged (not converged) fit."""
    if not rows:
        raise MissingData("no part-way estimates of final loss (no whole-curve law fitted)")
    fig, ax = subplots(figsize=(5, 4.2))
    for frac, marker in ((0.3, "o"), (0.5, "s")):
        sel = [r for r in rows if r["fraction"] == frac]
        if not sel:
            continue
        x = np.array([r["measured"] for r in sel])
        y = np.array([r["final"] for r in sel])
        ok = np.array([bool(r["converged"]) for r in sel])
        med = 100 * np.median(np.abs(y / x - 1))
        ax.scatter(x[ok], y[ok], marker=marker, label=f"from {100 * frac:.0f}% (median |error| {med:.2f}%)")
        ax.scatter(x[~ok], y[~ok], marker=marker, facecolors="none", edgecolors="gray")
    lo = min(min(r["measured"], r["final"]) for r in rows)
    hi = max(max(r["measured"], r["final"]) for r in rows)
    line = np.array([lo, hi])
    ax.plot(line, line, color="black", lw=1)
    ax.fill_between(line, 0.98 * line, 1.02 * line, color="gray", alpha=0.15, label="within 2%")
    ax.set(xlabel="measured final loss", ylabel="estimated final loss",
           title="Final loss seen part-way through each run")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def alternative_schedules(fit, schedules: dict[str, np.ndarray] | None) -> plt.Figure:
    """The largest model under other LR schedules of the same length and peak: the fitted law's curves."""
    if fit is None or not schedules:
        raise MissingData("no whole-curve law for the largest model")
    fig, (ax, axl) = subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(3, 1))
    for name, lr in schedules.items():
        at = np.unique(np.linspace(max(1, len(lr) // 20), len(lr) - 1, 200).astype(int))
        loss = fit.predict(lr, at)
        ax.plot(at + 1, loss, label=f"{name}: final {loss[-1]:.4f}")
        axl.plot(np.arange(len(lr)) + 1, lr)
    ax.set(ylabel="predicted loss", title=f"{fit.label}: other schedules, same steps and peak LR"
           + ("" if fit.converged else "\n(from a flagged fit: see its warnings)"))
    axl.set(xlabel="step", ylabel="LR")
    ax.grid(alpha=0.3)
    axl.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def source_losses(table: pd.DataFrame | None) -> plt.Figure:
    """Per validation source: the best final loss at each budget, and the largest run's curves."""
    cols = [] if table is None else sorted(c for c in table.columns if str(c).startswith("loss:"))
    if not cols:
        raise MissingData("no per-source losses (a corpus of one source, or a study from before them)")
    fig, axes = subplots(1, 2, figsize=(11, 4.2))
    finals = table.sort_values("step").groupby("run_id").tail(1)
    best = finals.groupby("budget")[["loss", *cols]].min().sort_index()
    for i, col in enumerate(cols):
        axes[0].plot(best.index, best[col], marker="o", ms=3, color=f"C{i}", label=col[5:])
    axes[0].plot(best.index, best["loss"], color="black", ls="--", lw=1.5,
                 label="all sources (token-weighted)")
    # the largest model's run with the most evals (a WSD run's curve can be a single annealed point)
    largest = table[(table["N"] == finals["N"].max()) & (table["step"] > 0)]
    big_id = largest.groupby("run_id")["step"].count().sort_values(kind="stable").index[-1]
    run = largest[largest["run_id"] == big_id].sort_values("step")
    big = run.iloc[-1]
    style = dict(marker="o", ms=3) if len(run) < 5 else {}  # a few points are drawn as points
    for i, col in enumerate(cols):
        axes[1].plot(run["D"], run[col], color=f"C{i}", label=col[5:], **style)
    axes[1].plot(run["D"], run["loss"], color="black", ls="--", lw=1.5, label="all sources", **style)
    axes[0].set(xscale="log", yscale="log", xlabel="budget C (FLOPs)", ylabel="validation loss (nats/token)",
                title="lowest final loss at each budget, per source")
    axes[1].set(xscale="log", yscale="log", xlabel="tokens D",
                title=f"the largest run (N = {big['N']:,.0f}) per source")
    for ax in axes:
        _plain_minor(ax)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig
