"""The compare page (`scalinglab compare --out`): the loss-vs-compute frontiers of each input, the compute
multiplier of each against the first, and the table of compare.py's text, drawn with the report's public
helpers. compare.py computes; this draws."""
from __future__ import annotations

import base64
import html

import numpy as np

from ..compare import Side, draw_params, frontier, n_draws, text
from ..fit.core.robust import percentile_interval
from .html import html_page, png_bytes
from .plots import subplots


def figure(result: dict, sides: list[Side]):
    """Loss-vs-compute frontiers with each study's runs, and the multiplier against the reference."""
    fig, (ax, bx) = subplots(1, 2, figsize=(11, 4.2))
    budgets = [float(c) for c in result["inputs"][0]["frontier"]]
    lo = min([budgets[0]] + [s.c_range[0] for s in sides if s.c_range]) / 2
    hi = max([budgets[-1]] + [s.c_range[1] for s in sides if s.c_range]) * 4
    C = np.geomspace(lo, hi, 120)
    for i, s in enumerate(sides):
        colour = f"C{i}"
        if s.runs is not None:
            ax.scatter(s.runs["C6"], s.runs["loss"], s=12, color=colour, alpha=0.45)
        L = frontier(s.fit, C)
        inside = (C >= s.c_range[0]) & (C <= s.c_range[1]) if s.c_range else np.ones_like(C, bool)
        ax.plot(C[inside], L[inside], color=colour, label=f"{s.name}")
        ax.plot(C, np.where(inside, np.nan, L), color=colour, ls="--", lw=1)
        k = n_draws(s.fit)
        if k >= 20:
            band = frontier(s.fit, np.broadcast_to(C, (k, C.size)), draw_params(s.fit, k))
            ax.fill_between(C, *percentile_interval(band, 0.95), color=colour, alpha=0.12, lw=0)
    ax.set(xscale="log", xlabel="training FLOPs C = 6ND", ylabel="validation loss (nats/token)",
           title="loss-vs-compute frontiers (dashed: beyond the runs)")
    from matplotlib.ticker import NullFormatter
    for a in (ax, bx):
        a.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=8)
    for i, m in enumerate(result["multipliers"], start=1):
        xs = [r["C"] for r in m["at"]]
        ys = [np.nan if r["multiplier"] is None else r["multiplier"] for r in m["at"]]
        bound = lambda r, j, y: r["ci"][j] if r.get("ci") and r["ci"][j] is not None else y
        pairs = list(zip(ys, m["at"]))
        err = np.clip([[y - bound(r, 0, y) for y, r in pairs], [bound(r, 1, y) - y for y, r in pairs]], 0,
                      None)
        bx.errorbar(xs, ys, yerr=err, color=f"C{i}", marker="o", capsize=3,
                    label=f"{m['of']} vs {m['against']} (law; open: extrapolated)")
        far = [(x, y) for x, y, r in zip(xs, ys, m["at"]) if r["extrapolated"]]
        if far:
            bx.scatter(*zip(*far), s=60, facecolor="white", edgecolor=f"C{i}", zorder=3)
        seen = [(x, r["measured"]) for x, r in zip(xs, m["at"]) if r.get("measured") is not None]
        if seen:
            bx.scatter(*zip(*seen), marker="x", s=50, color="black", zorder=4,
                       label="measured (lowest loss per budget, no law)" if i == 1 else None)
    bx.axhline(1.0, color="grey", lw=0.8)
    # a ratio: on a log axis 0.5x and 2x are as far from 1, and one bound of 224x does not flatten the rest
    reached = [r["multiplier"] for m in result["multipliers"] for r in m["at"] if r["multiplier"]]
    bx.set(xscale="log", yscale="log" if reached else "linear", xlabel="reference budget C = 6ND",
           ylabel="compute multiplier", title="compute to reach the reference's loss, x C")
    bx.set_xlim(min(budgets) / 2, max(budgets) * 2)  # the budgets, even where no multiplier is drawn
    if not reached:  # issue 30 R7: all unreachable was a log-scale ValueError and nothing printed
        bx.text(0.5, 0.5, "no multiplier: the other frontier never reaches\nthe reference's loss here",
                transform=bx.transAxes, ha="center", va="center")
    bx.legend(fontsize=8)
    return fig


def page(result: dict, sides: list[Side]) -> str:
    """The HTML page: the table, the figure, the warnings (matplotlib's own, about empty or non-positive
    data on a log axis, are not the user's: the figure simply leaves those points out)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        img = base64.b64encode(png_bytes(figure(result, sides))).decode()
    rows = []
    for line in text(result).splitlines()[1:]:
        if line.startswith("warning:"):
            continue
        rows.append(f"<tr><td><pre>{html.escape(line)}</pre></td></tr>")
    banners = [f"<p class='warn'>warning: {html.escape(w)}</p>" for w in result["warnings"]]
    sections = [("Laws and multipliers", "<table class='t'>" + "".join(rows) + "</table>"),
                ("Frontiers", f"<img src='data:image/png;base64,{img}' alt='frontiers'>")]
    names = ", ".join(i["name"] for i in result["inputs"])
    return html_page(f"scalinglab compare: {names}", sections, banners)
