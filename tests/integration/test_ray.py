"""The debug study on a real local Ray cluster (2 CPUs): the driver killed, a re-run, a worker killed
mid-run; every run done exactly once and every number equal to the local executor's study.

One Ray study carries the three checks. It starts from a copy of the local executor's finished debug study
with two grid runs not yet trained (helpers.partly_done: the largest model, and a WSD branch of the
smallest, which starts from its trunk's snapshot), so Ray trains those, the fits and the held-out
prediction are made again, and the two studies are compared run by run. A held-out run over two Ray Train
workers has a test of its own.
`ray_study` SIGKILLs the driver mid-grid, re-runs the command, and SIGKILLs the Ray worker of a run that
has a checkpoint; Ray retries that run (a retry goes to the back of the queue) and the study completes.
"""
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.ray]

from scalinglab.plan.spec import RunSpec  # noqa: E402

from .helpers import DEBUG_EXIT, cli, default_sigint, expected_eval_steps, partly_done, start_study, statuses  # noqa: E402


def _task_workers() -> dict[int, Path]:
    """Ray worker processes running a scalinglab run right now -> the run directory each holds locked."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "ray::scalinglab-run-" not in title:  # the task name, set as its process title
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.endswith("/.lock"):
                    out[int(pid)] = Path(target).parent
        except OSError:
            continue
    return out


def _wait(cond, proc, log, limit=600):
    t0 = time.time()
    while not cond():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.time() - t0 < limit, "timed out"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def ray_study(tmp_path_factory, uninterrupted):
    out = tmp_path_factory.mktemp("ray-study")
    db, log = out / "study.sqlite", out.parent / f"{out.name}.log"
    seen = {"trained": partly_done(uninterrupted[0], out, grid=("smallest branch", "largest"), roles=())}
    done_before = list(statuses(db).values()).count("done")
    # 1. the driver SIGKILLed mid-grid (Ray ends the job's tasks itself)
    proc = start_study(out, log, "--executor", "ray")
    _wait(lambda: list(statuses(db).values()).count("done") > done_before, proc, log)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    seen["after_driver_kill"] = statuses(db)

    # 2. the same command again; the Ray worker of a run past its first checkpoint SIGKILLed
    proc = start_study(out, log, "--executor", "ray", "--json")

    def a_run_with_a_checkpoint():  # the shorter of the runs in flight that have one
        found = [(json.loads((d / "config.json").read_text())["spec"]["n_tokens"], pid, d)
                 for pid, d in _task_workers().items() if (d / "checkpoint.pt").exists()]
        if found:
            _, pid, run_dir = min(found)
            seen.update(pid=pid, run=run_dir.name, status_at_kill=statuses(db).get(run_dir.name))
        return bool(found)
    _wait(a_run_with_a_checkpoint, proc, log)
    os.kill(seen["pid"], signal.SIGKILL)
    assert proc.wait(timeout=900) == DEBUG_EXIT, log.read_text()[-3000:]
    return out, json.loads((out / "summary.json").read_text()), seen


def _store(path):
    with sqlite3.connect(path / "study.sqlite") as conn:
        runs = conn.execute("SELECT run_id, status, spec, val_loss, role FROM runs").fetchall()
        evals = conn.execute("SELECT run_id, step, val_loss FROM evals").fetchall()
    return runs, evals


def test_a_killed_ray_worker_is_retried_and_its_run_completes_once(ray_study):
    out, _, seen = ray_study
    assert seen["status_at_kill"] != "done"
    runs, evals = _store(out)
    expected = expected_eval_steps({r[0]: (r[4], RunSpec.from_dict(json.loads(r[2]))) for r in runs})
    assert next(r[1] for r in runs if r[0] == seen["run"]) == "done"
    # each of its eval steps exactly once: the retry resumed the run, nothing recorded twice
    assert sorted(s for r, s, _ in evals if r == seen["run"]) == expected[seen["run"]]
    assert not (out / "runs" / seen["run"] / "checkpoint.pt").exists()  # finished: checkpoint cleaned up


def test_a_killed_ray_driver_resumes_and_every_run_is_done_once(ray_study):
    out, _, seen = ray_study
    killed_at = seen["after_driver_kill"]
    assert any(killed_at[rid] == "done" for rid in seen["trained"])  # killed mid-grid
    assert any(killed_at[rid] != "done" for rid in seen["trained"])
    runs, evals = _store(out)
    assert all(status == "done" for _, status, _, _, _ in runs)
    keys = [(r, s) for r, s, _ in evals]
    assert len(keys) == len(set(keys))  # no eval recorded twice
    expected = expected_eval_steps({r[0]: (r[4], RunSpec.from_dict(json.loads(r[2]))) for r in runs})
    for rid, steps in expected.items():
        assert sorted(s for r, s in keys if r == rid) == steps, rid
    assert not (out / "runs" / ".stop").exists()


def test_ray_study_equals_the_local_executors(ray_study, uninterrupted):
    out_ray, summary_ray, seen = ray_study
    out_local, summary_local = uninterrupted
    runs_r, evals_r = _store(out_ray)
    runs_l, evals_l = _store(out_local)
    assert {r[0] for r in runs_r} == {r[0] for r in runs_l}  # the same runs
    assert len(seen["trained"]) == 2  # trained by Ray (the others were copied), each compared below
    assert {r[0] for r in runs_r if r[1] == "done"} >= set(seen["trained"])
    loss_l = {r[0]: r[3] for r in runs_l}
    for rid, _, _, loss, _ in runs_r:
        assert loss == pytest.approx(loss_l[rid], abs=1e-6), rid
    ev_l = {(r, s): v for r, s, v in evals_l}
    assert len(evals_r) == len(evals_l)
    for r, s, v in evals_r:
        assert v == pytest.approx(ev_l[(r, s)], abs=1e-6)
    for k, v in summary_local["fit"]["params"].items():
        assert summary_ray["fit"]["params"][k] == pytest.approx(v, rel=1e-6), k
    assert summary_ray["holdout"]["measured"] == pytest.approx(summary_local["holdout"]["measured"], abs=1e-6)


_RAY_TRAIN_SCRIPT = """
import _thread, json, sys, threading, time
from pathlib import Path
from scalinglab.plan.spec import RunSpec
from scalinglab.run.executor import Job
from scalinglab.run.ray import RayExecutor
spec = RunSpec.from_dict(json.loads(sys.argv[1]))
job = Job(spec, sys.argv[2])
ckpt = Path(job.run_dir) / "checkpoint.pt"

def ctrl_c_at_the_first_checkpoint():
    while not ckpt.exists():
        time.sleep(0.05)
    _thread.interrupt_main()
executor, results = RayExecutor(num_cpus=2, device="cpu", nproc=2), []
try:
    threading.Thread(target=ctrl_c_at_the_first_checkpoint, daemon=True).start()
    first = executor.run([job], results.append)
    stopped = {"returned": first, "status": results[-1].status, "checkpoint": ckpt.exists()}
    second = executor.run([job], results.append)
finally:
    executor.close()
print(json.dumps({"stopped": stopped, "second": second, "result": results[-1].to_dict()}))
"""


def test_ray_train_runs_one_run_over_two_workers_stops_and_resumes(tmp_path):
    """What `run --executor ray --holdout-nproc 2` gives the held-out run: a TorchTrainer of two workers
    (DDP over gloo). Ctrl-C in the driver after the first checkpoint stops both workers at a step boundary
    (rank 0 checkpoints); the same call again resumes, and the result is the one-process run's. The driver
    is a fresh Python process, as under `scalinglab run`."""
    import subprocess
    import sys

    from scalinglab.model.family import named_shape
    from scalinglab.train.loop import train
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=120_000, batch_size=8, n_eval_tokens=4096,
                   checkpoint_every=10)
    alone = train(spec, tmp_path / "alone", threads=1)
    run_dir = tmp_path / "runs" / spec.run_id
    # preexec_fn: a shell (CI's) starts background jobs with SIGINT ignored, and a Python started so never
    # raises KeyboardInterrupt: the script's Ctrl-C (interrupt_main) did nothing and the run finished
    r = subprocess.run([sys.executable, "-c", _RAY_TRAIN_SCRIPT, json.dumps(spec.to_dict()), str(run_dir)],
                       capture_output=True, text=True, timeout=600, preexec_fn=default_sigint)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["stopped"] == {"returned": False, "status": "interrupted", "checkpoint": True}
    assert got["second"] is True
    res = got["result"]
    assert res["status"] == "done" and res["processes"] == 2 and res["steps"] == alone.steps
    assert [e["step"] for e in res["evals"]] == [e["step"] for e in alone.evals]
    for a, b in zip(alone.evals, res["evals"]):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5), a["step"]
    assert json.loads((run_dir / "config.json").read_text())["resolved"]["processes"] == 2


def test_ray_cli_errors_are_one_line(tmp_path):
    r = cli("run", "--preset", "debug", "--executor", "ray", "--address", "127.0.0.1:1", "--out",
            tmp_path / "x")
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert lines and "Ray cluster at 127.0.0.1:1" in lines[0], r.stderr[-2000:]
    r = cli("run", "--preset", "debug", "--address", "auto", "--out", tmp_path / "y")
    assert r.returncode != 0 and "error: --address applies to --executor ray" in r.stderr
    r = cli("run", "--preset", "debug", "--executor", "ray", "--workers", "2", "--out", tmp_path / "w")
    assert r.returncode != 0 and "error: --workers applies to --executor local" in r.stderr


def test_without_ray_installed_the_error_says_how_to_install(tmp_path):
    """The ray import fails as it does without the extra (a None module entry makes `import ray` raise)."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "from scalinglab.cli import main\n"
            "sys.exit(main(['run', '--preset', 'debug', '--executor', 'ray', '--out', "
            f"r'{tmp_path / 'z'}']))")
    r = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "error: the Ray executor needs Ray: pip install 'scalinglab[ray]'" in r.stderr, r.stderr[-2000:]
