"""A study's summary (studydir.StudySummary) as the text `run` and `report` print: the fit, the
allocations, the held-out check."""
from __future__ import annotations

from ..studydir import StudySummary


def render(summary: StudySummary) -> str:
    if summary.kind == "batch-sweep":
        return render_sweep(summary)
    fit, h, raw = summary.fit, summary.holdout, summary.raw
    p, ci = fit["params"], fit.get("ci", {})
    lines = [f"study {summary.study} ({summary.study_id}): {summary.n_runs} runs fitted, "
             f"Chinchilla Approach 3 (converged: {fit['converged']})"]
    for k in ("E", "A", "B", "alpha", "beta", "a", "b"):
        v = p.get(k, fit.get(k))
        lo_hi = ci.get(k)
        lines.append(f"  {k:<6}{v:>12.5g}" + (f"  [{lo_hi[0]:.4g}, {lo_hi[1]:.4g}]" if lo_hi else ""))
    law = summary.law
    if law:
        from ..fit.backtest import render_table
        lines.append(f"law that predicts: the {law.form} form ({law.why}); converged: {law.converged}")
        lines.append(render_table(list(law.backtest), law.form))
        lines += [f"  not identified: {note}" for note in law.not_identified]
        if not law.converged:
            why = "; ".join(law.warnings or ["no reason given"])
            lines.append(f"  WARNING: the law that predicts did not converge ({why}): its held-out "
                         "prediction and allocations are not to be trusted")
    if raw.get("flop_convention"):
        lines.append(raw["flop_convention"])
    lines.append("compute-optimal run of the model family at the next budgets (the law above, extrapolated; "
                 "loss with the interval for one run: bootstrap, run noise and the form's backtest error):")
    for a in summary.allocations:
        iv, x = a.loss_interval(), a.extrapolation if a.extrapolation is not None else a.flops
        lines.append(f"  C {a.flops:9.3g} ({x:g}x the largest budget)  N_opt {a.n_params:9.3g}  "
                     f"D_opt {a.n_tokens:9.3g}  loss {a.loss:.4f}"
                     + (f" [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else ""))
    noise = raw.get("run_noise")
    if noise:
        lines.append(f"run-to-run noise: {100 * noise['sd_rel']:.2f}% (sd of log loss over "
                     f"{noise['n_seeds']} seeds "
                     f"at N {noise['n_params']:,}, D {noise['n_tokens']:,})")
    iv = h.interval
    lines.append(f"held-out run at {h.flops_budget:.3g} FLOPs (N {h.n_params:,}, D {h.n_tokens:,}): "
                 f"predicted {h.predicted:.4f}" + (f" [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else "")
                 + f", measured {h.measured:.4f}, error {100 * h.rel_error:+.2f}%"
                 + (" (inside the interval)" if h.inside_interval else " (outside the interval)")
                 + ("" if summary.law_converged else
                    "; the law did NOT converge: this prediction is no test of a law"))
    if h.interval_kind:
        lines.append(f"  interval: {h.interval_kind}")
    for form, v in h.candidates.items():
        lines.append(f"  {form:<12} predicts {v:.4f}: error {100 * (v / h.measured - 1):+.2f}%"
                     + ("  <- the law that predicts" if law and form == law.form else ""))
    return "\n".join(lines)


def render_sweep(summary: StudySummary) -> str:
    lines = [f"batch sweep {summary.study} ({summary.study_id}): {summary.n_runs} runs; "
             f"B_crit(L) = B_star / L^(1/alpha_B), tokens"]
    for name, fit in summary.bcrit.items():
        if "error" in fit:
            lines.append(f"  from {name}: not fitted: {fit['error']}")
            continue
        p, ci = fit["params"], fit.get("ci", {})
        span = lambda k, ci=ci: f" [{ci[k][0]:.4g}, {ci[k][1]:.4g}]" if k in ci else ""
        lines.append(f"  from {name:<12} B_star {p['B_star']:.4g}{span('B_star')}  alpha_B {p['alpha_B']:.4g}"
                     f"{span('alpha_B')}  ({fit['n_points']} points)")
    return "\n".join(lines)
