"""report.html: one self-contained page (figures embedded as PNG data URIs) plus each figure as a PNG file.

Sections follow the study: curves, IsoFLOP valleys, allocation by approach, held-out check, residuals,
tokens-per-parameter fan, then tables. A figure without data becomes a one-line reason, not an empty plot.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_text
from ..errors import ScalingLabError
from ..fit.result import FitResult
from ..published import LAWS as PUBLISHED
from . import plots


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plots.plt.close(fig)
    return buf.getvalue()


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="t", float_format=lambda x: f"{x:.5g}")


def _fmt_ci(value, ci) -> str:
    return f"{value:.5g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")


def study_inputs(study_dir: Path) -> dict:
    """What a report needs from a finished study directory."""
    from ..store import SQLiteStore
    summary_path = study_dir / "summary.json"
    if not (study_dir / "study.sqlite").exists():
        raise ScalingLabError(f"{study_dir} is not a study directory (no study.sqlite)")
    if not summary_path.exists():
        raise ScalingLabError(f"{study_dir}: the study has not finished; re-run `scalinglab run` to complete it")
    store = SQLiteStore.open(study_dir / "study.sqlite")
    summary = json.loads(summary_path.read_text())
    fit = FitResult.load(study_dir / "fit.json") if (study_dir / "fit.json").exists() else None
    return {"title": f"scalinglab study {summary.get('study', '')} ({summary.get('study_id', '')})",
            "curves": store.curve_table(), "runs": store.runs(), "fit3": fit, "holdout": summary.get("holdout")}


def build(inputs: dict, out_dir: Path, *, bootstrap: int = 200) -> Path:
    """Write report.html and one PNG per figure into out_dir; returns the page's path."""
    from ..fit.approaches import approach1, approach2, isoflop_minima
    out_dir.mkdir(parents=True, exist_ok=True)
    from ..fit.curves import prepare
    fit3 = inputs.get("fit3")
    table = inputs["curves"] if inputs.get("curves") is not None else inputs["finals"]
    finals, curves, _ = prepare(table)  # canonical columns; curves None without run_id/step
    finals = finals.assign(C=finals["C"] if "C" in finals else 6 * finals["N"] * finals["D"])
    sections, fits, results = [], [], {}
    for name, fn in (("Approach 1", lambda: approach1(curves, bootstrap=bootstrap)),
                     ("Approach 2", lambda: approach2(finals, bootstrap=bootstrap))):
        try:
            results[name] = fn()
        except ScalingLabError as exc:
            results[name] = str(exc)
    if fit3 is not None:
        fits.append(("Approach 3", fit3.optimal, _band3(fit3)))
    for name in ("Approach 1", "Approach 2"):
        if not isinstance(results[name], str):
            fits.append((name, results[name].optimal, _band_power(results[name])))
    c_lo = float(finals["C"].min())
    c_hi = float(max(finals["C"].max(), (inputs.get("holdout") or {}).get("flops_budget", 0))) * 16
    try:
        minima, _ = isoflop_minima(finals)
    except ScalingLabError:
        minima = None
    figures = [
        ("curves", "Learning curves", lambda: plots.learning_curves(curves)),
        ("isoflop", "IsoFLOP valleys", lambda: plots.isoflop_valleys(finals, minima)),
        ("allocation", "Compute-optimal N and D by approach",
         lambda: plots.allocation(fits, {"Chinchilla": PUBLISHED["chinchilla"].params}, (c_lo, c_hi))),
        ("contours", "Fitted loss over compute and size", lambda: plots.loss_contours(fit3, (c_lo, c_hi))),
        ("embeddings", "Loss vs N with and without embeddings", lambda: plots.loss_vs_n_embeddings(finals)),
        ("bcrit", "Critical batch size", lambda: plots.critical_batch(curves, _bcrit(curves))),
        ("holdout", "The held-out check", lambda: plots.holdout(inputs.get("holdout"))),
        ("residuals", "Residuals of Approach 3", lambda: _need(fit3, "no Approach 3 fit") and
         plots.residuals(finals, fit3.predict, "Approach 3: fit / measured - 1 per run")),
        ("fan", "Tokens per parameter at the optimum",
         lambda: plots.tokens_per_param_fan(fit3.bootstrap.draws if fit3 and fit3.bootstrap else None, (c_lo, c_hi))),
    ]
    for key, title, make in figures:
        try:
            png = _png(make())
        except plots.MissingData as exc:
            sections.append((title, f"<p class='missing'>Not drawn: {html.escape(str(exc))}</p>"))
            continue
        (out_dir / f"{key}.png").write_bytes(png)
        sections.append((title, f"<img alt='{html.escape(title)}' src='data:image/png;base64,"
                                f"{base64.b64encode(png).decode()}'>"))
    sections.append(("Fitted laws", _params_table(fit3, results)))
    if fit3 is not None:
        sections.append(("Compute-optimal allocation (like Hoffmann 2022 Table 3)", _ladder(fit3, c_hi)))
    sections.append(("Runs", _runs_table(inputs.get("runs"), finals)))
    page = _page(inputs.get("title", "scalinglab report"), sections)
    return write_text(out_dir / "report.html", page)


def _bcrit(curves):
    from ..fit.kaplan import fit_bcrit
    try:
        return fit_bcrit(curves) if curves is not None else None
    except ScalingLabError:
        return None


def _need(value, reason):
    if value is None:
        raise plots.MissingData(reason)
    return True


def _band3(fit3: FitResult):
    if fit3.bootstrap is None:
        return None
    from ..fit.laws import chinchilla_optimal
    E, A, B, alpha, beta = (fit3.bootstrap.draws[:, i][:, None] for i in range(5))

    def band(C, key):
        with np.errstate(all="ignore"):
            n, d = chinchilla_optimal(C[None, :], A=A, B=B, alpha=alpha, beta=beta)
        return tuple(np.nanpercentile(n if key == "N" else d, [2.5, 97.5], axis=0))
    return band


def _band_power(fit):
    ci = fit.ci
    if not {"a", "b"} <= set(ci):
        return None

    def band(C, key):  # the exponent's interval, pivoting about the data's geometric middle
        exp, k = ("a", "k_N") if key == "N" else ("b", "k_D")
        pivot = math.sqrt(C[0] * C[-1] / 16)
        lo, hi = (fit.params[k] * pivot ** fit.params[exp] * (C / pivot) ** e for e in ci[exp])
        return np.minimum(lo, hi), np.maximum(lo, hi)
    return band


def _params_table(fit3, results) -> str:
    rows = []
    if fit3 is not None:
        for k, v in dict(fit3.params, a=fit3.a, b=fit3.b).items():
            rows.append({"law": "Chinchilla Approach 3", "parameter": k, "value [95% CI]": _fmt_ci(v, fit3.ci.get(k))})
    for name, fit in results.items():
        if isinstance(fit, str):
            rows.append({"law": f"Chinchilla {name}", "parameter": "-", "value [95% CI]": f"not fitted: {fit}"})
            continue
        for k, v in fit.params.items():
            rows.append({"law": f"Chinchilla {name}", "parameter": k, "value [95% CI]": _fmt_ci(v, fit.ci.get(k))})
        for w in fit.warnings:
            rows.append({"law": f"Chinchilla {name}", "parameter": "warning", "value [95% CI]": w})
    return _table(pd.DataFrame(rows)) if rows else "<p class='missing'>No fits.</p>"


def _ladder(fit3: FitResult, c_hi: float) -> str:
    from ..plan.grid import nearest_shape  # the study's own model family
    rows = []
    for C in np.geomspace(c_hi / 256, c_hi * 16, 7):
        n, d = (float(x) for x in fit3.optimal(C))
        shape = nearest_shape(n, 256, 128)
        rows.append({"FLOPs": f"{C:.3g}", "N_opt": f"{n:.4g}", "D_opt": f"{d:.4g}", "tokens/param": f"{d / n:.3g}",
                     "loss": f"{float(fit3.predict(n, d)):.4f}",
                     "shape (layers x width)": f"{shape.n_layer} x {shape.d_model}"})
    return _table(pd.DataFrame(rows))


def _runs_table(runs, finals) -> str:
    if runs is not None and len(runs):
        cols = [c for c in ("run_id", "role", "status", "budget", "n_layer", "d_model", "n_params_nonembed",
                            "n_params_total", "n_tokens", "flops", "val_loss", "lr", "steps", "wall_time_s")
                if c in runs]
        return _table(runs[cols].sort_values(["role", "budget", "n_params_total"], na_position="last"))
    return _table(finals)


CSS = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
img{max-width:100%}table.t{border-collapse:collapse;font-size:.85em}table.t td,table.t th{padding:2px 8px;
border-bottom:1px solid #eee;text-align:right}.missing{color:#a33}"""


def _page(title: str, sections) -> str:
    body = "\n".join(f"<section><h2>{html.escape(t)}</h2>\n{content}</section>" for t, content in sections)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")
