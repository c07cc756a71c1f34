"""A law's parameter table and a study's allocation table as Markdown or LaTeX, for a paper or a notebook
(`fit --format md|tex`, `report --format md|tex`). Numbers to 4 significant digits, intervals beside them;
LaTeX in booktabs style (\\toprule, \\midrule, \\bottomrule), numbers in math mode."""
from __future__ import annotations

from typing import Iterable, Sequence

FORMATS = ("text", "md", "tex")


def _inner(v: float, fmt: str) -> str:
    text = f"{float(v):.4g}"
    if fmt == "tex" and "e" in text:
        mant, exp = text.split("e")
        return f"{mant} \\times 10^{{{int(exp)}}}"
    return text


def _num(v: float, fmt: str) -> str:
    return f"${_inner(v, fmt)}$" if fmt == "tex" else _inner(v, fmt)


def _cell(v, ci, fmt: str) -> str:
    if not ci:
        return _num(v, fmt)
    lo, hi = (_inner(x, fmt) for x in ci)
    if fmt == "tex":
        return f"${_inner(v, fmt)}\\;[{lo},\\ {hi}]$"
    return f"{_inner(v, fmt)} [{lo}, {hi}]"


def table(header: Sequence[str], rows: Iterable[Sequence[str]], fmt: str, caption: str = "") -> str:
    rows = [list(r) for r in rows]
    if fmt == "md":
        lines = ([f"**{caption}**", ""] if caption else []) + ["| " + " | ".join(header) + " |",
                                                                 "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    if fmt == "tex":
        esc = [h.replace("_", "\\_").replace("%", "\\%") for h in header]
        body = [" & ".join(r) + r" \\" for r in rows]
        cols = "l" + "r" * (len(header) - 1)
        return "\n".join([r"\begin{table}[t]", r"\centering", r"\begin{tabular}{" + cols + "}", r"\toprule",
                          " & ".join(esc) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]
                         + ([f"\\caption{{{caption}}}"] if caption else []) + [r"\end{table}"])
    raise ValueError(f"format must be md or tex, not {fmt!r}")


def law_table(fit, fmt: str) -> str:
    """One row per parameter of ``fit`` (any result type): value and, when it has them, the interval."""
    name = {"md": lambda p: f"`{p}`", "tex": lambda p: "$" + {"alpha": r"\alpha", "beta": r"\beta",
                                                                "gamma": r"\gamma"}.get(p, p) + "$"}[fmt]
    level = f"{100 * fit.level:g}% CI" if fit.ci else ""
    rows = [[name(p), _cell(v, fit.ci.get(p), fmt)] for p, v in fit.params.items()]
    verdict = "converged" if fit.converged else "NOT converged"
    caption = f"{fit.label}: {fit.form}; {fit.n_runs} runs, {verdict}" + (f"; {level}" if level else "")
    if fmt == "tex":
        caption = caption.replace("_", "\\_").replace("^", "\\^{}").replace("%", "\\%")
    return table(["parameter", "value" + (f" [{level}]" if level else "")], rows, fmt, caption)


def allocation_table(plans: Sequence, fmt: str, law: str = "") -> str:
    """A study's allocations (studydir Plans): budget, N_opt, D_opt, tokens per parameter, loss [interval]."""
    rows = []
    for p in plans:
        iv = p.loss_interval()
        rows.append([_num(p.flops, fmt), _num(p.n_params, fmt), _num(p.n_tokens, fmt),
                     _num(p.n_tokens / p.n_params, fmt), _cell(p.loss, iv, fmt)])
    caption = "compute-optimal runs of the model family" + (f" under the {law} law" if law else "")
    if fmt == "tex":
        caption = caption.replace("_", "\\_")
    return table(["C (FLOPs)", "N_opt", "D_opt", "D/N", "loss [95% one run]"], rows, fmt, caption)
