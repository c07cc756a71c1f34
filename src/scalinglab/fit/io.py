"""Reading a table of runs from any trainer (CSV or Parquet) into validated canonical columns.

Canonical columns: ``N``, ``D``, ``loss`` and, when present, ``C``, ``run_id``, ``step``, ``budget``.
Every problem a user can cause is raised as ScalingLabError naming the column and row.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ScalingLabError

# Looked up in this order, case-insensitively (DESIGN.md §6). Chinchilla counts all parameters, so a total
# count is preferred over a non-embedding one when a table has both.
ALIASES = {
    "N": ("N", "n_params", "params", "n_params_total", "n_params_nonembed"),
    "D": ("D", "n_tokens", "tokens"),
    "loss": ("loss", "val_loss"),
    "C": ("C", "flops"),
    "run_id": ("run_id",),
    "step": ("step",),
    "budget": ("budget",),
    "weight": ("weight",),
    "N_nonembed": ("N_nonembed", "n_params_nonembed"),  # Kaplan's N, beside Chinchilla's total
    "noise_scale": ("noise_scale", "b_simple"),  # gradient noise scale per eval (tokens); may be empty
    "U": ("U", "unique_tokens"),  # repeated data (Muennighoff et al. 2023): unique tokens of the run's data
    "epochs": ("n_epochs", "epochs"),
}
REQUIRED = ("N", "D", "loss")
POSITIVE = ("N", "D", "loss", "C", "budget", "N_nonembed", "U", "epochs")


def read_table(path: str | Path) -> pd.DataFrame:
    """Load a CSV or Parquet file as it is, with one-line errors for a missing or unreadable file."""
    path = Path(path)
    if not path.exists():
        raise ScalingLabError(f"no such file: {path}")
    if path.is_dir():
        raise ScalingLabError(f"{path} is a directory; give a CSV or Parquet file of runs")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise ScalingLabError(f"{path} is not a readable Parquet file ({type(exc).__name__})") from None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        if b"\x00" in head:
            raise ValueError("binary content")
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScalingLabError(f"{path} is not a readable CSV or Parquet file ({why})") from None
    if table.shape[1] < 2:
        raise ScalingLabError(f"{path} is not a CSV of runs: found {table.shape[1]} column(s), "
                              f"need at least N, D and loss")
    return table


def canonical_columns(table: pd.DataFrame, overrides: dict[str, str] | None = None
                      ) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rename aliases to canonical names; return the new table and {canonical: source column}."""
    overrides = {k: v for k, v in (overrides or {}).items() if v}
    lower = {str(c).lower(): c for c in table.columns}
    chosen: dict[str, str] = {}
    for name, aliases in ALIASES.items():
        if name in overrides:
            if overrides[name] not in table.columns:
                raise ScalingLabError(f"column {overrides[name]!r} (given for {name}) is not in the table; "
                                      f"columns are: {', '.join(map(str, table.columns))}")
            chosen[name] = overrides[name]
            continue
        found = next((lower[a.lower()] for a in aliases if a.lower() in lower), None)
        if found is not None:
            chosen[name] = found
    for name in REQUIRED:
        if name not in chosen:
            raise ScalingLabError(f"missing column for {name}: expected one of {', '.join(ALIASES[name])}; "
                                  f"columns are: {', '.join(map(str, table.columns))}")
    out = pd.DataFrame({name: table[src] for name, src in chosen.items()})
    return out, chosen


def validate_numbers(runs: pd.DataFrame) -> pd.DataFrame:
    """Every numeric canonical column numeric, finite and (where it must be) positive; rows named 1-based."""
    runs = runs.copy()
    if "noise_scale" in runs:  # measured at some evals only: blanks are allowed
        runs["noise_scale"] = pd.to_numeric(runs["noise_scale"], errors="coerce").astype(float)
    for name in ("N", "D", "loss", "C", "step", "budget", "weight", "N_nonembed", "U", "epochs"):
        if name not in runs:
            continue
        raw = runs[name]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype(float))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            what = "missing (NaN)" if pd.isna(raw.iloc[i]) else f"not a finite number ({raw.iloc[i]!r})"
            raise ScalingLabError(f"column {name}, row {i + 1}: value is {what}")
        if name in POSITIVE and (values <= 0).any():
            i = int(np.flatnonzero((values <= 0).to_numpy())[0])
            raise ScalingLabError(f"column {name}, row {i + 1}: value {values.iloc[i]:g} must be positive")
        if name == "weight" and (values < 0).any():
            i = int(np.flatnonzero((values < 0).to_numpy())[0])
            raise ScalingLabError(f"column weight, row {i + 1}: value {values.iloc[i]:g} must not be negative")
        runs[name] = values.astype(float)
    return runs


def final_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: the last step of each curve when the table holds curves (``step`` and ``run_id``)."""
    if "step" in runs and "run_id" in runs:
        return runs.sort_values(["run_id", "step"], kind="stable").groupby("run_id", sort=False).tail(1)
    if "run_id" in runs and runs["run_id"].duplicated().any():
        dup = runs["run_id"][runs["run_id"].duplicated()].iloc[0]
        raise ScalingLabError(f"run_id {dup!r} appears in several rows but there is no step column: "
                              f"add `step` for learning curves or give one row per run")
    return runs


def load_runs(path: str | Path, overrides: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """Read, rename and validate a table of runs; returns (runs, {canonical: source column})."""
    table = read_table(path)
    runs, chosen = canonical_columns(table, overrides)
    if len(runs) == 0:
        raise ScalingLabError(f"{path} has a header but no runs")
    runs = validate_numbers(runs)
    runs.attrs["source_columns"] = dict(chosen)  # so a fit can tell which N (total/non-embedding) it got
    return runs, chosen


def n_params_kind(column: str) -> str:
    """Which parameter count a source column holds, as DESIGN.md §3 names them."""
    col = column.lower()
    if col == "n_params_nonembed":
        return "nonembed"
    if col == "n_params_total":
        return "total"
    return "unspecified"
