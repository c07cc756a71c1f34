"""The study store: one SQLite file per study (WAL), schema-versioned, every write one transaction.

Tables (DESIGN.md §7): ``meta`` (format, schema version, study id and config, corpus fingerprint),
``runs`` (one row per planned run: spec, role, status, the §3 columns, final metrics, timings),
``evals`` (run_id, step, ...: primary key (run_id, step), so a replayed write cannot duplicate a row),
``curve`` (run_id, step, lr, loss, probe: each run's dense training curve, for the whole-curve laws),
``estimate`` (run_id, step, fraction, final, lo, hi, converged, source: final losses estimated from a
run's curve part-way).
A run is ``done`` only in the same transaction that commits its eval rows.
"""
from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .. import __version__
from ..atomic import writing
from ..errors import ScalingLabError
from ..fit.core.table import RunTable

if TYPE_CHECKING:
    from ..plan.spec import RunSpec

FORMAT = "scalinglab.study"
RUN_ID = re.compile(r"[0-9a-f]{12}")
SCHEMA_VERSION = 1
RUN_COLUMNS = ("run_id", "role", "status", "reason", "budget", "spec", "n_layer", "d_model", "n_head",
               "d_head", "d_ff", "vocab_size", "n_ctx", "tied", "n_params_nonembed", "n_params_total",
               "n_tokens", "flops", "flops_6nd", "val_loss", "bits_per_byte", "lr", "steps", "wall_time_s",
               "tokens_per_s", "device", "version", "updated", "flops_per_s", "mfu", "processes")
# columns added after schema 1 shipped: a writable store from before gets them when opened (ALTER TABLE)
ADDED_RUN_COLUMNS = ("flops_per_s", "mfu", "processes")
EVAL_COLUMNS = ("run_id", "step", "tokens", "flops", "train_loss", "val_loss", "bits_per_byte", "lr",
                "grad_sq", "trace_cov", "noise_scale")
# the dense training curve of each finished run (train/loop.py: RunResult.curve); added after schema 1
# shipped: a writable store from before gets the table when opened
CURVE_TABLE = ("CREATE TABLE IF NOT EXISTS curve (run_id, step, lr, loss, probe, "
               "PRIMARY KEY (run_id, step));")
# each run's final loss estimated from its curve while it trained (and after, from the study's other runs:
# fit/curvelaws/ estimate_final); added after schema 1 shipped, like the curve table
ESTIMATE_TABLE = ("CREATE TABLE IF NOT EXISTS estimate (run_id, step, fraction, final, lo, hi, converged, "
                  "source, PRIMARY KEY (run_id, step, source));")
# each eval's loss per validation source (the embedded corpus' five collections, a user's files or JSONL
# `source` field: data/corpus.py source_of); added after schema 1 shipped, like the curve table
SOURCE_TABLE = ("CREATE TABLE IF NOT EXISTS source_loss (run_id, step, source, loss, tokens, "
                "PRIMARY KEY (run_id, step, source));")
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs ({", ".join(c + (" TEXT PRIMARY KEY" if c == "run_id" else "") for c in RUN_COLUMNS)});
CREATE TABLE evals ({", ".join(EVAL_COLUMNS)}, PRIMARY KEY (run_id, step));
{CURVE_TABLE}
{ESTIMATE_TABLE}
{SOURCE_TABLE}
"""


class SQLiteStore:
    """Open with ``SQLiteStore.create(path, meta)`` for a new study or ``SQLiteStore.open(path)``."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path, self._conn = path, conn

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, meta: dict) -> "SQLiteStore":
        path = Path(path)
        if path.exists():
            raise ScalingLabError(f"{path} already exists; open it instead of creating it")
        with writing(path) as tmp:  # built aside and renamed: nobody ever opens a half-made store
            conn = sqlite3.connect(tmp)
            with conn:
                conn.executescript(_SCHEMA)
                rows = {"format": FORMAT, "schema_version": str(SCHEMA_VERSION), "created": time.time(),
                        "version": __version__, **meta}
                conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, _text(v)) for k, v in rows.items()])
            conn.close()
        return cls(path, _connect(path))

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> "SQLiteStore":
        """Open a study's store; ``readonly`` for readers (fit, report, plan): it never writes the file, and
        a study on a read-only disk opens too (as immutable: nothing can be writing it)."""
        path = Path(path)
        if not path.exists():
            raise ScalingLabError(f"no study store at {path}")
        _check_header(path)
        try:
            conn = _connect(path, readonly=readonly)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise ScalingLabError(f"{path} is not a readable scalinglab study store ({exc}); it was left "
                                  f"untouched: move it aside to start a new study") from None
        if meta.get("format") != FORMAT:
            raise ScalingLabError(f"{path} is an SQLite file of another program, not a scalinglab study")
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise ScalingLabError(f"{path} has store schema {meta.get('schema_version')}; this scalinglab "
                                  f"reads schema {SCHEMA_VERSION}")
        if not readonly:
            have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            with conn:
                for column in ADDED_RUN_COLUMNS:
                    if column not in have:
                        conn.execute(f"ALTER TABLE runs ADD COLUMN {column}")
                conn.execute(CURVE_TABLE)
                if "probe" not in {row[1] for row in conn.execute("PRAGMA table_info(curve)")}:
                    conn.execute("ALTER TABLE curve ADD COLUMN probe")  # a store from before the probe
                conn.execute(ESTIMATE_TABLE)
                conn.execute(SOURCE_TABLE)
        return cls(path, conn)

    def close(self) -> None:
        self._conn.close()

    # -- meta ------------------------------------------------------------------------------------------
    def meta(self) -> dict:
        return {k: _untext(v) for k, v in self._conn.execute("SELECT key, value FROM meta").fetchall()}

    def set_meta(self, **values) -> None:
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                   [(k, _text(v)) for k, v in values.items()])

    # -- runs --------------------------------------------------------------------------------------------
    def plan(self, specs: list, role: str, budgets: list[float] | None = None) -> None:
        """Insert planned runs (RunSpec) not yet in the store; existing rows are left as they are. A run
        already in the store in another role is refused: one run cannot be both (a held-out run that is
        a grid run would be predicted by a law fitted on it)."""
        budgets = budgets or [None] * len(specs)
        roles = dict(self._conn.execute("SELECT run_id, role FROM runs").fetchall())
        clash = [s.run_id for s in specs if roles.get(s.run_id, role) != role]
        if clash:
            raise ScalingLabError(f"run {clash[0]} is already this study's {roles[clash[0]]} run; it cannot "
                                  f"also be its {role} run")
        with self._conn:
            for spec, budget in zip(specs, budgets):
                shape = spec.shape.to_dict()
                self._conn.execute(
                    "INSERT OR IGNORE INTO runs (run_id, role, status, budget, spec, n_layer, d_model, "
                    "n_head, d_head, d_ff, vocab_size, n_ctx, tied, updated) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (spec.run_id, role, "planned", budget, json.dumps(spec.to_dict(), sort_keys=True),
                     shape["n_layer"], shape["d_model"], shape["n_head"], shape["d_head"], shape["d_ff"],
                     shape["vocab_size"], shape["n_ctx"], int(shape["tied"]), time.time()))

    def set_status(self, run_id: str, status: str, reason: str = "") -> None:
        with self._conn:
            self._conn.execute("UPDATE runs SET status = ?, reason = ?, updated = ? WHERE run_id = ?",
                               (status, reason, time.time(), run_id))

    def finish(self, result) -> None:
        """Commit a RunResult: its eval rows and final metrics, and its status, in one transaction."""
        r = result.to_dict()
        with self._conn:
            self._conn.executemany(
                f"INSERT OR REPLACE INTO evals VALUES ({', '.join('?' * len(EVAL_COLUMNS))})",
                [tuple([r["run_id"]] + [e.get(c) for c in EVAL_COLUMNS[1:]]) for e in r["evals"]])
            self._conn.executemany("INSERT OR REPLACE INTO curve VALUES (?, ?, ?, ?, ?)",
                                   [(r["run_id"], p["step"], p["lr"], p["loss"], p.get("probe"))
                                    for p in r.get("curve", ())])
            self._conn.executemany("INSERT OR REPLACE INTO estimate VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                   [_estimate_row(r["run_id"], e, "in training")
                                    for e in r.get("estimates", ())])
            self._conn.executemany("INSERT OR REPLACE INTO source_loss VALUES (?, ?, ?, ?, ?)",
                                   [(r["run_id"], e["step"], name, loss, e["source_tokens"][name])
                                    for e in r["evals"] for name, loss in e.get("source_loss", {}).items()])
            self._conn.execute(
                "UPDATE runs SET status=?, reason=?, n_params_nonembed=?, n_params_total=?, n_tokens=?, "
                "flops=?, flops_6nd=?, val_loss=?, bits_per_byte=?, lr=?, steps=?, wall_time_s=?, "
                "tokens_per_s=?, device=?, version=?, updated=?, flops_per_s=?, mfu=?, processes=? "
                "WHERE run_id=?",
                (r["status"], r["reason"], r["n_params_nonembed"], r["n_params_total"], r["n_tokens"],
                 r["flops"], r["flops_6nd"], r["val_loss"], r["bits_per_byte"], r["lr"], r["steps"],
                 r["wall_time_s"], r["tokens_per_s"], r["device"], __version__, time.time(),
                 r["flops_per_s"], r["mfu"], r["processes"], r["run_id"]))

    def runs(self, *, role: str | None = None, status: str | None = None) -> pd.DataFrame:
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if role:
            query, args = query + " AND role = ?", args + [role]
        if status:
            query, args = query + " AND status = ?", args + [status]
        return pd.read_sql_query(query + " ORDER BY run_id", self._conn, params=args)

    def specs(self, role: str, *, pending: bool = False) -> dict[str, "RunSpec"]:
        """The role's runs as RunSpecs by run id (``pending``: those not done), each id checked against its
        spec before anyone builds a path from it: 12 hex digits, and the hash of the spec itself (an edited
        id such as ../../X cannot send a checkpoint outside the study)."""
        from ..plan.spec import RunSpec
        rows = self._conn.execute("SELECT run_id, spec, status FROM runs WHERE role = ? ORDER BY run_id",
                                  (role,)).fetchall()
        out = {}
        for run_id, spec_json, status in rows:
            if pending and status == "done":
                continue
            try:
                spec = RunSpec.from_dict(json.loads(spec_json))
            except (TypeError, ValueError, KeyError) as exc:
                raise ScalingLabError(f"{self.path}: the spec of run {str(run_id)[:40]!r} is not readable "
                                      f"({exc}); the store was edited or damaged: restore it or move it "
                                      "aside") from None
            if not (isinstance(run_id, str) and RUN_ID.fullmatch(run_id) and spec.run_id == run_id):
                raise ScalingLabError(f"{self.path}: run id {str(run_id)[:40]!r} is not the id of its spec "
                                      f"({spec.run_id}): the store was edited; restore it or move it aside")
            out[run_id] = spec
        return out

    def pending(self, role: str) -> list["RunSpec"]:
        """The role's runs not yet done, as checked RunSpecs."""
        return list(self.specs(role, pending=True).values())

    def evals(self, run_ids: list[str] | None = None) -> pd.DataFrame:
        table = pd.read_sql_query("SELECT * FROM evals ORDER BY run_id, step", self._conn)
        return table if run_ids is None else table[table["run_id"].isin(run_ids)].reset_index(drop=True)

    # -- export ------------------------------------------------------------------------------------------
    def fit_table(self, role: str = "grid") -> RunTable:
        """Finished runs as a table `scalinglab fit` reads: N (all parameters), D, loss, C, budget, run_id."""
        runs = self.runs(role=role, status="done")
        table = pd.DataFrame({"run_id": runs["run_id"], "N": runs["n_params_total"].astype(float),
                              "D": runs["n_tokens"].astype(float), "loss": runs["val_loss"].astype(float),
                              "C": runs["flops"].astype(float), "budget": runs["budget"].astype(float),
                              "n_params_nonembed": runs["n_params_nonembed"].astype(float)})
        _unique_tokens(table, runs)
        return RunTable(self._with_sources(table, runs["steps"].astype(float)),
                        source_columns={"N": "n_params_total"})

    def curve_table(self, role: str = "grid") -> RunTable:
        """Learning curves of finished runs, one row per eval, as the curve-based fits read them: run_id,
        step, N (all parameters), n_params_nonembed, D (tokens so far), loss, C (exact FLOPs so far),
        budget, noise_scale. The last row of each run is its final result."""
        runs = self.runs(role=role, status="done")[["run_id", "n_params_total", "n_params_nonembed",
                                                    "budget", "spec"]]
        ev = self.evals(list(runs["run_id"]))
        table = ev.merge(runs, on="run_id")
        table = pd.DataFrame({"run_id": table["run_id"], "step": table["step"].astype(float),
                              "N": table["n_params_total"].astype(float),
                              "n_params_nonembed": table["n_params_nonembed"].astype(float),
                              "D": table["tokens"].astype(float), "loss": table["val_loss"].astype(float),
                              "C": table["flops"].astype(float), "budget": table["budget"].astype(float),
                              "noise_scale": table["noise_scale"].astype(float)})
        _unique_tokens(table, runs)
        table = self._with_sources(table, table["step"])  # before: a WSD curve's rows are other runs' ends
        return RunTable(_wsd_ends(table, runs), source_columns={"N": "n_params_total"})

    def source_losses(self) -> pd.DataFrame:
        """Every eval's loss per validation source: run_id, step, source, loss, tokens (empty for a store
        from before per-source losses, or a corpus of one source)."""
        columns = ["run_id", "step", "source", "loss", "tokens"]
        if "source_loss" not in self._tables():
            return pd.DataFrame(columns=columns)
        return pd.read_sql_query("SELECT * FROM source_loss ORDER BY run_id, step, source",
                                 self._conn)[columns]

    def _with_sources(self, table: pd.DataFrame, steps: pd.Series) -> pd.DataFrame:
        """``table`` with a ``loss:SOURCE`` column per validation source, at each row's run and step."""
        per = self.source_losses()
        if not len(per):
            return table
        wide = per.pivot_table(index=["run_id", "step"], columns="source", values="loss").reset_index()
        wide.columns = ["run_id", "_step"] + [f"loss:{c}" for c in wide.columns[2:]]
        wide["_step"] = wide["_step"].astype(float)
        keyed = table.assign(_step=steps.to_numpy(dtype=float))
        return keyed.merge(wide, on=["run_id", "_step"], how="left").drop(columns="_step")

    def _tables(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def training_curves(self, role: str = "grid") -> pd.DataFrame:
        """The dense training curves of finished runs: run_id, step, lr, loss (training windows), probe (the
        fixed validation probe; None in stores from before it), with each run's N (all parameters), peak
        LR and spec (JSON); empty for a store from before curves were kept."""
        columns = ["run_id", "step", "lr", "loss", "probe", "N", "peak_lr", "spec"]
        if "curve" not in self._tables():
            return pd.DataFrame(columns=columns)
        probe = "c.probe" if "probe" in {r[1] for r in self._conn.execute("PRAGMA table_info(curve)")} \
            else "NULL AS probe"
        return pd.read_sql_query(
            f"SELECT c.run_id, c.step, c.lr, c.loss, {probe}, r.n_params_total AS N, r.lr AS peak_lr, r.spec "
            "FROM curve c JOIN runs r ON r.run_id = c.run_id WHERE r.role = ? AND r.status = 'done' "
            "ORDER BY c.run_id, c.step", self._conn, params=(role,))[columns]

    def add_estimates(self, run_id: str, estimates, source: str) -> None:
        """Final-loss estimates of a run (estimate_final's dicts) made by ``source``."""
        with self._conn:
            self._conn.execute("DELETE FROM estimate WHERE run_id = ? AND source = ?", (run_id, source))
            self._conn.executemany("INSERT OR REPLACE INTO estimate VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                   [_estimate_row(run_id, e, source) for e in estimates])

    def estimates(self) -> pd.DataFrame:
        """Every stored final-loss estimate: run_id, step, fraction, final, lo, hi, converged, source."""
        columns = ["run_id", "step", "fraction", "final", "lo", "hi", "converged", "source"]
        if "estimate" not in self._tables():
            return pd.DataFrame(columns=columns)
        return pd.read_sql_query("SELECT * FROM estimate ORDER BY run_id, source, step", self._conn)[columns]

    def model_context(self) -> dict:
        """The vocabulary and context of the grid's models (a study has one of each), for plans in its
        terms."""
        runs = self.runs(role="grid")
        if len(runs) == 0:
            return {}
        spec = json.loads(runs["spec"].iloc[0])
        return {"vocab_size": int(runs["vocab_size"].iloc[0]), "n_ctx": int(spec["shape"]["n_ctx"]),
                "model_family": "scalinglab"}

    def export(self, path: str | Path, *, curves: bool = False, role: str = "grid") -> Path:
        """The finished runs as `scalinglab fit` reads them, to CSV or Parquet (by suffix), written
        atomically: one row per run (``fit_table``: run_id, N, D, loss, C, ...), or with ``curves`` one row
        per eval (``curve_table``: each row's own step, D and loss so far; a run's last row is its final
        result). `fit --law all` of the curves gives every law of the study as its own fits; of the runs,
        the laws of final losses (Approaches 2 and 3, Kaplan's L(N), L(N,D)) (cli/export.py WHAT_HOLDS_*)."""
        path = Path(path)
        table = (self.curve_table(role) if curves else self.fit_table(role)).frame
        with writing(path) as tmp:
            if path.suffix.lower() in (".parquet", ".pq"):
                table.to_parquet(tmp, index=False)
            else:
                table.to_csv(tmp, index=False)
        return path


def _unique_tokens(table: pd.DataFrame, runs: pd.DataFrame) -> None:
    """A unique_tokens column when the study repeated data (Muennighoff et al. 2023), from each run's spec."""
    per_run = {rid: json.loads(spec).get("unique_tokens") for rid, spec in zip(runs["run_id"], runs["spec"])}
    if any(per_run.values()):
        table["unique_tokens"] = [float(per_run[r] or d) for r, d in zip(table["run_id"], table["D"])]


def _wsd_ends(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """WSD runs: evals before a run's cool-down are not annealed and overstate the loss its length would
    reach (Hoffmann et al. 2022, Fig. A1; Hägele et al. 2024). A WSD run's curve is therefore the final evals
    of the runs of its size (its branch key) no longer than itself, each a cool-down branched off the same
    stable run; its last row stays its own final result."""
    specs = {rid: json.loads(spec) for rid, spec in zip(runs["run_id"], runs["spec"])}
    wsd = {rid for rid, spec in specs.items() if spec.get("schedule") == "wsd"}
    if not wsd:
        return table
    from ..plan.spec import RunSpec
    is_wsd = table["run_id"].isin(wsd)
    ends = table[is_wsd].sort_values("step").groupby("run_id").tail(1)
    ends = ends.assign(key=[RunSpec.from_dict(specs[r]).branch_key for r in ends["run_id"]])
    curves = [ends[(ends["key"] == row.key) & (ends["D"] <= row.D)].assign(run_id=row.run_id)
              for row in ends.itertuples()]
    return pd.concat([table[~is_wsd], *curves]).drop(columns="key").sort_values(
        ["run_id", "step"], kind="stable").reset_index(drop=True)


SQLITE_HEADER = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """Refuse before SQLite touches it: an empty file would silently become a new database."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ScalingLabError(f"cannot read {path}: {exc.strerror}") from None
    if head != SQLITE_HEADER:
        what = "empty (0 bytes)" if not head else "not an SQLite file"
        raise ScalingLabError(f"{path} is {what}, not a scalinglab study store; it was left untouched: move "
                              "it aside to start a new study")


def checkpoint(path: str | Path) -> None:
    """Move everything in the store's write-ahead log into the file and empty the log (a writer does this
    when it finishes): a copy of the study, or a reader that cannot use the log, then sees every run."""
    path = Path(path)
    if not path.exists():
        return
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        import os
        # a read-only directory cannot hold WAL's shared-memory file: open the finished study as immutable,
        # which ignores the write-ahead log; so a log with writes in it is refused, never read around
        flags = "mode=ro" if os.access(path.parent, os.W_OK) and os.access(path, os.W_OK) else "immutable=1"
        wal = path.with_name(path.name + "-wal")
        if flags == "immutable=1" and wal.exists() and wal.stat().st_size > 0:
            raise ScalingLabError(
                f"{path} has writes in {wal.name} ({wal.stat().st_size:,} bytes) that a read-only directory "
                "cannot read: the study would be seen in part. Copy the study directory somewhere writable "
                "(or re-run `scalinglab run` on it once where it can write), then read it")
        return sqlite3.connect(f"file:{path}?{flags}", uri=True, timeout=30.0)
    conn = sqlite3.connect(path, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _guarded(method):
    """A damaged page found mid-query is one error line naming the file, not an sqlite3/pandas traceback."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise ScalingLabError(f"{self.path} cannot be written ({exc}): the study is on a read-only "
                                      f"disk or directory; fit and report can read it as it is") from None
            raise ScalingLabError(f"{self.path} is damaged ({str(exc).splitlines()[0]}): restore it from a "
                                  "copy, or move it aside and re-run (finished runs in runs/ are "
                                  "reused)") from None
    return wrapper


for _name in ("meta", "set_meta", "plan", "set_status", "finish", "runs", "specs", "evals", "fit_table",
              "curve_table", "model_context", "export"):
    setattr(SQLiteStore, _name, _guarded(getattr(SQLiteStore, _name)))


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _untext(value: str):
    try:
        return json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value


def _estimate_row(run_id: str, e: dict, source: str) -> tuple:
    lo, hi = e.get("interval") or (None, None)
    return (run_id, e["step"], e["fraction"], e["final"], lo, hi, int(bool(e["converged"])), source)
