"""The figures of a scaling study, each mirroring a figure of Kaplan et al. 2020 or Hoffmann et al. 2022.

Every function takes plain tables (pandas) and fitted results and returns a matplotlib Figure, or raises
MissingData with a one-line reason when the study lacks what the figure needs (no curves, no sweep):
the report then states the reason instead of drawing an empty figure. No torch here (DESIGN.md §1).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..fit import laws  # noqa: E402


class MissingData(Exception):
    """The study has no data for this figure; the message says what is missing."""


def _size_colours(sizes):
    sizes = np.sort(np.unique(sizes))
    cmap = plt.get_cmap("viridis")
    return {n: cmap(i / max(1, len(sizes) - 1)) for i, n in enumerate(sizes)}


def learning_curves(curves: pd.DataFrame | None) -> plt.Figure:
    """Loss vs tokens and vs FLOPs per model size, with the compute envelope (Kaplan Fig. 1; Hoffmann Fig. 2 left)."""
    if curves is None or curves.empty:
        raise MissingData("no learning curves in this study (a table without run_id and step)")
    from ..fit.curves import envelope
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = _size_colours(curves["N"])
    for rid, g in curves.groupby("run_id"):
        g = g[g["step"] > 0]
        c = colours[g["N"].iloc[0]]
        axes[0].plot(g["D"], g["loss"], color=c, lw=1)
        axes[1].plot(g["C"], g["loss"], color=c, lw=1)
    try:
        env = envelope(curves, "C", transient=0.1)
        axes[1].plot(env["C"], env["loss"], color="crimson", lw=2, label="compute envelope (min over runs)")
        axes[1].legend(fontsize=8)
    except Exception:  # too few runs for an envelope: the curves alone still say something
        pass
    for ax, xlabel in zip(axes, ("tokens D", "training FLOPs C")):
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="held-out loss (nats/token)")
        ax.grid(alpha=0.3, which="both")
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=matplotlib.colors.LogNorm(curves["N"].min(), curves["N"].max()))
    fig.colorbar(sm, ax=axes, label="parameters N")
    fig.suptitle("Learning curves by model size (Kaplan 2020 Fig. 1; Hoffmann 2022 Fig. 2 left)")
    return fig


def isoflop_valleys(finals: pd.DataFrame, minima: pd.DataFrame) -> plt.Figure:
    """Final loss vs N per budget with the fitted parabolas and their minima (Hoffmann 2022 Fig. 3 left)."""
    if "budget" not in finals or finals["budget"].nunique() < 1:
        raise MissingData("no IsoFLOP budgets in this table")
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
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
        ax.scatter(minima["N_opt"], minima["L_opt"], marker="*", s=140, color="black", zorder=5, label="minima")
    ax.set(xscale="log", xlabel="parameters N", ylabel="final held-out loss",
           title="IsoFLOP valleys (Hoffmann 2022 Fig. 3 left)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def allocation(fits: list, published: dict, c_range: tuple[float, float]) -> plt.Figure:
    """N_opt(C) and D_opt(C) for each approach with bootstrap bands, published laws overlaid
    (Hoffmann 2022 Fig. 1 and Fig. A3)."""
    if not fits:
        raise MissingData("no fitted allocation (Approaches 1, 2 or 3) to draw")
    C = np.geomspace(c_range[0], c_range[1], 60)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, optimal, band in fits:
        n, d = optimal(C)
        for ax, y, key in zip(axes, (n, d), ("N", "D")):
            line, = ax.plot(C, y, lw=1.8, label=label)
            if band is not None:
                lo, hi = band(C, key)
                ax.fill_between(C, lo, hi, color=line.get_color(), alpha=0.15)
    for name, law in published.items():
        n, d = laws.chinchilla_optimal(C, A=law["A"], B=law["B"], alpha=law["alpha"], beta=law["beta"])
        axes[0].plot(C, n, ls="--", lw=1, color="grey", label=f"{name} (published)")
        axes[1].plot(C, d, ls="--", lw=1, color="grey")
    for ax, ylabel in zip(axes, ("compute-optimal parameters N_opt", "compute-optimal tokens D_opt")):
        ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.suptitle("Compute-optimal allocation, bands = 95% bootstrap intervals (Hoffmann 2022 Fig. 1, A3)")
    return fig


def holdout(h: dict | None) -> plt.Figure:
    """The held-out check: predicted loss with its interval against the measured loss."""
    if not h:
        raise MissingData("this study has no held-out run")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    lo, hi = h["interval"] if h.get("interval") else (h["predicted"], h["predicted"])
    ax.errorbar([0], [h["predicted"]], yerr=[[h["predicted"] - lo], [hi - h["predicted"]]], fmt="o", capsize=6,
                label="predicted (95% interval)")
    ax.scatter([1], [h["measured"]], color="crimson", zorder=5, label="measured")
    ax.set(xticks=[0, 1], xticklabels=["predicted", "measured"], xlim=(-0.6, 1.6), ylabel="held-out loss",
           title=f"Held-out run at {h['flops_budget']:.3g} FLOPs: error {100 * h['rel_error']:+.2f}%")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def residuals(finals: pd.DataFrame, predict, title: str) -> plt.Figure:
    """Relative residuals (fit / measured - 1) of a fit against compute, per run."""
    pred = predict(finals["N"].to_numpy(), finals["D"].to_numpy())
    r = 100 * (pred / finals["loss"].to_numpy() - 1)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    C = finals["C"] if "C" in finals else 6 * finals["N"] * finals["D"]
    ax.scatter(C, r, c=np.log(finals["N"]), cmap="viridis", s=20)
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xscale="log", xlabel="training FLOPs C", ylabel="fit / measured - 1 (%)", title=title)
    ax.grid(alpha=0.3, which="both")
    return fig


def tokens_per_param_fan(draws: np.ndarray, c_range: tuple[float, float]) -> plt.Figure:
    """Bootstrap fan of the compute-optimal tokens per parameter D_opt/N_opt against compute."""
    if draws is None or len(draws) < 10:
        raise MissingData("no bootstrap draws (fit with --bootstrap K)")
    C = np.geomspace(c_range[0], c_range[1], 50)
    E, A, B, alpha, beta = (draws[:, i][:, None] for i in range(5))
    with np.errstate(all="ignore"):
        n, d = laws.chinchilla_optimal(C[None, :], A=A, B=B, alpha=alpha, beta=beta)
        ratio = d / n
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for q, alpha_band in ((2.5, 0.15), (10, 0.25), (25, 0.35)):
        lo, hi = np.nanpercentile(ratio, [q, 100 - q], axis=0)
        ax.fill_between(C, lo, hi, color="tab:blue", alpha=alpha_band, lw=0)
    ax.plot(C, np.nanmedian(ratio, axis=0), color="tab:blue", lw=1.5, label="median")
    ax.axhline(20, color="grey", ls="--", lw=1, label="20 tokens/param (Chinchilla rule of thumb)")
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="D_opt / N_opt",
           title="Tokens per parameter at the optimum: 50/80/95% bootstrap fan")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig


def loss_contours(fit3, c_range: tuple[float, float]) -> plt.Figure:
    """Contours of the fitted L(N, D) over (C, N) with the efficient frontier N_opt(C) (Hoffmann 2022 Fig. 4)."""
    if fit3 is None:
        raise MissingData("no Approach 3 fit")
    C = np.geomspace(c_range[0], c_range[1], 120)
    n_opt, _ = fit3.optimal(C)
    N = np.geomspace(n_opt.min() / 10, n_opt.max() * 10, 120)
    CC, NN = np.meshgrid(C, N)
    L = fit3.predict(NN, CC / (6 * NN))
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    levels = np.linspace(np.nanmin(L), np.nanpercentile(L, 60), 20)  # resolve the valley, not the far corner
    cs = ax.contourf(CC, NN, L, levels=levels, cmap="viridis_r", extend="max")
    fig.colorbar(cs, ax=ax, label="fitted loss")
    ax.plot(C, n_opt, color="crimson", lw=2, label="efficient frontier N_opt(C)")
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs C (= 6ND)", ylabel="parameters N",
           title="Fitted L(N, D) on IsoFLOP axes (Hoffmann 2022 Fig. 4)")
    ax.legend(fontsize=8)
    return fig


def loss_vs_n_embeddings(finals: pd.DataFrame) -> plt.Figure:
    """Best loss per size against N with and without embedding parameters (Kaplan 2020 Fig. 6)."""
    if "N_nonembed" not in finals:
        raise MissingData("the table has no non-embedding parameter count (n_params_nonembed)")
    best = finals.loc[finals.groupby("N")["loss"].idxmin()]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, col, label in zip(axes, ("N", "N_nonembed"), ("all parameters (Chinchilla's N)",
                                                         "non-embedding parameters (Kaplan's N)")):
        ax.scatter(finals[col], finals["loss"], s=12, color="lightgrey", label="every run")
        ax.plot(best[col], best["loss"], "o-", color="tab:blue", label="best run per size")
        ax.set(xscale="log", yscale="log", xlabel=label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("final held-out loss")
    axes[0].legend(fontsize=7)
    fig.suptitle("Loss vs model size with and without embeddings (Kaplan 2020 Fig. 6)")
    return fig


def critical_batch(curves: pd.DataFrame | None, bcrit) -> plt.Figure:
    """Gradient noise scale estimates against loss with the fitted B_crit(L) (Kaplan 2020 Fig. 10)."""
    if curves is None or "noise_scale" not in curves or not (curves["noise_scale"] > 0).any():
        raise MissingData("no gradient noise scale recorded (learning curves with noise_scale)")
    if bcrit is None:
        raise MissingData("no B_crit law could be fitted to the noise scale")
    ok = curves[curves["noise_scale"] > 0]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.scatter(ok["loss"], ok["noise_scale"], s=10, c=np.log(ok["N"]), cmap="viridis", label="noise scale per eval")
    L = np.geomspace(ok["loss"].min(), ok["loss"].max(), 50)
    ax.plot(L, bcrit.predict(L=L), color="crimson", label=bcrit.form)
    ax.set(xscale="log", yscale="log", xlabel="loss", ylabel="tokens", title="Critical batch size (Kaplan 2020 Fig. 10)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return fig
