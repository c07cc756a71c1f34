"""Nothing lost, nothing silently wrong, nothing unsafe (issue 15): one test per fault, each able to fail."""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from scalinglab.errors import ScalingLabError
from scalinglab.lock import DirLock, holder
from scalinglab.model.family import named_shape
from scalinglab.plan.spec import RunSpec
from scalinglab.store import SQLiteStore
from scalinglab.train.result import RunResult, read_result, write_result


def _spec(seed=0):
    return RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=10_000 * (seed + 1), seed=seed)


def _result(spec, loss=2.0):
    evals = [{"step": s, "tokens": s * 100, "flops": s * 1e9, "train_loss": loss, "val_loss": loss,
              "bits_per_byte": loss, "lr": 1e-3, "grad_sq": 1.0, "trace_cov": 2.0,
              "noise_scale": float("nan")}
             for s in (1, 2, 4)]
    return RunResult(run_id=spec.run_id, status="done", val_loss=loss, n_params_total=123520,
                     n_params_nonembed=98944, n_tokens=spec.n_tokens, flops=1e12, flops_6nd=9e11, evals=evals)


# ---- B1: one writer ---------------------------------------------------------------------------------------

def test_a_second_writer_is_refused_and_the_lock_dies_with_its_holder(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from scalinglab.lock import DirLock\n"
        f"with DirLock({str(tmp_path)!r}, 'run'):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    try:
        with pytest.raises(ScalingLabError, match=rf"in use by `scalinglab run` \(pid {child.pid}"):
            with DirLock(tmp_path, "run"):
                pass
        assert holder(tmp_path)["pid"] == child.pid
    finally:
        child.kill()  # SIGKILL: no chance to clean up
        child.wait()
    assert holder(tmp_path) is None  # the kernel released it: no stale lock
    with DirLock(tmp_path, "run"):
        with DirLock(tmp_path, "run"):  # nested in one process: the same writer
            pass


# ---- B22: checkpoints never unpickle code ------------------------------------------------------------------

class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {_Payload.marker}",))


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_and_runs_no_code(tmp_path):
    torch = pytest.importorskip("torch")
    from scalinglab.train import checkpoint
    _Payload.marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.pt"
    torch.save({"run_id": "abc", "model": _Payload()}, path)
    with pytest.raises(ScalingLabError, match="unreadable"):
        checkpoint.load(path, "abc")
    assert not _Payload.marker.exists()


# ---- B23: run ids are checked before they become paths -----------------------------------------------------

def test_an_edited_run_id_never_becomes_a_path(tmp_path):
    store = SQLiteStore.create(tmp_path / "study.sqlite", {})
    spec = _spec()
    store.plan([spec], "grid")
    assert store.pending("grid") == [spec]
    evil = f"../../X/{spec.run_id}"
    with sqlite3.connect(tmp_path / "study.sqlite") as conn:
        conn.execute("UPDATE runs SET run_id = ?", (evil,))
    with pytest.raises(ScalingLabError, match="is not the id of its spec"):
        store.pending("grid")


# ---- B24: every file of a study has the same mode ----------------------------------------------------------

def test_fit_json_gets_the_mode_of_every_other_file(tmp_path):
    from scalinglab.atomic import write_text
    write_text(tmp_path / "fit.json", "{}")
    (tmp_path / "other.json").write_text("{}")
    assert (tmp_path / "fit.json").stat().st_mode == (tmp_path / "other.json").stat().st_mode


# ---- B4, B5, B10: the store --------------------------------------------------------------------------------

def test_damaged_pages_are_one_line_and_a_read_only_study_can_be_read(tmp_path):
    path = tmp_path / "study.sqlite"
    store = SQLiteStore.create(path, {"study_id": "x"})
    store.plan([_spec(i) for i in range(40)], "grid")
    for i in range(40):
        store.finish(_result(_spec(i)))
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    rng = random.Random(4)
    for _ in range(2000):  # random bytes over the pages after the first (the header and meta stay)
        data[rng.randrange(8192, len(data))] = rng.randrange(256)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "study.sqlite").write_bytes(bytes(data))
    with pytest.raises(ScalingLabError, match="damaged|not a readable"):
        s = SQLiteStore.open(damaged / "study.sqlite", readonly=True)
        s.evals(), s.runs(), s.curve_table()
    # a finished study on a read-only directory opens for reading (fit, report); as root nothing is
    # read-only, so the test says what the OS would: this directory and file cannot be written
    real_access = os.access
    os.access = lambda p, mode, *a, **k: False if mode == os.W_OK else real_access(p, mode, *a, **k)
    try:
        assert len(SQLiteStore.open(path, readonly=True).runs(status="done")) == 40
    finally:
        os.access = real_access


# ---- B7, B18: result.json ----------------------------------------------------------------------------------

def test_a_bad_result_json_is_set_aside_and_the_run_trains_again(tmp_path, capsys):
    spec = _spec()
    path = tmp_path / "result.json"
    write_result(path, _result(spec))
    assert read_result(path, spec.run_id).val_loss == 2.0
    text = path.read_text()
    _strict(text)  # strict JSON: the NaN noise scale is null
    for bad in (text[: len(text) // 2],  # torn
                text.replace('"status"', '"extra": 1, "status"'),  # an unknown field
                text.replace('"val_loss": 2.0', '"val_loss": 1.0', 1)):  # an edited loss: the digest says so
        path.write_text(bad)
        assert read_result(path, spec.run_id) is None
        assert (tmp_path / "result.json.bad").exists() and not path.exists()
    assert "set aside as result.json.bad" in capsys.readouterr().err


def test_a_diverged_run_is_failed_not_done(tmp_path):
    pytest.importorskip("torch")
    from scalinglab.train.loop import train
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=64 * 8 * 40, batch_size=8, lr=5.0,
                   n_eval_tokens=1024)
    res = train(spec, tmp_path / "run", threads=1)
    assert res.status == "failed" and "diverged" in res.reason and "ln(256)" in res.reason


# ---- B8: the token cache -----------------------------------------------------------------------------------

def test_a_truncated_token_cache_is_rebuilt(tmp_path, capsys):
    from scalinglab.data.shards import build_shards
    text = tmp_path / "corpus.txt"
    text.write_text("".join(f"line {i} of a small corpus, long enough to split.\n" for i in range(3000)))
    first = np.array(build_shards(str(text), cache_dir=tmp_path / "cache").train)  # a copy, not the memmap
    train_bin = next((tmp_path / "cache").rglob("train.bin"))
    train_bin.write_bytes(train_bin.read_bytes()[:1000])
    again = build_shards(str(text), cache_dir=tmp_path / "cache")
    assert "damaged" in capsys.readouterr().err
    assert np.array_equal(again.train, first)


# ---- B9: summaries -----------------------------------------------------------------------------------------

def test_a_wrong_shape_summary_is_refused(tmp_path):
    from scalinglab.studydir import StudyDir
    SQLiteStore.create(tmp_path / "study.sqlite", {})
    for doc in ([1, 2], {"study": "x"}, {"study": "x", "study_id": "y", "fit": {"params": {}},
                                         "holdout": {"predicted": "high"}}):
        (tmp_path / "summary.json").write_text(json.dumps(doc))
        with pytest.raises(ScalingLabError, match="is not a study summary"):
            StudyDir(tmp_path).summary()


# ---- B12, B14: configs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value,message", [
    ("sizes_per_budget", 4.5, "must be an integer"), ("n_ctx", "64", "must be an integer"),
    ("budgets", [float("nan")], "must be finite"), ("seed", -1, "impossible value for seed"),
    ("budgets", "1e12", "must be a list of numbers"), ("tokens_per_param", True, "must be a finite number"),
])
def test_config_types_and_values_are_checked(field, value, message):
    from scalinglab.plan.config import StudyConfig
    with pytest.raises(ScalingLabError, match=message):
        StudyConfig(**{field: value})


def test_a_budget_beyond_the_family_names_the_problem():
    from scalinglab.plan.config import StudyConfig
    from scalinglab.plan.grid import isoflop_grid
    with pytest.raises(ScalingLabError, match="outside the model family.*lower the budget"):
        isoflop_grid(StudyConfig(budgets=(1e30,)), 256)


def test_a_model_too_big_for_memory_is_refused_with_the_estimate():
    pytest.importorskip("torch")
    from scalinglab.model.family import shape_for_params
    from scalinglab.train.loop import check_memory
    with pytest.raises(ScalingLabError, match=r"needs about [\d.]+ GiB .* this machine has"):
        check_memory(shape_for_params(1e12, vocab_size=256, n_ctx=256), 32, "cpu")
    check_memory(named_shape("debug", n_ctx=64), 8, "cpu")  # a small one passes


# ---- B17: tiny corpora -------------------------------------------------------------------------------------

def test_a_big_document_is_not_put_into_validation():
    from scalinglab.data.corpus import assign_splits
    docs = [("big", "x" * 93_000), ("a", "y" * 3_000), ("b", "z" * 4_000)]
    val = sum(len(d.text) for d in assign_splits(docs) if d.split == "validation")
    assert 0 < val <= 0.1 * 100_000


# ---- B21: strict JSON --------------------------------------------------------------------------------------

def _strict(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def test_every_json_writer_is_strict(tmp_path, capsys):
    """Every writer of a JSON file or line a user reads (fit file, fits file, run result, study summary, the
    CLI's --json) writes strict JSON whatever non-finite floats and numpy scalars it is handed."""
    import dataclasses
    import math

    from scalinglab.cli.common import emit_json
    from scalinglab.fit import ChinchillaFit, write_fits
    from scalinglab.simulate import DEMO_TRUE, isoflop_runs
    from scalinglab.study import _write_summary
    from scalinglab.train.result import RunResult, write_result
    fit = ChinchillaFit().fit(isoflop_runs(DEMO_TRUE, noise=0.005, seed=2)).result_
    summary = {"study": "s", "study_id": "i", "fit": fit.to_dict(draws=False), "n_runs": 1,
               "holdout": {k: 1.0 for k in ("predicted", "measured", "rel_error", "flops_budget", "n_params",
                                            "n_tokens")}}

    def stdout(doc, path):
        emit_json(doc)
        path.write_text(capsys.readouterr().out)
    writers = {
        "--json": stdout,
        "fit file": lambda doc, path: dataclasses.replace(fit, diagnostics=doc).save(path),
        "fits file": lambda doc, path: write_fits(path, [fit], [], extra=doc),
        "run result": lambda doc, path: write_result(path, dataclasses.replace(
            RunResult.failure("r", "why"), evals=[doc], mfu=math.nan)),
        "study summary": lambda doc, path: _write_summary(path, summary | {"curve_laws": doc}),
    }
    rng = np.random.default_rng(0)
    for _ in range(10):  # property: any mix of non-finite floats, numpy scalars and nesting parses strictly
        doc = {"a": [float(x) for x in rng.choice([np.nan, np.inf, -np.inf, 1.5], 4)],
               "b": {"c": np.float64(rng.choice([np.nan, 2.0])), "d": np.int64(3)}, "e": (np.inf,)}
        for name, write in writers.items():
            target = tmp_path / name.replace(" ", "_")
            target.mkdir(exist_ok=True)
            path = target if name == "study summary" else target / "out.json"
            write(doc, path)
            _strict((target / ("summary.json" if name == "study summary" else "out.json")).read_text())


def test_runs_of_one_budget_do_not_make_a_law():
    """B19: 6 runs at one budget gave B = 2.5e34 and converged: true."""
    from scalinglab.fit import ChinchillaFit
    from scalinglab.simulate import DEMO_TRUE, isoflop_runs
    res = ChinchillaFit().fit(isoflop_runs(DEMO_TRUE, budgets=[1e20], sizes_per_budget=6, noise=0.01)).result_
    assert not res.converged and any("cannot be told apart" in w for w in res.warnings)


def test_links_in_a_study_are_refused_and_never_written_through(tmp_path):
    """Issue 30 R2: a `.lock` that is a symbolic link had its target truncated and overwritten with the lock's
    JSON; a linked `report/` was written into. Writers refuse both with one line and touch no target."""
    from ..cli_helpers import call
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    study = tmp_path / "study"
    study.mkdir()
    (study / ".lock").symlink_to(precious)
    with pytest.raises(ScalingLabError, match=r"\.lock is a symbolic link"):
        with DirLock(study, "run"):
            pass
    assert precious.read_text() == "keep me"
    (study / ".lock").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (study / "report").symlink_to(elsewhere, target_is_directory=True)
    (study / "study.sqlite").write_bytes(b"")
    holdout = {k: 1.0 for k in ("predicted", "measured", "rel_error", "flops_budget", "n_params", "n_tokens")}
    fit = {"params": {"E": 1.2, "A": 90.0, "B": 1e3, "alpha": 0.5, "beta": 0.5}, "a": 0.5, "b": 0.5}
    (study / "summary.json").write_text(json.dumps({"study": "s", "study_id": "i", "fit": fit,
                                                    "holdout": holdout}))
    r = call("report", study)
    assert r.returncode != 0 and "report is a symbolic link" in r.stderr and r.stderr.startswith("error:")
    assert list(elsewhere.iterdir()) == []


def test_parquet_without_pyarrow_is_one_line(tmp_path, monkeypatch):
    """Issue 30 R19: `export --format parquet` without pyarrow was an ImportError traceback."""
    import sys

    from tests.cli_helpers import call
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    r = call("export", tmp_path, "--format", "parquet")
    assert r.returncode == 2 and r.stderr.strip() == ("error: --format parquet needs pyarrow: pip install "
                                                      "pyarrow (or --format csv)")


def test_deeper_damage_in_a_summary_is_one_line(tmp_path):
    """Issue 30 R12: a missing parameter, an empty allocation or a wrong run_noise in summary.json were
    tracebacks in `report`; each is now the summary's one error line."""
    from tests.cli_helpers import call
    good = {"study": "s", "study_id": "abc", "n_runs": 7,
            "fit": {"params": {"E": 1.2, "A": 90.0, "B": 1000.0, "alpha": 0.5, "beta": 0.5}, "a": 0.5,
                    "b": 0.5, "converged": True},
            "holdout": {"predicted": 1.3, "measured": 1.31, "rel_error": -0.01, "flops_budget": 1e13,
                        "n_params": 2e5, "n_tokens": 5e6},
            "allocations": [], "run_noise": None}
    from scalinglab.studydir import StudySummary
    StudySummary.from_dict(good)  # the minimal valid one
    SQLiteStore.create(tmp_path / "study.sqlite", {})
    for damage, words in ((lambda d: d["fit"]["params"].pop("beta"), "fit lacks beta"),
                          (lambda d: d.update(allocations=[{}]), "an allocation lacks flops"),
                          (lambda d: d.update(run_noise={"sd_rel": "high"}), "run_noise is not")):
        doc = json.loads(json.dumps(good))
        damage(doc)
        (tmp_path / "summary.json").write_text(json.dumps(doc))
        r = call("report", tmp_path, "--json")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr


def test_a_full_disk_and_a_filesystem_without_locks_are_one_line(tmp_path, monkeypatch):
    """Issue 30 R10/R6: ENOSPC from a writer and ENOLCK from flock were OSError tracebacks."""
    import errno
    import fcntl

    from scalinglab.fit import ChinchillaFit
    from scalinglab.lock import DirLock, holder
    from scalinglab.simulate import DEMO_TRUE, isoflop_runs
    from tests.cli_helpers import call
    runs = isoflop_runs(DEMO_TRUE, budgets=[1e18, 1e19, 1e20], sizes_per_budget=6, noise=0.005, seed=3)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    ChinchillaFit().fit(runs)  # warm imports before the write is made to fail
    import scalinglab.fit.core.base as base

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "fit.json"))
    monkeypatch.setattr(base, "write_text", full)  # what FitBase.save writes with
    r = call("fit", tmp_path / "runs.csv", "--out", tmp_path / "fit.json")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    where = tmp_path / "fit.json"
    assert r.stderr.startswith(f"error: cannot write {where}: No space left on device (ENOSPC)")
    monkeypatch.undo()

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(ScalingLabError, match="this filesystem does not support file locks"):
        with DirLock(tmp_path, "run"):
            pass
    assert holder(tmp_path) is None  # a reader goes on
