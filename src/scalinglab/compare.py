"""Two or more studies (or fitted-law files) side by side: their laws with intervals, their loss-vs-compute
frontiers, and the compute multiplier of each against the first.

The frontier of a loss law of N and D is L*(C) = L(N_opt(C), D_opt(C)) along C = 6ND. The compute multiplier
of study B against A at a budget C is how many times C study B needs to reach the loss A's frontier reaches
at C: m(C) = C_B(L*_A(C)) / C, so m > 1 when B's data (say noisier text) make each FLOP worth less. Its
interval pairs bootstrap draw k of A with draw k of B (the two bootstraps are independent) and takes the
percentiles of m over the pairs; a draw whose B frontier never reaches A's loss within SEARCH_SPAN x C counts
as an infinite multiplier (the share is reported; an upper bound that is infinite is reported as such).
Every number computed outside a study's measured compute range is marked as an extrapolation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .callable import make_callable
from .errors import ScalingLabError
from .fit.core.robust import percentile_interval

LAW = "chinchilla:3"  # the law compared by default: Approach 3, the one that gives a loss at any (N, D)
SEARCH_SPAN = 1e4     # the compute B may need is looked for within [C / SPAN, C * SPAN]
GRID = 801            # log-spaced points of that search (0.0115 decades apart, then interpolated)


@dataclass
class Side:
    """One compared input: its name, fit and (for a study) its finished grid runs."""

    name: str
    source: str
    fit: object
    runs: pd.DataFrame | None = None  # N, D, loss, C6 (= 6ND) of the grid runs
    data: str | None = None
    tokenizer: str | None = None
    c_range: tuple[float, float] | None = None  # the compute (6ND) the fit's runs span
    notes: list[str] = field(default_factory=list)


def load_side(path: str | Path, law: str = LAW) -> Side:
    """A study directory (its saved fit of ``law``) or a fit file (``law`` selects within a fits file)."""
    from .fit.fitfile import load_fit
    from .published import LAWS, published_law
    if str(path) in LAWS and not Path(path).exists():  # a published law as printed: no runs, no intervals
        law_ = published_law(str(path))
        if law_.kind != "chinchilla":
            raise ScalingLabError(f"{path}: compare needs a loss law E + A/N^alpha + B/D^beta; of the "
                                  "published laws chinchilla, chinchilla-unrounded and epoch are",
                                  params=("law",))
        from .fit.chinchilla.result import FitResult
        fit = FitResult(params=dict(law_.params), objective=float("nan"), n_runs=0, converged=True,
                        settings={"cite": law_.citation, "n_params_kind": law_.n_params_kind})
        return Side(str(path), f"published: {law_.citation}", fit,
                    notes=["a published law: no runs, no intervals"])
    path = Path(path)
    if path.is_dir():
        from .notebook import open_study
        study = open_study(path)
        if law not in study.fits:
            raise ScalingLabError(f"{path}: no {law} fit saved (it has: {', '.join(study.fits) or 'none'}); "
                                  "choose another `law`", params=("law",))
        cfg = study.meta.get("study_config") or {}
        runs = study.finals.copy()
        runs["C6"] = 6.0 * runs["N"] * runs["D"]
        fit = study.fits[law]
        return Side(study.name if study.name != "study" else path.name, str(path), fit, runs,
                    cfg.get("data"), cfg.get("tokenizer"), (float(runs["C6"].min()), float(runs["C6"].max())))
    if not path.is_file():
        raise ScalingLabError(f"{path}: no such study directory or fit file")
    try:
        fit = load_fit(path, select=law if law != LAW else None)
    except ScalingLabError as exc:  # load_fit names its own `select`; here it is `law`
        raise ScalingLabError(str(exc).replace("`select`", "`law`"), params=("law",)) from None
    rng = (fit.diagnostics.get("data_range") or fit.settings.get("data_range") or {}).get("C")
    return Side(path.stem, str(path), fit, None, None, None, tuple(rng) if rng else None)


def draw_params(fit, k: int | None = None) -> dict:
    """The fit's parameters (k None) or its bootstrap draws as (K, 1) columns."""
    if k is None:
        return dict(fit.params)
    return {name: col[:k, None] for name, col in fit.draw_columns().items()}


def frontier(fit, C, P=None) -> np.ndarray:
    """L*(C): the law at its compute-optimal N and D (P: parameter columns for draws)."""
    P = dict(fit.params) if P is None else P
    with np.errstate(all="ignore"):
        n, d = fit._allocate(np.asarray(C, dtype=float), P)
        return np.asarray(fit._law_fn({"N": n, "D": d}, P), dtype=float)


def compute_to_reach(fit, loss, around: float, P=None) -> np.ndarray:
    """The compute (6ND) at which the fit's frontier reaches ``loss`` (one value, or one per draw row of
    P): inf where it stays above it up to around x SEARCH_SPAN, and 0 where it is below already at
    around / SEARCH_SPAN."""
    grid = around * np.logspace(-math.log10(SEARCH_SPAN), math.log10(SEARCH_SPAN), GRID)
    curves = np.atleast_2d(frontier(fit, grid[None, :], P))  # (K or 1, GRID), decreasing in C
    target = np.broadcast_to(np.atleast_1d(np.asarray(loss, dtype=float)), (curves.shape[0],))
    out = np.empty(curves.shape[0])
    for i, (curve, want) in enumerate(zip(curves, target)):
        ok = np.isfinite(curve)
        if not ok.any() or not np.isfinite(want):
            out[i] = np.nan
        elif want < curve[ok].min():
            out[i] = np.inf
        elif want > curve[ok].max():
            out[i] = 0.0
        else:  # the frontier is decreasing: interpolate log C against the loss, ascending
            out[i] = np.exp(np.interp(want, curve[ok][::-1], np.log(grid[ok][::-1])))
    return out


def multiplier(ref: Side, other: Side, C: float) -> dict:
    """m(C) = C_other(L*_ref(C)) / C with its paired-bootstrap interval and extrapolation marks."""
    loss = float(frontier(ref.fit, C))
    need = float(compute_to_reach(other.fit, loss, C)[0])
    row = {"C": C, "loss_ref": loss, "C_other": need if math.isfinite(need) else None,
           "multiplier": need / C if math.isfinite(need) else None}
    if not math.isfinite(need):
        row["unreachable"] = (f"{other.name}'s frontier does not reach {loss:.4f} within {SEARCH_SPAN:g}x "
                              f"the compute (its E = {other.fit.params.get('E', float('nan')):.4f})")
    marks = []
    if ref.c_range and not ref.c_range[0] / 1.01 <= C <= ref.c_range[1] * 1.01:
        marks.append(f"C = {C:.3g} is outside {ref.name}'s runs ({ref.c_range[0]:.3g}-{ref.c_range[1]:.3g})")
    inside = other.c_range and other.c_range[0] / 1.01 <= need <= other.c_range[1] * 1.01
    if other.c_range and math.isfinite(need) and not inside:
        marks.append(f"{other.name} reaches that loss at {need:.3g}, outside its runs "
                     f"({other.c_range[0]:.3g}-{other.c_range[1]:.3g})")
    row["extrapolated"] = marks
    row |= measured_multiplier(ref, other, C)
    if ref.c_range is None or other.c_range is None:
        row["range_unknown"] = "a fit file without its runs' compute range: extrapolation unknown"
    k = min(n_draws(ref.fit), n_draws(other.fit))
    if k >= 20:
        losses = frontier(ref.fit, np.full((k, 1), C), draw_params(ref.fit, k))[:, 0]
        needs = compute_to_reach(other.fit, losses, C, draw_params(other.fit, k))
        m = needs[np.isfinite(losses)] / C
        m = m[~np.isnan(m)]
        level = min(ref.fit.level, other.fit.level)
        lo, hi = percentile_interval(m, level) if len(m) else (np.nan, np.nan)
        row["ci"] = [float(lo) if math.isfinite(lo) else None, float(hi) if math.isfinite(hi) else None]
        row["level"], row["draws"] = level, int(len(m))
        row["unreachable_share"] = float(np.mean(np.isinf(m))) if len(m) else None
    return row


def reference_budgets(ref: Side) -> list[float]:
    """The reference study's budgets in the law's convention: each the geometric mean of 6ND over its runs
    (a study counts exact FLOPs, attention and embeddings included, so its 4e12 is ~3e12 as 6ND)."""
    if ref.runs is not None and "budget" in ref.runs and len(ref.runs):
        return sorted(float(np.exp(np.log(g["C6"]).mean())) for _, g in ref.runs.groupby("budget"))
    if ref.c_range:
        return [ref.c_range[1]]
    raise ScalingLabError(f"{ref.source}: no budgets known (a fit file without its runs' range); name the "
                          "budgets to compare at")


def measured_minima(side: Side) -> pd.DataFrame | None:
    """The lowest measured final loss at each budget of a study (C as reference_budgets puts it)."""
    if side.runs is None or "budget" not in side.runs or not len(side.runs):
        return None
    rows = [(float(np.exp(np.log(g["C6"]).mean())), float(g["loss"].min()))
            for _, g in side.runs.groupby("budget")]
    return pd.DataFrame(rows, columns=["C", "loss"]).sort_values("C").reset_index(drop=True)


def measured_multiplier(ref: Side, other: Side, C: float) -> dict:
    """The multiplier without any law: the reference's lowest measured loss at its budget nearest C, and
    the compute at which the other study's lowest measured losses (per budget, log C interpolated) reach
    it; None outside the other's measured budgets. Coarse: the grids' sizes are ~1.6x apart."""
    a, b = measured_minima(ref), measured_minima(other)
    if a is None or b is None or len(b) < 2:
        return {"measured": None, "measured_note": "needs two studies' runs"}
    at = a.iloc[int(np.argmin(np.abs(np.log(a["C"] / C))))]
    if abs(math.log(at["C"] / C)) > 0.05:
        return {"measured": None, "measured_note": "no reference budget here"}
    losses, logc = b["loss"].to_numpy(), np.log(b["C"].to_numpy())
    if not np.all(np.diff(losses) < 0):
        return {"measured": None, "measured_note": f"{other.name}'s lowest losses do not fall with compute"}
    if not losses[-1] <= at["loss"] <= losses[0]:
        return {"measured": None,
                "measured_note": f"{at['loss']:.4f} is outside the losses {other.name} measured"}
    need = float(np.exp(np.interp(at["loss"], losses[::-1], logc[::-1])))
    return {"measured": need / at["C"], "measured_note": "lowest measured loss per budget, no law"}


def n_draws(fit) -> int:
    return 0 if fit.draws is None else len(fit.draws)


def _exponents(fit) -> dict:
    """a and b of N_opt ~ C^a, D_opt ~ C^b (the law's: beta/(alpha+beta), alpha/(alpha+beta))."""
    p = fit.params
    if {"alpha", "beta"} <= set(p):
        return {"a": p["beta"] / (p["alpha"] + p["beta"]), "b": p["alpha"] / (p["alpha"] + p["beta"])}
    return {}


def comparability(sides: list[Side]) -> list[str]:
    """Why the losses of these inputs might not measure the same thing: one line each."""
    from .data.corpus import is_embedded
    out = []
    toks = {s.tokenizer for s in sides if s.tokenizer}
    if len(toks) > 1:
        out.append(f"the inputs use different tokenizers ({', '.join(sorted(toks))}): their losses are per "
                   "token of different vocabularies, so the frontiers and the multiplier do not compare like "
                   "with like")
    vocabs = {s.fit.settings.get("vocab_size") for s in sides} - {None}
    if len(vocabs) > 1 and len(toks) <= 1:  # issue 30 R17: a fit file's vocabulary against a study's
        sizes = ", ".join(map(str, sorted(vocabs)))
        out.append(f"the inputs' fits were made at different vocabularies ({sizes}): their losses are per "
                   "token of different vocabularies, so the frontiers and the multiplier do not compare like "
                   "with like")
    datas = {s.data for s in sides if s.data}
    if len(datas) > 1 and not all(is_embedded(d) for d in datas):
        out.append(f"the inputs train on different data ({', '.join(sorted(datas))}) and so validate on "
                   "different text: a gap mixes the training data's quality with the test set's difficulty")
    return out


def compare(paths: list[str | Path], law: str = LAW, budgets: list[float] | None = None
            ) -> tuple[dict, list[Side]]:
    """The comparison as a JSON-able dict (first input = the reference), and the inputs read."""
    if len(paths) < 2:
        raise ScalingLabError("compare needs at least two studies or fit files")
    sides = [load_side(p, law) for p in paths]
    names = [s.name for s in sides]
    for s in sides:  # two studies of one preset share a name: tell them apart by their paths
        if names.count(s.name) > 1:
            s.name = s.source
    for s in sides:
        if not {"alpha", "beta"} <= set(s.fit.params) or "optimal" not in s.fit.answers \
                or "loss" not in s.fit.answers:
            raise ScalingLabError(f"{s.source}: {s.fit.label} has no loss frontier (compare needs a loss law "
                                  "of N and D, e.g. chinchilla:3)")
    ref = sides[0]
    if budgets is None:
        budgets = reference_budgets(ref)
    warnings = comparability(sides)
    for s in sides:
        if not s.fit.converged:
            warnings.append(f"{s.name}: the {s.fit.label} fit did not converge; its frontier and every "
                            "multiplier against it are not to be trusted")
        warnings.extend(f"{s.name}: {w}" for w in s.fit.warnings)
    out = {"law": law, "reference": ref.name, "flops": "C = 6ND (the law's convention)",
           "inputs": [_describe(s, budgets) for s in sides], "warnings": warnings, "multipliers": []}
    for other in sides[1:]:
        rows = [multiplier(ref, other, C) for C in budgets]
        out["multipliers"].append({"of": other.name, "against": ref.name, "at": rows})
    return out, sides


def _describe(s: Side, budgets) -> dict:
    d = {"name": s.name, "source": s.source, "data": s.data, "tokenizer": s.tokenizer,
         "converged": bool(s.fit.converged), "n_runs": int(s.fit.n_runs),
         "params": {k: float(v) for k, v in s.fit.params.items()},
         "ci": {k: [float(v[0]), float(v[1])] for k, v in (s.fit.ci or {}).items()},
         "exponents": _exponents(s.fit), "compute_range": list(s.c_range) if s.c_range else None,
         "frontier": {f"{C:.6g}": float(frontier(s.fit, C)) for C in budgets}}
    return d


# -- presentation -----------------------------------------------------------------------------------------
def text(result: dict) -> str:
    """The comparison as the terminal prints it."""
    ins = result["inputs"]

    def cell(i, k):
        v, ci = i["params"].get(k), i["ci"].get(k)
        return "-" if v is None else f"{v:.4g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
    rows = [(k, [cell(i, k) for i in ins]) for k in ("E", "A", "B", "alpha", "beta")]
    rows.append(("a (N_opt~C^a)", [f"{i['exponents'].get('a', float('nan')):.3f}" for i in ins]))
    rows.append(("converged", ["yes" if i["converged"] else "NO" for i in ins]))
    rows += [(f"L*({float(C):.3g})", [f"{i['frontier'][C]:.4f}" for i in ins]) for C in ins[0]["frontier"]]
    # every column as wide as its widest cell, two spaces between: no cell runs into the next
    widths = [max(len(i["name"]), *(len(r[1][j]) for r in rows)) + 2 for j, i in enumerate(ins)]
    head = max(len(r[0]) for r in rows) + 2
    lines = [f"compare ({result['law']}, compute as {result['flops']}); reference: {result['reference']}",
             "".ljust(head) + "".join(i["name"].ljust(w) for i, w in zip(ins, widths)).rstrip()]
    lines += [name.ljust(head) + "".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
              for name, cells in rows]
    for m in result["multipliers"]:
        lines.append(f"compute multiplier of {m['of']} against {m['against']} (x the compute to reach the "
                     "same loss):")
        for row in m["at"]:
            lines.append(f"  at C = {row['C']:.3g} (L* {row['loss_ref']:.4f}): " + _mult_text(row))
    lines += [f"warning: {w}" for w in result["warnings"]]
    return "\n".join(lines)


def _mult_text(row: dict) -> str:
    v = "unreachable" if row["multiplier"] is None else f"{row['multiplier']:.3f}"
    if "ci" in row:
        lo, hi = row["ci"]
        never = f", {100 * row['unreachable_share']:.0f}% never reach it" if row["unreachable_share"] else ""
        v += f"  [{'-' if lo is None else f'{lo:.3f}'}, {'inf' if hi is None else f'{hi:.3f}'}] " \
             f"({100 * row['level']:g}%, {row['draws']} paired draws{never})"
    if row.get("measured") is not None:
        v += f"  measured {row['measured']:.2f} (no law)"
    if row.get("unreachable"):
        v += f"  ({row['unreachable']})"
    if row["extrapolated"]:
        v += "  EXTRAPOLATED: " + "; ".join(row["extrapolated"])
    if row.get("range_unknown"):
        v += f"  ({row['range_unknown']})"
    return v


def command(paths: Sequence[str | Path], law: str | None = None, budgets: Sequence[float] | None = None
            ) -> dict:
    """``scalinglab.compare([A, B, ...])``: `scalinglab compare A B ... --json` as a function: each study's
    (or fit file's, or published law's) law side by side and the compute multiplier of each against the
    first at the budgets, with intervals."""
    result, _ = compare(list(paths), law=law or LAW, budgets=sorted(budgets) if budgets else None)
    return result


__command__ = command
make_callable(__name__)  # scalinglab.compare(...) is `command` (callable.py)
