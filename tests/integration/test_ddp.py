"""One run over two processes (torch.distributed, gloo on CPU, launched through torchrun's launcher by
`scalinglab train --nproc 2`), replicated (DDP) or sharded (FSDP2, --fsdp): the same numbers as one
process with the same global batch, a rank killed and the run resumed, the launcher stopped, and
checkpoints moving between one process, DDP and FSDP."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from .helpers import cli

# the debug model on 8 x 64-token batches: ~200 steps, a checkpoint every 40
ARGS = ("train", "--size", "debug", "--tokens", "1e5", "--batch-size", "8", "--n-ctx", "64",
        "--eval-tokens", "4096", "--checkpoint-every", "40", "--json")


def _train(out, *extra):
    r = cli(*ARGS, "--out", out, *extra, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def _start(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "scalinglab", *ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _ranks(launcher: int) -> dict[int, int]:
    """RANK -> pid of the training processes the launcher started."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != launcher:
                continue
            raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            env = dict(kv.split("=", 1) for kv in raw.split("\0") if "=" in kv)
        except (OSError, ValueError, IndexError):
            continue
        if "RANK" in env:
            out[int(env["RANK"])] = int(pid)
    return out


def _wait_for(cond, proc, limit=300):
    t0 = time.time()
    while not cond():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() - t0 < limit, "timed out"
        time.sleep(0.05)


def _checkpointed_after(path: Path, mtime: float):
    return lambda: path.exists() and path.stat().st_mtime > mtime


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The run in one process and, uninterrupted, in two."""
    root = tmp_path_factory.mktemp("ddp")
    return _train(root / "one", "--threads", "1"), _train(root / "two", "--nproc", "2"), root


def test_two_processes_equal_one_with_the_same_global_batch(reference):
    one, two, root = reference
    assert [e["step"] for e in one["evals"]] == [e["step"] for e in two["evals"]]
    for a, b in zip(one["evals"], two["evals"]):  # float sums in another order: ~1e-7 measured
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5), a["step"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5), a["step"]
        if a["noise_scale"] is not None:  # the same halves of the same batches
            assert b["noise_scale"] == pytest.approx(a["noise_scale"], rel=1e-3), a["step"]
    config = json.loads((root / "two" / "config.json").read_text())
    assert config["resolved"]["processes"] == 2 and two["n_tokens"] == one["n_tokens"]
    assert not (root / "two" / "checkpoint.pt").exists()  # rank 0 finished the run and cleaned up


def test_a_run_moves_between_world_sizes_and_survives_a_killed_rank(reference, tmp_path):
    """1 process, stopped (SIGTERM) after its first checkpoint -> 2 processes (DDP) from it, rank 1
    SIGKILLed after a checkpoint of their own (one error line) -> 2 processes sharded (FSDP), the launcher
    SIGTERMed after a checkpoint (every rank stops, rank 0 writes the gathered state) -> 1 process again,
    to the end: the numbers of the uninterrupted runs."""
    one, two, _ = reference
    ckpt = tmp_path / "checkpoint.pt"
    proc = _start(tmp_path, "--threads", "1")
    _wait_for(_checkpointed_after(ckpt, 0.0), proc)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 3
    last = ckpt.stat().st_mtime
    proc = _start(tmp_path, "--nproc", "2")
    _wait_for(_checkpointed_after(ckpt, last), proc)
    ranks = _ranks(proc.pid)
    assert set(ranks) == {0, 1}, ranks
    os.kill(ranks[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and lines[-1].startswith("error: a training process of this run ended"), err
    assert "rank 1: killed by SIGKILL" in lines[-1] and "re-run the same command" in lines[-1]
    assert not any("Traceback" in line for line in lines), err  # issue 30 R20: the survivor's one line
    assert not (tmp_path / "result.json").exists()
    last = ckpt.stat().st_mtime
    proc = _start(tmp_path, "--nproc", "2", "--fsdp")
    _wait_for(_checkpointed_after(ckpt, last), proc)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3 and "interrupted (SIGTERM)" in err, err
    assert ckpt.exists() and not (tmp_path / "result.json").exists()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["resolved"]["processes"] == 1  # a resumed run keeps the record it was started with
    # issue 30 R4: the launcher SIGKILLed, its ranks die with it (SIGTERM from the kernel) and free the lock
    last = ckpt.stat().st_mtime
    proc = _start(tmp_path, "--nproc", "2")
    _wait_for(_checkpointed_after(ckpt, last), proc)
    ranks = _ranks(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.time()
    while any(map(_alive, ranks.values())):
        assert time.time() - t0 < 60, "the ranks outlived their launcher"
        time.sleep(0.2)
    back = _train(tmp_path, "--threads", "1")
    assert back["status"] == "done" and back["steps"] == one["steps"] and back["processes"] == 1
    assert back["val_loss"] == pytest.approx(one["val_loss"], rel=1e-5)
    assert back["val_loss"] == pytest.approx(two["val_loss"], rel=1e-5)
    assert [e["step"] for e in back["evals"]] == [e["step"] for e in two["evals"]]  # none lost, none twice


def test_the_local_executor_trains_a_run_sharded_over_two_processes(tmp_path):
    """What `run --holdout-nproc 2 --holdout-fsdp` gives the held-out run: FSDP2 over two processes, the
    same result as one process (every eval, and the gradient noise scale from the sharded gradients)."""
    from scalinglab.model.family import named_shape
    from scalinglab.plan.spec import RunSpec
    from scalinglab.run.executor import Job
    from scalinglab.run.local import LocalExecutor
    from scalinglab.train.loop import train
    spec = RunSpec(shape=named_shape("debug", n_ctx=64), n_tokens=60_000, batch_size=8, n_eval_tokens=4096)
    alone = train(spec, tmp_path / "alone", threads=1)
    results, handlers = [], [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    assert LocalExecutor(workers=1, cores=2, device="cpu", nproc=2, fsdp=True).run(
        [Job(spec, str(tmp_path / "fsdp"))], results.append)
    # torchrun's launcher installs its own signal handlers: the caller's are back (Ctrl-C is Ctrl-C again)
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == handlers
    (res,) = results
    assert res.status == "done" and res.processes == 2 and res.run_id == alone.run_id
    for a, b in zip(alone.evals, res.evals, strict=True):  # ~1e-7 measured
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5), a["step"]
        if a["noise_scale"] is not None:  # NaN where the window's trace estimate was not positive
            assert b["noise_scale"] == pytest.approx(a["noise_scale"], rel=1e-3, nan_ok=True), a["step"]
    assert json.loads((tmp_path / "fsdp" / "result.json").read_text())["processes"] == 2
    assert json.loads((tmp_path / "fsdp" / "config.json").read_text())["resolved"]["data_parallel"] == "fsdp"
