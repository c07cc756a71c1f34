"""Reading a table of runs from any trainer (CSV or Parquet) into validated canonical columns.

Canonical columns: ``N``, ``D``, ``loss`` and, when present, ``C``, ``run_id``, ``step``, ``budget``.
Every problem a user can cause is raised as ScalingLabError naming the column and row.

What the table means is made explicit, not guessed silently: a validation loss is preferred over a
training loss; W&B history exports (``name``, ``_step``, ``eval/loss``) are learning curves; counts in
thousands/millions/billions (``--n-units M`` or a suffixed column such as ``params_M``) and losses in bits
(``--loss-units bits`` or a ``*_bits`` column) are converted; the columns used, the units and anything
suspicious (a C far from 6ND, counts too small to be parameters) are recorded as ``RunTable.input``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ...errors import ScalingLabError, plain


@dataclass(frozen=True, eq=False)
class RunTable:
    """A table of runs and what it means, typed (not in the frame's attributes): ``frame`` the rows;
    ``source_columns`` which given column became each canonical one (N from ``n_params_total`` or
    ``n_params_nonembed``: what a fit records as its N); ``input`` how a file was read (columns, units,
    notes); ``context`` a study's model context (vocabulary, n_ctx) its fits plan shapes in. Every fitter
    takes a RunTable or a bare DataFrame (``RunTable.of``); the canonical frames are made once per table,
    however many laws read it (``prepared``)."""

    frame: pd.DataFrame
    source_columns: Mapping[str, str] = field(default_factory=dict)
    input: Mapping[str, object] = field(default_factory=dict)
    context: Mapping[str, object] = field(default_factory=dict)
    _prepared: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, table) -> "RunTable":
        if isinstance(table, RunTable):
            return table
        if not isinstance(table, pd.DataFrame):
            raise ScalingLabError(f"expected a pandas DataFrame of runs, got {type(table).__name__}")
        return cls(table)

    def with_frame(self, frame: pd.DataFrame) -> "RunTable":
        """The same meaning over other rows (a subset, a column swapped in)."""
        return replace(self, frame=frame, _prepared={})

    def with_context(self, **context) -> "RunTable":
        return replace(self, context=dict(self.context) | context)

    def canonical(self) -> tuple[pd.DataFrame, dict]:
        """(canonical columns, {canonical: source column}): a column the table already names canonically
        keeps the source it was made from (a store's N is ``n_params_total``)."""
        canon, source = canonical_columns(self.frame)
        return canon, {k: self.source_columns.get(k, v) if v == k else v for k, v in source.items()}

    def __len__(self) -> int:
        return len(self.frame)


# Looked up in this order, case-insensitively (DESIGN.md §6). Chinchilla counts all parameters, so a total
# count is preferred over a non-embedding one when a table has both.
ALIASES = {
    "N": ("N", "n_params", "params", "n_params_total", "n_params_nonembed"),
    "D": ("D", "n_tokens", "tokens"),
    # a held-out loss first: the train loss of a table that has both is not what a scaling law predicts
    "loss": ("val_loss", "eval_loss", "eval/loss", "val/loss", "validation_loss", "valid_loss", "test_loss",
             "loss"),
    "C": ("C", "flops"),
    "run_id": ("run_id", "run", "run_name", "name"),  # W&B history exports name the run "name"
    "step": ("step", "_step", "global_step", "trainer/global_step", "train/global_step"),
    "budget": ("budget",),
    "weight": ("weight",),
    "N_nonembed": ("N_nonembed", "n_params_nonembed"),  # Kaplan's N, beside Chinchilla's total
    "noise_scale": ("noise_scale", "b_simple"),  # gradient noise scale per eval (tokens); may be empty
    "U": ("U", "unique_tokens"),  # repeated data (Muennighoff et al. 2023): unique tokens of the run's data
    "epochs": ("n_epochs", "epochs"),
}
REQUIRED = ("N", "D", "loss")
UNITS = {"": 1.0, "1": 1.0, "k": 1e3, "thousands": 1e3, "m": 1e6, "millions": 1e6, "b": 1e9, "g": 1e9,
         "billions": 1e9, "t": 1e12, "trillions": 1e12}
LOSS_UNITS = ("nats", "bits")
LN2 = 0.6931471805599453
# a count column with its unit in the name: params_M, tokens_B, n_params (millions), N_billions, ...
_SUFFIXED = {"N": r"(?:n|n_params|params|parameters|model_size)", "D": r"(?:d|n_tokens|tokens|data)"}
_UNIT_RE = r"[ _]*[(\[]?(k|m|b|g|t|thousands|millions|billions|trillions)[)\]]?"
_BITS_RE = r"^(?:val_|eval_|eval/|validation_)?(?:loss)?[ _/]?(?:in_)?(?:bits|bpt|bits_per_token)$"
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
    """Rename aliases to canonical names; return the new table and {canonical: source column}.

    A column given in ``overrides`` is used as named; otherwise the first alias found (case-insensitive),
    then, for N and D, a column with its unit in its name (``params_M``; converted by ``load_runs``)."""
    import re
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
        if found is None and name in _SUFFIXED:
            found = next((c for c in table.columns
                          if re.fullmatch(_SUFFIXED[name] + _UNIT_RE, str(c), flags=re.IGNORECASE)), None)
        if found is None and name == "loss":
            found = next((c for c in table.columns if re.fullmatch(_BITS_RE, str(c), flags=re.IGNORECASE)),
                         None)
        if found is not None:
            chosen[name] = found
    for name in REQUIRED:
        if name not in chosen:
            raise ScalingLabError(f"missing column for {name}: expected one of {', '.join(ALIASES[name])}; "
                                  f"columns are: {', '.join(map(str, table.columns))}")
    out = pd.DataFrame({name: table[src] for name, src in chosen.items()})
    return out, chosen


def column_unit(column: str, name: str) -> str | None:
    """The unit a column's name carries (``params_M`` -> "m", ``loss_bits`` -> "bits"), or None."""
    import re
    if name in _SUFFIXED:
        m = re.fullmatch(_SUFFIXED[name] + _UNIT_RE, column, flags=re.IGNORECASE)
        return m.group(1).lower() if m else None
    if name == "loss" and re.fullmatch(_BITS_RE, column, flags=re.IGNORECASE):
        return "bits"
    return None


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
            what = "missing (NaN)" if pd.isna(raw.iloc[i]) else f"not a finite number ({plain(raw.iloc[i])})"
            raise ScalingLabError(f"column {name}, row {i + 1}: value is {what}")
        if name in POSITIVE and (values <= 0).any():
            i = int(np.flatnonzero((values <= 0).to_numpy())[0])
            raise ScalingLabError(f"column {name}, row {i + 1}: value {values.iloc[i]:g} must be positive")
        if name == "weight" and (values < 0).any():
            i = int(np.flatnonzero((values < 0).to_numpy())[0])
            raise ScalingLabError(f"column weight, row {i + 1}: value {values.iloc[i]:g} must not be "
                                  "negative")
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


def load_runs(path: str | Path, overrides: dict[str, str] | None = None, *, n_units: str | None = None,
              d_units: str | None = None, loss_units: str | None = None) -> tuple[RunTable, dict]:
    """Read, rename, convert and validate a table of runs; returns (runs, {canonical: source column}).

    ``n_units``/``d_units`` ("1", "K", "M", "B", "T") and ``loss_units`` ("nats", "bits") say what the
    columns hold; without them a unit in the column's name is used. What was used is ``runs.input``,
    with ``notes`` for anything suspicious (printed as warnings by the CLI, recorded with the fit)."""
    table = read_table(path)
    runs, chosen = canonical_columns(table, overrides)
    if len(runs) == 0:
        raise ScalingLabError(f"{path} has a header but no runs")
    notes: list[str] = []
    units = {}
    for name, given in (("N", n_units), ("D", d_units)):
        param = f"{name.lower()}_units"
        unit = _unit(given, param) if given is not None else column_unit(str(chosen[name]), name)
        units[name] = unit or "1"
    loss_unit = loss_units.lower() if loss_units else column_unit(str(chosen["loss"]), "loss") or "nats"
    if loss_unit not in LOSS_UNITS:
        raise ScalingLabError(f"`loss_units` must be one of {', '.join(LOSS_UNITS)}, not {loss_units!r}",
                              params=("loss_units",))
    if "step" in runs and "run_id" in runs and runs["loss"].isna().any():
        # a history export logs eval loss at some steps only: those rows are not evals
        kept = runs["loss"].notna()
        notes.append(f"{int((~kept).sum())} rows with no value in column {chosen['loss']} (steps logged "
                     "without an eval) left out")
        runs = runs[kept].reset_index(drop=True)
        if len(runs) == 0:
            raise ScalingLabError(f"{path}: no row has a value in {chosen['loss']}")
    runs = validate_numbers(runs)
    for name in ("N", "D"):
        runs[name] = runs[name] * UNITS[units[name]]
    if "N_nonembed" in runs:
        runs["N_nonembed"] = runs["N_nonembed"] * UNITS[units["N"]]
    if loss_unit == "bits":
        runs["loss"] = runs["loss"] * LN2
    # no language model has under 1e4 parameters or trains on under 1e5 tokens: such columns are in other
    # units
    for name, what, floor in (("N", "parameters", 1e4), ("D", "tokens", 1e5)):
        if units[name] == "1" and runs[name].max() < floor:
            notes.append(f"column {chosen[name]} ({name}) is at most {runs[name].max():.4g}: {what} in "
                         f"thousands, millions or billions? Say so with `{name.lower()}_units` K|M|B|T")
    if "C" in runs:
        ratio = float(np.median(runs["C"] / (6 * runs["N"] * runs["D"])))
        if not 0.5 <= ratio <= 2.0:
            notes.append(f"column {chosen['C']} (C) is {ratio:.3g}x 6ND (median over rows): other units, or "
                         "a different count? Fits that use C (Approaches 1, 2, Kaplan L(C)) take it as given")
    read = {"columns": {k: str(v) for k, v in chosen.items()},
            "units": {"N": units["N"], "D": units["D"], "loss": loss_unit}, "notes": notes}
    return RunTable(runs, source_columns=dict(chosen), input=read), chosen  # which N a fit got, and how


def _unit(text: str, param: str) -> str:
    unit = text.strip().lower()
    if unit not in UNITS:
        raise ScalingLabError(f"`{param}` must be one of 1, K, M, B, T (thousands ... trillions), "
                              f"not {text!r}", params=(param,))
    return unit or "1"


def n_params_kind(column: str) -> str:
    """Which parameter count a source column holds, as DESIGN.md §3 names them."""
    col = column.lower()
    if col == "n_params_nonembed":
        return "nonembed"
    if col == "n_params_total":
        return "total"
    return "unspecified"
