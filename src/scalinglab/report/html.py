"""report.html: one self-contained page (figures embedded as PNG data URIs) plus each figure as a PNG file.

Sections follow the study: curves, IsoFLOP valleys, allocation by approach, held-out check, residuals,
tokens-per-parameter fan, then tables. A figure without data becomes a one-line reason, not an empty plot.
"""
from __future__ import annotations

import base64
import html
import io
from multiprocessing import TimeoutError as mp_TimeoutError
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_bytes, write_text
from ..errors import ScalingLabError
from ..fit.core.table import RunTable
from ..fit.every import REPORT_BOOTSTRAP, fit_study_laws
from ..published import LAWS as PUBLISHED
from ..studydir import FITS_FILE, StudyDir, StudySummary
from . import plots


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, pil_kwargs={"compress_level": 1})  # fast: size +8%
    plots.plt.close(fig)
    return buf.getvalue()


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="t", float_format=lambda x: f"{x:.5g}")


def _law_section(law: dict, holdout: dict | None) -> str:
    """The candidate forms' backtest table (mean |log error| in %), each one's held-out prediction."""
    cands = (holdout or {}).get("candidates") or {}
    measured = (holdout or {}).get("measured")
    rows = []
    for r in law["backtest"]:
        row = {"form": r["form"] + (" (chosen)" if r["form"] == law["form"] else ""),
               "parameters": r["n_params"], "in-sample rms %": _pc(r["insample_rms"]),
               "backtest %": _pc(r["score"]), "max %": _pc(r["max_abs_error"]),
               "cut fits converged": f"{r['cuts_converged']}/{r['cuts_fitted']}"}
        if r["form"] in cands and measured:
            v = cands[r["form"]]
            row["held-out prediction"] = f"{v:.4f} ({100 * (v / measured - 1):+.2f}%)"
        rows.append(row)
    cuts = ", ".join(f"{c:.3g}" for c in law.get("cuts", []))
    s = (law.get("error_model") or {}).get("s")
    return (f"<p>The {html.escape(law['form'])} form predicts ({html.escape(law['why'])}). Cuts at {cuts} "
            "FLOPs; its prediction intervals add its backtest error, sd = s (1 + log2 f) at extrapolation "
            f"factor f{f', s = {100 * s:.2f}%' if s else ''}.</p>" + _table(pd.DataFrame(rows)))


def _pc(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def _fmt_ci(value, ci) -> str:
    return f"{value:.5g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")


def study_inputs(study: StudyDir | Path, summary: StudySummary | None = None, *, refit: bool = False,
                 computed: dict | None = None) -> dict:
    """What a report needs from a finished study directory (read through StudyDir): its runs and curves,
    Approach 3 fit, summary and the saved fits of every other law (``refit``, or a study without fits.json:
    fitted first, by fit/every.py, and saved). ``computed``: the fits `run` has just made and written
    (``fit3``, ``fits``), used as they are instead of read back."""
    study = study if isinstance(study, StudyDir) else StudyDir(study)
    summary = study.summary() if summary is None else summary
    computed = computed or {}
    fit = computed.get("fit3") or study.fit3()
    with study.store() as store:
        curves, runs = store.curve_table(), store.runs()
        curve_laws = curve_section(study, store)
    if fit is not None and (refit or not study.has(FITS_FILE)) and summary.kind != "batch-sweep":
        context = {k: v for k, v in fit.settings.items()  # the study's context, as fit.json recorded it
                   if k in ("vocab_size", "n_ctx", "model_family", "noise_sd", "noise_source")}
        fit_study_laws(study.path / FITS_FILE, curves, fit, context=context)  # kept for the next report
    raw = summary.raw
    return {"fits": computed.get("fits") or study.fits(), "curve_laws": curve_laws,
            "title": f"scalinglab study {summary.study} ({summary.study_id})",
            "curves": curves, "runs": runs, "fit3": fit,
            "holdout": summary.holdout.raw if summary.holdout else None,
            "allocations": summary.allocation_rows or None,
            "law": summary.law.raw if summary.law else None,
            "flop_convention": raw.get("flop_convention"), "run_noise": raw.get("run_noise"),
            "final": summary.final, "failed_runs": list(summary.failed_runs)}


def curve_section(study: StudyDir, store) -> dict | None:
    """The whole-curve law's figures' data: STUDY/curvefits.json (written by the study) with the runs'
    curves, and the largest model's other schedules (cosine, WSD, constant, linear decay) at its longest
    run's length and peak LR."""
    from ..fit.curvelaws import curves_of_runs
    from ..plan.schedules import per_step
    saved = study.curve_fits()
    if saved is None:
        return None
    fits, estimates = saved
    runs = curves_of_runs(store.training_curves())
    largest = max(fits, key=lambda f: float(f.approach.split("=", 1)[1]))
    n = float(largest.approach.split("=", 1)[1])
    mine = [c for m, c in runs.values() if m == n]
    alternatives = None
    if mine:
        longest = max(mine, key=lambda c: len(c.lr))
        steps, peak = len(longest.lr), float(longest.lr.max())
        warm = int(np.argmax(longest.lr))
        cut = steps - round(0.2 * steps)
        alternatives = {spec: per_step(spec, steps, peak=peak, warmup=warm + 1)
                        for spec in ("cosine:min=0.1", "wsd:cooldown=0.2,min=0", "constant")}
        alternatives[f"linear decay from {cut}"] = per_step(
            f"piecewise:0={1 / (warm + 1)},{warm}=1,{cut}=1,{steps}=0", steps, peak=peak)
    return {"fits": fits, "runs": runs, "estimates": estimates,
            "largest": largest, "alternatives": alternatives}


def build(inputs: dict, out_dir: Path, *, bootstrap: int = REPORT_BOOTSTRAP) -> Path:
    """Write report.html and one PNG per figure into out_dir; returns the page's path.

    The page draws what was fitted (fit/every.py): ``inputs["fits"]`` (fits, skipped) of every law the data
    allow, with ``bootstrap`` resamples each, and Approach 3 from ``inputs["fit3"]`` (the study's own).
    """
    from ..fit.chinchilla.approach1_2 import isoflop_minima
    from ..fit.core.curves import prepare
    out_dir.mkdir(parents=True, exist_ok=True)
    fit3 = inputs.get("fit3")
    table = inputs["curves"] if inputs.get("curves") is not None else inputs["finals"]
    finals, curves, _ = prepare(table)  # canonical columns; curves None without run_id/step
    finals = finals.assign(C=finals["C"] if "C" in finals else 6 * finals["N"] * finals["D"])
    flop_axis = plots.FlopAxis(finals)
    six_nd = 6 * finals["N"] * finals["D"]
    c_lo = float(six_nd.min())
    c_hi = float(max(six_nd.max(), (inputs.get("holdout") or {}).get("flops_budget", 0))) * 16
    largest = float(finals["C"].max())  # on the page's axis: beyond it every curve is extrapolated
    try:
        minima, _ = isoflop_minima(finals)
    except ScalingLabError:
        minima = None
    bad3 = fit3 is not None and not fit3.converged
    note3 = "\n(from an Approach 3 fit that did NOT converge: see the banner)" if bad3 else ""
    curve_laws = inputs.get("curve_laws") or {}
    # figures that need none of the fits below: drawn by a forked process on the other core meanwhile
    static = {
        "curves": lambda: plots.learning_curves(curves),
        "isoflop": lambda: plots.isoflop_valleys(finals, minima),
        "contours": lambda: plots.loss_contours(fit3, (c_lo, c_hi), flop_axis, largest, note3),
        "embeddings": lambda: plots.loss_vs_n_embeddings(finals, _frontier(curves)),
        "holdout": lambda: plots.holdout(inputs.get("holdout")),
        "fan": lambda: plots.tokens_per_param_fan(fit3, (c_lo, c_hi), flop_axis, largest, note3),
        "curve_laws": lambda: plots.curve_law_fits(curve_laws),
        "curve_estimates": lambda: plots.curve_estimates(curve_laws.get("estimates")),
        "schedules": lambda: plots.alternative_schedules(curve_laws.get("largest"),
                                                         curve_laws.get("alternatives")),
        "sources": lambda: plots.source_losses(None if inputs.get("curves") is None
                                               else RunTable.of(inputs["curves"]).frame),
    }
    with _FiguresInChild(static) as aside:
        fits, skipped = inputs["fits"]
        fits = ([fit3] if fit3 is not None else []) + list(fits)
        by = {f.key: f for f in fits}
        alloc = [("Approach 3", fit3, True)] if fit3 is not None else []
        alloc += [(f"Approach {a}", by[f"chinchilla:{a}"], False)
                  for a in ("1", "2") if f"chinchilla:{a}" in by]
        drawn = {key: _draw(make) for key, make in {
            "allocation": lambda: plots.allocation(alloc, {"Chinchilla": PUBLISHED["chinchilla"].params},
                                                   (c_lo, c_hi), flop_axis, largest),
            "kaplan_ns": lambda: plots.kaplan_fixed_compute_steps(by.get("kaplan:L(N,S)")),
            "bcrit": lambda: plots.critical_batch(by.get("bcrit:noise scale"), by.get("bcrit:batch sweep")),
            "residuals": lambda: plots.residuals(_residual_panels(fit3, finals, fits)),
        }.items()}
        drawn |= aside.result()
    sections = []
    for key, title in FIGURES:
        kind, value = drawn[key]
        if kind == "missing":
            (out_dir / f"{key}.png").unlink(missing_ok=True)  # not a stale figure from an earlier report
            sections.append((title, f"<p class='missing'>Not drawn: {html.escape(value)}</p>"))
            continue
        write_bytes(out_dir / f"{key}.png", value)
        sections.append((title, f"<img alt='{html.escape(title)}' src='data:image/png;base64,"
                                f"{base64.b64encode(value).decode()}'>"))
    if inputs.get("law"):
        sections.append(("Which law predicts: every candidate form's rolling-origin backtest (fit below a "
                         "compute cut, predict the runs above)", _law_section(inputs["law"],
                                                                               inputs.get("holdout"))))
    sections.append((f"Fitted laws ({bootstrap} bootstrap resamples over runs; 95% intervals)",
                     _params_table(fit3, fits, skipped)))
    if inputs.get("allocations") and all("shape" in a for a in inputs["allocations"]):
        sections.append(("Compute-optimal run of the model family at the next budgets (like Hoffmann 2022 "
                         "Table 3; every row extrapolated)", _family_ladder(inputs)))
    elif fit3 is not None:
        sections.append(("Compute-optimal allocation (like Hoffmann 2022 Table 3)",
                         _ladder(fit3, float(six_nd.max()))))
    sections.append(("Runs (click a column to sort)", _runs_table(inputs.get("runs"), finals)))
    page = html_page(inputs.get("title", "scalinglab report"), sections, _banners(fit3, inputs, flop_axis))
    return write_text(out_dir / "report.html", page)


FIGURES = (  # (file, title) in page order
    ("curves", "Learning curves"), ("isoflop", "IsoFLOP valleys"),
    ("allocation", "Compute-optimal N and D by approach"), ("contours", "Fitted loss over compute and size"),
    ("embeddings", "Loss vs N with and without embeddings"),
    ("kaplan_ns", "Loss at fixed compute and fixed steps, with L(N, S)"), ("bcrit", "Critical batch size"),
    ("holdout", "The held-out check"), ("residuals", "Residuals of each fit"),
    ("fan", "Tokens per parameter at the optimum"),
    ("curve_laws", "Whole-curve law (Multi-Power Law) over the measured curves"),
    ("curve_estimates", "Final loss estimated from the first 30% / 50% of each run"),
    ("schedules", "The largest model under other LR schedules (predicted)"),
    ("sources", "Validation loss per source (fit one with `scalinglab fit STUDY --loss-col SOURCE`)"))


def _draw(make) -> tuple[str, bytes | str]:
    try:
        return "png", png_bytes(make())
    except plots.MissingData as exc:
        return "missing", str(exc)


_CHILD_FIGURES: dict = {}  # what a forked child draws: set before the fork, read in the child


def _child_signals() -> None:
    """The forked child must not inherit the driver's SIGTERM handler (cli/run.py): terminating the pool
    sends SIGTERM, which must end the child quietly, not raise KeyboardInterrupt there."""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _draw_in_child(keys) -> dict:
    return {k: _draw(_CHILD_FIGURES[k]) for k in keys}


class _FiguresInChild:
    """Draw some figures in a forked child process while the caller works; sequential where fork is not
    available or there is one core. The child inherits the closures, so nothing but PNG bytes is pickled."""

    def __init__(self, makers: dict):
        self.makers, self.pool, self.pending = makers, None, None

    def __enter__(self):
        import multiprocessing as mp
        import os
        if (os.cpu_count() or 1) >= 2 and "fork" in mp.get_all_start_methods():
            _CHILD_FIGURES.clear()
            _CHILD_FIGURES.update(self.makers)
            self.pool = mp.get_context("fork").Pool(1, initializer=_child_signals)
            self.pending = self.pool.apply_async(_draw_in_child, (list(self.makers),))
        return self

    def result(self) -> dict:
        if self.pending is not None:
            try:
                return self.pending.get(timeout=300)
            except mp_TimeoutError:  # a child stuck (a lock held by a thread at the fork): draw them here
                pass
        return {k: _draw(m) for k, m in self.makers.items()}

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        _CHILD_FIGURES.clear()
        return False


def _residual_panels(fit3, finals, fits) -> list:
    panels = []
    if fit3 is not None:
        r = fit3.predict(finals["N"].to_numpy(), finals["D"].to_numpy()) / finals["loss"].to_numpy() - 1
        panels.append(("Chinchilla Approach 3: L(N, D)", "training FLOPs C", finals["C"].to_numpy(), r))
    for f in fits:
        if f.key == "chinchilla:3" or getattr(f, "points", None) is None:
            continue
        p = f.points
        xcol = "C" if "C" in p else f.settings["inputs"][0]
        target = "N_opt" if f.law == "chinchilla" else ("B_crit" if f.law == "bcrit" else "loss")
        panels.append((f"{f.label} ({target})", xcol, p[xcol].to_numpy(), f.residuals()))
    return panels


def _frontier(curves: pd.DataFrame | None) -> pd.DataFrame | None:
    """Per size, the lowest loss where it wins the compute envelope (Kaplan Fig. 6 on an IsoFLOP grid)."""
    if curves is None:
        return None
    from ..fit.core.curves import envelope
    try:
        env = envelope(curves, "C", transient=0.1)
    except ScalingLabError:
        return None
    cols = ["N", "N_nonembed"] if "N_nonembed" in env else ["N"]
    return env.groupby(cols, as_index=False)["loss"].min().sort_values("N")


def _banners(fit3, inputs: dict, flop_axis) -> list[str]:
    """What the reader must know before any figure: a headline fit that did not converge; the FLOP axis."""
    out = []
    if fit3 is not None and not fit3.converged:
        out.append("<p class='banner'><b>The Approach 3 fit did not converge</b>: "
                   + html.escape("; ".join(fit3.warnings) or "the optimiser did not agree on a minimum")
                   + ". The allocation, contours, tokens-per-parameter fan, allocation table and the "
                     "held-out prediction below come from it and are not a usable law.</p>")
    if inputs.get("final") is False:
        failed = inputs.get("failed_runs") or []
        out.append("<p class='banner'><b>Provisional</b>: " + html.escape(
            f"{len(failed)} grid run(s) failed "
            f"({'; '.join(f['run_id'] + ': ' + f['reason'] for f in failed)}). The fit and the held-out "
            "prediction use the others; repair them and re-run the study.") + "</p>")
    h = inputs.get("holdout") or {}
    if h and h.get("fit_converged") is False and fit3 is None:
        out.append("<p class='banner'><b>The held-out prediction came from a fit that did not "
                   "converge.</b></p>")
    out.append(f"<p class='note'>FLOP axes on this page: {html.escape(flop_axis.name)}"
               + ("; Approach 3's closed form (C = 6ND) is moved onto it by each size's own C / 6ND."
                  if flop_axis.logn is not None else ".")
               + " Shaded: beyond the largest run (extrapolated).</p>")
    return out


def _params_table(fit3, fits, skipped) -> str:
    rows = []
    for f in ([fit3] if fit3 is not None else []) + [f for f in fits if f.key != "chinchilla:3"]:
        params = dict(f.params, a=f.a, b=f.b) if f.key == "chinchilla:3" else dict(f.params)
        rows.append({"law": f.label, "form": f.form,
                     "parameters [95% CI]": "; ".join(f"{k} = {_fmt_ci(v, f.ci.get(k))}"
                                                      for k, v in params.items()),
                     "runs": f.n_runs, "points": f.n_points,
                     "points are": f.settings.get("points_are", "final runs"),
                     "converged": "yes" if f.converged else "NO",
                     "warnings": " | ".join(f.warnings)})
    for s in skipped:
        if s["law"] == "chinchilla" and s["approach"] == "3":
            continue
        rows.append({"law": f"{s['law']} {s['approach']}", "form": "-",
                     "parameters [95% CI]": "not fitted: " + s["reason"], "runs": "-", "points": "-",
                     "points are": "", "converged": "-", "warnings": ""})
    if not rows:
        return "<p class='missing'>No fits.</p>"
    return _table(pd.DataFrame(rows)).replace("class=\"dataframe t\"", "class=\"dataframe t left\"", 1)


def _family_ladder(inputs: dict) -> str:
    """The study's allocations: each budget spent in exact FLOPs on the family's best shape for the law."""
    rows = []
    for a in inputs["allocations"]:
        iv = (a.get("interval") or {}).get("loss")
        law_iv = f" [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else ""
        one_run = (a.get("prediction_interval") or {}).get("loss")
        rows.append({"FLOPs": f"{a['flops']:.3g}",
                     "x largest budget": f"{a['extrapolation']:g} (extrapolated)",
                     "N_opt": f"{a['n_params']:.4g}", "D_opt": f"{a['n_tokens']:.4g}",
                     "tokens/param": f"{a['tokens_per_param']:.3g}",
                     "loss [law's 95% CI]": f"{a['loss']:.4f}{law_iv}",
                     "one new run [95%]": f"[{one_run[0]:.4f}, {one_run[1]:.4f}]" if one_run else "-",
                     "shape (layers x width)": f"{a['shape']['n_layer']} x {a['shape']['d_model']}"})
    note = html.escape(inputs.get("flop_convention") or "")
    return f"<p>{note}</p>" + _table(pd.DataFrame(rows))


def _ladder(fit3, largest: float) -> str:
    """Compute-optimal N, D and loss from 1/16x to 64x the largest run (C = 6ND), each row's extrapolation
    named."""
    from ..model.family import shape_for_params  # the study's own model family
    vocab, ctx = int(fit3.settings.get("vocab_size", 256)), int(fit3.settings.get("n_ctx", 128))
    rows = []
    for f in (1 / 16, 1 / 4, 1, 4, 16, 64):
        C = largest * f
        n, d = (float(x) for x in fit3.optimal(C))
        shape = shape_for_params(n, vocab_size=vocab, n_ctx=ctx)
        rows.append({"FLOPs (6ND)": f"{C:.3g}",
                     "x largest run": f"{f:g}" + (" (extrapolated)" if f > 1 else ""), "N_opt": f"{n:.4g}",
                     "D_opt": f"{d:.4g}", "tokens/param": f"{d / n:.3g}",
                     "loss": f"{float(fit3.predict(n, d)):.4f}",
                     "shape (layers x width)": f"{shape.n_layer} x {shape.d_model}"})
    return _table(pd.DataFrame(rows))


def _runs_table(runs, finals) -> str:
    if runs is not None and len(runs):
        cols = [c for c in ("run_id", "role", "status", "budget", "n_layer", "d_model", "n_params_nonembed",
                            "n_params_total", "n_tokens", "flops", "val_loss", "lr", "steps", "wall_time_s",
                            "tokens_per_s", "mfu", "processes")
                if c in runs]
        frame = runs[cols].sort_values(["role", "budget", "n_params_total"], na_position="last")
    else:
        frame = finals
    table = _table(frame).replace("class=\"dataframe t\"", "class=\"dataframe t sortable\"", 1)
    return f"<div class='scroll'>{table}</div>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
img{max-width:100%}table.t{border-collapse:collapse;font-size:.85em}table.t td,table.t th{padding:2px 8px;
border-bottom:1px solid #eee;text-align:right}table.left td{text-align:left}.missing{color:#a33}
.banner{background:#fde8e8;border:1px solid #d33;padding:.6em .8em}.note{color:#555}
.scroll{overflow-x:auto}"""


# Click a header to sort the table by that column (numbers as numbers), again to reverse. The page's only
# script: inline, nothing fetched; without scripts the table reads the same, unsorted.
SORT_JS = """document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('thead th').forEach(function(th,i){th.style.cursor='pointer';th.title='sort';
  th.addEventListener('click',function(){var b=t.tBodies[0],r=Array.from(b.rows),d=th.dataset.d==='1'?-1:1;
   th.dataset.d=d===1?'1':'0';r.sort(function(x,y){var p=x.cells[i].textContent,q=y.cells[i].textContent,
   u=parseFloat(p),v=parseFloat(q);return d*((isNaN(u)||isNaN(v))?p.localeCompare(q):u-v);});
   r.forEach(function(row){b.appendChild(row);});});});});"""


def html_page(title: str, sections, banners=()) -> str:
    body = "\n".join(f"<section><h2>{html.escape(t)}</h2>\n{content}</section>" for t, content in sections)
    top = "\n".join(banners)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>\n{top}\n{body}\n"
            f"<script>{SORT_JS}</script></body></html>\n")
