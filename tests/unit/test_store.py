import sqlite3

import pandas as pd
import pytest

from scalinglab.errors import ScalingLabError
from scalinglab.model.family import named_shape
from scalinglab.plan.spec import RunSpec
from scalinglab.store import SQLiteStore
from scalinglab.train.result import RunResult


def _spec(seed):
    return RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=10_000 * (seed + 1), seed=seed)


def _result(spec, loss):
    evals = [{"step": s, "tokens": s * 100, "flops": s * 1e9, "train_loss": loss + 1 / s,
              "val_loss": loss + 1 / s, "bits_per_byte": loss, "lr": 1e-3, "grad_sq": 1.0, "trace_cov": 2.0,
              "noise_scale": 2.0}
             for s in (1, 2, 4)]
    return RunResult(run_id=spec.run_id, status="done", val_loss=loss + 0.25, n_params_total=123520,
                     n_params_nonembed=98944, n_tokens=spec.n_tokens, flops=1e12, flops_6nd=9e11, evals=evals)


def test_plan_finish_and_read_back(tmp_path):
    store = SQLiteStore.create(tmp_path / "study.sqlite", {"study_id": "abc"})
    specs = [_spec(i) for i in range(3)]
    store.plan(specs, "grid", budgets=[1e12] * 3)
    store.plan(specs, "grid", budgets=[1e12] * 3)  # planning twice adds nothing
    assert len(store.runs()) == 3 and set(store.runs()["status"]) == {"planned"}
    store.finish(_result(specs[0], 2.0))
    store.finish(_result(specs[0], 2.0))  # a replayed write duplicates no eval row
    assert len(store.evals()) == 3
    done = store.runs(status="done")
    assert list(done["run_id"]) == [specs[0].run_id] and done["val_loss"].iloc[0] == 2.25
    table = store.fit_table().frame
    assert list(table.columns[:5]) == ["run_id", "N", "D", "loss", "C"] and table["N"].iloc[0] == 123520
    assert store.meta()["study_id"] == "abc" and store.meta()["schema_version"] == 1
    store.close()
    again = SQLiteStore.open(tmp_path / "study.sqlite")
    assert len(again.runs(status="planned")) == 2


def test_curve_probe_and_estimates_are_stored_and_an_older_store_gains_them(tmp_path):
    """A run's dense curve (with its probe) and the final-loss estimates it made while training land in
    the store with it; a store whose curve table predates the probe gets the column when opened."""
    path = tmp_path / "study.sqlite"
    store = SQLiteStore.create(path, {})
    spec = _spec(0)
    store.plan([spec], "grid")
    curve = [{"step": s, "lr": 1e-3, "loss": 3.0 - s / 100, "probe": 2.9 - s / 100} for s in (10, 20, 30)]
    estimate = {"step": 10, "fraction": 0.33, "final": 2.5, "interval": [2.4, 2.6], "converged": True,
                "warnings": [], "decay_from": "own curve"}
    r = _result(spec, 2.0)
    store.finish(RunResult(**(r.to_dict() | {"curve": curve, "estimates": [estimate]})))
    got = store.training_curves()
    assert list(got["probe"]) == pytest.approx([2.8, 2.7, 2.6])
    est = store.estimates()
    assert est[["final", "lo", "hi", "converged", "source"]].values.tolist() == [[2.5, 2.4, 2.6, 1,
                                                                                   "in training"]]
    store.close()
    with sqlite3.connect(path) as conn:  # as a store from before the probe and the estimates
        conn.executescript("DROP TABLE curve; DROP TABLE estimate; "
                           "CREATE TABLE curve (run_id, step, lr, loss, PRIMARY KEY (run_id, step));")
    old = SQLiteStore.open(path, readonly=True)
    assert old.training_curves()["probe"].isna().all() and old.estimates().empty
    old.close()
    SQLiteStore.open(path).close()  # a writer's open adds what is missing
    with sqlite3.connect(path) as conn:
        assert "probe" in {row[1] for row in conn.execute("PRAGMA table_info(curve)")}
        assert conn.execute("SELECT COUNT(*) FROM estimate").fetchone() == (0,)


def test_export_csv_and_parquet(tmp_path):
    store = SQLiteStore.create(tmp_path / "s.sqlite", {})
    spec = _spec(0)
    store.plan([spec], "grid")
    store.finish(_result(spec, 2.0))
    a = pd.read_csv(store.export(tmp_path / "runs.csv"))
    b = pd.read_parquet(store.export(tmp_path / "runs.parquet"))
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert len(a) == 1 and a["D"].iloc[0] == spec.n_tokens and a["loss"].iloc[0] == 2.25  # the final result
    c = pd.read_csv(store.export(tmp_path / "curves.csv", curves=True))
    # one row per eval with its own tokens and loss so far (not the run's final D and loss on every row)
    assert list(c["step"]) == [1, 2, 4] and list(c["D"]) == [100, 200, 400]
    assert list(c["loss"]) == pytest.approx([3.0, 2.5, 2.25])


def test_corrupt_and_foreign_files_are_refused_and_left_alone(tmp_path):
    bad = tmp_path / "study.sqlite"
    bad.write_bytes(b"this is not a database at all" * 100)
    before = bad.read_bytes()
    with pytest.raises(ScalingLabError, match="not an SQLite file, not a scalinglab study store"):
        SQLiteStore.open(bad)
    assert bad.read_bytes() == before
    empty = tmp_path / "empty.sqlite"  # B10: an empty file must not be turned into a database
    empty.write_bytes(b"")
    with pytest.raises(ScalingLabError, match="empty \\(0 bytes\\).*left untouched"):
        SQLiteStore.open(empty)
    assert empty.read_bytes() == b""
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(ScalingLabError, match="another program"):
        SQLiteStore.open(other)
    with pytest.raises(ScalingLabError, match="no study store"):
        SQLiteStore.open(tmp_path / "missing.sqlite")


def test_a_run_already_planned_in_another_role_is_refused(tmp_path):
    """A held-out run that is one of the grid's runs would be predicted by a law fitted on it."""
    from scalinglab.errors import ScalingLabError
    from scalinglab.model.family import named_shape
    from scalinglab.plan.spec import RunSpec
    from scalinglab.store import SQLiteStore
    store = SQLiteStore.create(tmp_path / "study.sqlite", {"study_id": "x"})
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=10_000, batch_size=8)
    store.plan([spec], "grid", [1e11])
    store.plan([spec], "grid", [1e11])  # the same role again: a resumed study, fine
    with pytest.raises(ScalingLabError, match=f"run {spec.run_id} is already this study's grid run"):
        store.plan([spec], "holdout", [1e11])
    assert list(store.runs()["role"]) == ["grid"]
    store.close()


def test_a_reader_that_cannot_see_the_write_ahead_log_refuses_until_the_writer_checkpoints(tmp_path,
                                                                                          monkeypatch):
    """Issue 30 R1: a finished study's runs can sit in study.sqlite-wal; a read-only directory opens the store
    as immutable, which ignores the log. Such a reader must refuse, never answer from part of the data; the
    writer's checkpoint (run_study does it when it ends) empties the log into the file."""
    import os

    from scalinglab.store.sqlite import checkpoint
    path = tmp_path / "study.sqlite"
    writer = SQLiteStore.create(path, {"study_id": "abc"})
    specs = [_spec(i) for i in range(3)]
    writer.plan(specs, "grid", budgets=[1e12] * 3)
    for i, spec in enumerate(specs):
        writer.finish(_result(spec, 2.0 + i))
    assert (tmp_path / "study.sqlite-wal").stat().st_size > 0  # the runs are in the log, not the file
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    with pytest.raises(ScalingLabError, match="cannot read: the study would be seen in part"):
        SQLiteStore.open(path, readonly=True)
    checkpoint(path)
    assert (tmp_path / "study.sqlite-wal").stat().st_size == 0
    writer.close()
    reader = SQLiteStore.open(path, readonly=True)  # immutable now: every run there
    assert len(reader.runs(status="done")) == 3
