"""Trackers (track.py) with the real libraries in offline mode: what was logged is read back from the
files they wrote (TensorBoard's event reader; W&B's offline run directory and its record file)."""
import json
import shutil

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from .helpers import cli  # noqa: E402

TRAIN = ["train", "--size", "debug", "--n-ctx", "64", "--batch-size", "16", "--tokens", "40000",
         "--threads", "1", "--eval-tokens", "4096", "--json"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One real finished run (what a tracker is given when a run ends) and its spec."""
    from scalinglab.model.family import named_shape
    from scalinglab.plan.spec import RunSpec
    from scalinglab.train.loop import train
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=40_000, batch_size=16, n_eval_tokens=4096)
    res = train(spec, tmp_path_factory.mktemp("run"), threads=1)
    assert res.status == "done"
    return res, spec.to_dict()


def test_tensorboard_event_files_hold_the_run_and_the_study(tmp_path, finished, uninterrupted):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from scalinglab.track import make_tracker
    res, spec = finished
    make_tracker("tensorboard", tmp_path, "train").log_run("grid", res, spec)
    ea = EventAccumulator(str(tmp_path / "tensorboard" / f"grid-{res.run_id}")).Reload()
    got = {e.step: e.value for e in ea.Scalars("eval/val_loss")}
    assert got == pytest.approx({e["step"]: e["val_loss"] for e in res.evals}, rel=1e-6)
    assert [e.step for e in ea.Scalars("curve/probe")] == [p["step"] for p in res.curve]
    assert ea.Scalars("final/val_loss")[0].value == pytest.approx(res.val_loss, rel=1e-6)
    assert res.run_id in ea.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()

    # the study's results: fit parameters, the held-out check, the report's figures
    out, summary = uninterrupted
    study = tmp_path / "study"
    shutil.copytree(out, study, ignore=shutil.ignore_patterns("runs", "*.sqlite*"))
    make_tracker("tensorboard", study, "debug").log_study(summary, study)
    ea = EventAccumulator(str(study / "tensorboard" / "study"), size_guidance={"images": 0}).Reload()
    fit = json.loads((out / "fit.json").read_text())["params"]
    assert ea.Scalars("fit/chinchilla:3/E")[0].value == pytest.approx(fit["E"], rel=1e-6)
    assert ea.Scalars("holdout/measured")[0].value == pytest.approx(summary["holdout"]["measured"], rel=1e-6)
    assert "report/holdout" in ea.Tags()["images"]


def test_wandb_offline_run_holds_config_history_and_summary(tmp_path, finished, monkeypatch):
    pytest.importorskip("wandb")
    from scalinglab.track import make_tracker
    for k, v in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(k, v)
    res, spec = finished
    make_tracker("wandb", tmp_path, "debug-abc").log_run("grid", res, spec)
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    summary = json.loads((run_dir / "files" / "wandb-summary.json").read_text())
    assert summary["final/val_loss"] == pytest.approx(res.val_loss, rel=1e-6)
    config = (run_dir / "files" / "config.yaml").read_text()
    assert res.run_id in config and "debug" in config
    history = _history(next(run_dir.glob("*.wandb")))
    evals = {h["_step"]: h["eval/val_loss"] for h in history if "eval/val_loss" in h}
    assert evals == pytest.approx({e["step"]: e["val_loss"] for e in res.evals}, rel=1e-6)


def _history(path) -> list[dict]:
    """History rows of a W&B offline record file (what `wandb sync` reads)."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore
    ds = datastore.DataStore()
    ds.open_for_scan(str(path))
    rows = []
    while True:
        data = ds.scan_data()
        if data is None:
            break
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(data)
        if rec.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in rec.history.item})
    return rows


def test_a_tracker_that_fails_is_one_warning_and_the_run_goes_on(tmp_path):
    pytest.importorskip("tensorboard")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tensorboard").write_text("not a directory")  # where the event files would go
    r = cli(*TRAIN, "--out", tmp_path / "run", "--log", "tensorboard")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "done"
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "TensorBoardTracker failed" in warnings[0]
    assert "training goes on" in warnings[0]
    r = cli(*TRAIN, "--out", tmp_path / "other", "--log", "mlflow")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: unknown tracker 'mlflow': choose wandb or tensorboard"
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())
