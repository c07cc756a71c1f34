"""Ray executor: each run is a Ray task, on a local cluster started here or an existing one by address.

The driver (this process) stays the only writer of the SQLite store: tasks return their RunResult and
the driver records it, as with the local executor. What a task needs reaches it once:
- the token shards: put in Ray's object store once per (corpus, tokenizer); workers read them zero-copy;
- the run directory (checkpoints, result.json): a path every worker can read and write. On one machine
  that is the study directory; on a real cluster it must be shared storage (NFS, a mounted bucket).

Fault tolerance is Ray's: a task whose worker process dies is retried (``max_retries``) and the retry
resumes from the run's last checkpoint (every ``checkpoint_every`` steps). A lock file in the run
directory keeps a retry from training beside a straggler of the same run. Ctrl-C in the driver writes a
stop file the tasks check between steps: each checkpoints, returns "interrupted", and is recorded.
If the driver dies, Ray ends the job's tasks; re-running the study resumes from the store and the
checkpoints, exactly like the local executor.

A run given ``nproc`` > 1 processes (the held-out run of `run --holdout-nproc K`) is trained by Ray Train:
a ``TorchTrainer`` of K workers, which sets up the torch.distributed group (gloo, or NCCL with a GPU per
worker) and the RANK/WORLD_SIZE/LOCAL_RANK the trainer reads, so each worker runs the same train() as a
torchrun rank (train/distributed.py). Ray Train restarts a failed worker group (``max_retries`` times) and
the run resumes from its checkpoint.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable

from ..atomic import waiting_lock
from ..errors import ScalingLabError
from ..lock import LOCK_NAME
from ..model.accounting import flops_per_token, param_breakdown
from ..plan.spec import RunSpec
from ..train.result import RunResult
from .executor import Job

STOP_FILE = ".stop"  # in the runs directory: present = the driver asked every task to stop


def import_ray():
    try:
        import ray
    except ImportError:
        raise ScalingLabError("the Ray executor needs Ray: pip install 'scalinglab[ray]' (or pip install ray)"
                              ) from None
    return ray


def gpu_fraction(spec: RunSpec, gpu_memory_gb: float = 80.0, step: int = 16) -> float:
    """The share of one GPU a run asks for, from its training memory: fp32 weights, gradients and two Adam
    moments (16 bytes per parameter) plus activations (~34 bytes x batch x context x width per block, in
    bf16, Korthikanti et al. 2022 without the attention-score term) and fp32 logits; 1.5x headroom,
    rounded up to 1/``step`` of a GPU, at most one. Several small runs then share one GPU."""
    s = spec.shape
    tokens = spec.batch_size * s.n_ctx
    need = (16 * param_breakdown(s)["total"] + 34 * tokens * s.d_model * s.n_layer
            + 2 * 4 * tokens * s.vocab_size) * 1.5
    share = math.ceil(step * need / (gpu_memory_gb * 2 ** 30)) / step
    return float(min(1.0, max(1.0 / step, share)))


def _gather(ray, refs: dict, stop_files, on_result) -> bool:
    """Each task's result to ``on_result`` as it ends; Ctrl-C: the stop files written (each run
    checkpoints at its next step and returns), the replies collected for up to 10 minutes, the rest
    cancelled. -> False when stopped."""
    pending, stopped = list(refs), False
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in done:
                on_result(_collect(ray, ref, refs[ref]))
    except KeyboardInterrupt:
        stopped = True
        for f in stop_files:
            f.touch()
        # a step, a checkpoint and the reply; queued tasks return at once
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            try:
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            except KeyboardInterrupt:  # a second Ctrl-C: leave the rest to their checkpoints
                break
            for ref in done:
                on_result(_collect(ray, ref, refs[ref]))
        for ref in pending:
            ray.cancel(ref, force=True)
    finally:
        for f in stop_files:
            f.unlink(missing_ok=True)
    return not stopped


def _train_task(spec: RunSpec, run_dir: str, shards, threads: int, device: str, branching: dict) -> RunResult:
    """One run inside a Ray worker: lock the run directory, train (resuming from its checkpoint)."""
    from ..train.loop import train
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    stop_file = out.parent / STOP_FILE
    with waiting_lock(out / LOCK_NAME):  # a straggler of this run (a worker not yet reaped) finishes first
        return train(spec, out, threads=threads, device=device, shards=shards,
                     should_stop=stop_file.exists, **branching)


def _ray_train_worker(config: dict) -> None:
    """One rank of a data-parallel run under Ray Train, which has set up the process group and the
    torchrun variables: train() as under torchrun; rank 0 locks the run directory and writes its files."""
    from contextlib import nullcontext

    import ray
    import ray.train

    from ..train.loop import train
    job, out = config["job"], Path(config["job"].run_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank = ray.train.get_context().get_world_rank()
    with waiting_lock(out / LOCK_NAME) if rank == 0 else nullcontext():
        train(job.spec, out, threads=config["threads"], device=config["device"],
              shards=ray.get(config["shards"]), should_stop=(out.parent / STOP_FILE).exists,
              fsdp=config["fsdp"], compile_model=config["compile_model"],
              **job.train_kwargs())  # rank 0 writes result.json when it ends


class RayExecutor:
    """Runs jobs as Ray tasks. ``address`` None starts a local cluster sized to this machine (shut down by
    ``close``); otherwise joins that cluster ("auto", "ray://host:10001", "host:6379").

    ``cpus_per_run`` CPUs (= torch threads) per run; None gives each run a whole node's CPUs (the held-out
    run). With ``device`` cuda, or auto on a cluster with GPUs, each run asks for ``gpu_fraction`` of a GPU.
    ``nproc`` > 1: each run data-parallel over that many Ray Train workers, a node's CPUs shared among
    them or a GPU each (``fsdp``: the model sharded over them), one run after another.
    """

    def __init__(self, address: str | None = None, *, cpus_per_run: int | None = 1, device: str = "auto",
                 max_retries: int = 3, gpu_memory_gb: float = 80.0, num_cpus: int | None = None,
                 nproc: int = 1, fsdp: bool = False, compile_model: bool = False):
        self.address, self.cpus_per_run, self.device = address, cpus_per_run, device
        self.max_retries, self.gpu_memory_gb, self.num_cpus = max_retries, gpu_memory_gb, num_cpus
        self.nproc, self.fsdp, self.compile_model = nproc, fsdp, compile_model
        self.started = False

    # -- the cluster ------------------------------------------------------------------------------------
    def connect(self):
        ray = import_ray()
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            try:
                if self.address is None:
                    ray.init(num_cpus=self.num_cpus or os.cpu_count() or 1, **kw)
                    self.started = True
                else:
                    _reachable(self.address)
                    ray.init(address=self.address, **kw)
            except ConnectionError as exc:
                raise ScalingLabError(f"cannot reach the Ray cluster at {self.address}: {exc}") from None
        return ray

    def close(self) -> None:
        """Shut down the local cluster this executor started (a joined cluster is left running)."""
        if self.started:
            import_ray().shutdown()
            self.started = False

    def _cluster(self, ray) -> tuple[int, bool]:
        """(CPUs of the largest live node, whether runs go on GPUs)."""
        gpus = ray.cluster_resources().get("GPU", 0.0) if self.device in ("auto", "cuda") else 0.0
        if self.device == "cuda" and not gpus:
            raise ScalingLabError("`device` cuda: the Ray cluster has no GPUs", params=("device",))
        node_cpus = max(int(n["Resources"].get("CPU", 1)) for n in ray.nodes() if n.get("Alive"))
        return node_cpus, bool(gpus)

    # -- the protocol -----------------------------------------------------------------------------------
    def run(self, jobs: list[Job], on_result: Callable[[RunResult], None]) -> bool:
        if not jobs:
            return True
        ray = self.connect()
        from ..data.shards import spec_shards
        jobs = sorted(jobs, key=lambda j: -j.spec.n_tokens * flops_per_token(j.spec.shape, "chinchilla"))
        stop_files = {Path(j.run_dir).parent / STOP_FILE for j in jobs}
        for f in stop_files:  # a stop left by a driver that died must not stop this one
            f.unlink(missing_ok=True)
        shard_refs = {}
        for job in jobs:  # into the object store once per corpus
            key = _shard_key(job.spec)
            if key not in shard_refs:
                shard_refs[key] = ray.put(_in_memory(spec_shards(job.spec)))
        node_cpus, on_gpu = self._cluster(ray)
        if self.nproc > 1:
            return self._run_data_parallel(jobs, shard_refs, node_cpus, on_gpu, stop_files, on_result)
        task = ray.remote(_train_task)
        cpus = node_cpus if self.cpus_per_run is None else self.cpus_per_run  # None: a whole node
        device = "cuda" if on_gpu else "cpu"
        refs = {}
        for job in jobs:
            gpus = gpu_fraction(job.spec, self.gpu_memory_gb) if on_gpu else 0.0
            ref = task.options(num_cpus=cpus, num_gpus=gpus, max_retries=self.max_retries,
                               retry_exceptions=False, name=f"scalinglab-run-{job.spec.run_id}").remote(
                job.spec, job.run_dir, shard_refs[_shard_key(job.spec)], cpus, device,
                {**job.train_kwargs(), "compile_model": self.compile_model})
            refs[ref] = job
        return _gather(ray, refs, stop_files, on_result)


    def _run_data_parallel(self, jobs, shard_refs, node_cpus, on_gpu, stop_files, on_result) -> bool:
        """Each job through a Ray Train TorchTrainer of ``nproc`` workers, one after another. fit() runs in
        a thread so that Ctrl-C here reaches the workers as the stop file, as for tasks."""
        import threading

        try:
            from ray.train import FailureConfig, RunConfig, ScalingConfig
            from ray.train.torch import TorchTrainer
        except ImportError as exc:
            raise ScalingLabError(f"a data-parallel run on Ray needs Ray Train ({exc}): pip install "
                                  "'scalinglab[ray]' (or pip install 'ray[train]')") from None
        threads = max(1, node_cpus // self.nproc)
        try:
            for job in jobs:
                trainer = TorchTrainer(
                    _ray_train_worker,
                    train_loop_config={"job": job, "threads": threads, "device": "cuda" if on_gpu else "cpu",
                                       "fsdp": self.fsdp, "compile_model": self.compile_model,
                                       "shards": shard_refs[_shard_key(job.spec)]},
                    scaling_config=ScalingConfig(num_workers=self.nproc, use_gpu=on_gpu,
                                                 resources_per_worker={"CPU": 0 if on_gpu else threads}),
                    run_config=RunConfig(name=f"scalinglab-run-{job.spec.run_id}",
                                         storage_path=str(Path(job.run_dir).resolve().parent / ".ray-train"),
                                         failure_config=FailureConfig(max_failures=self.max_retries)))
                box = {}
                fit = threading.Thread(target=lambda box=box, trainer=trainer:
                                       box.update(error=_fit(trainer)), daemon=True)
                fit.start()
                try:
                    while fit.is_alive():
                        fit.join(timeout=0.5)
                except KeyboardInterrupt:
                    for f in stop_files:
                        f.touch()
                    fit.join(timeout=600)  # a step, a checkpoint, the workers' reply
                    on_result(_written(job) or RunResult(
                        run_id=job.spec.run_id, status="interrupted",
                        reason="stopped; re-run to resume from the checkpoint"))
                    return False
                why = box.get("error") or "no result written"
                on_result(_written(job) or RunResult.failure(job.spec.run_id,
                                                             f"its Ray Train workers failed: {why}"))
        finally:
            for f in stop_files:
                f.unlink(missing_ok=True)
        return True


def _fit(trainer) -> str:
    """Run the trainer; '' when it ended well, else why not (the worker group failed on every retry)."""
    try:
        result = trainer.fit()
    except Exception as exc:
        text = str(exc).strip()
        return f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}"
    return f"{result.error}" if result.error else ""


def _written(job: Job) -> RunResult | None:
    """The result rank 0 wrote into the run directory (a finished or failed run; none when stopped)."""
    from ..train.result import read_result
    return read_result(Path(job.run_dir) / "result.json", job.spec.run_id)


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on a HOST:PORT nobody listens on (ray.init would retry for minutes)."""
    import socket
    if address == "auto":
        return  # Ray finds a cluster started on this machine or says there is none
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ScalingLabError(f"`address` {address!r}: expected auto, HOST:PORT or ray://HOST:PORT",
                              params=("address",))
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ScalingLabError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _shard_key(spec) -> tuple:
    return spec.data, spec.tokenizer, spec.val_data


def _in_memory(shards):
    """The shards with their token memmaps read into memory: what goes into the object store."""
    import dataclasses

    import numpy as np
    owner = shards.validation_source
    return dataclasses.replace(shards, train=np.ascontiguousarray(shards.train),
                               validation=np.ascontiguousarray(shards.validation),
                               validation_source=None if owner is None else np.ascontiguousarray(owner))


def _collect(ray, ref, job: Job) -> RunResult:
    """A task's RunResult; a run whose task failed for good becomes a failed run with the reason."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return RunResult.failure(job.spec.run_id, f"{type(cause).__name__}: {cause}")
    except ray.exceptions.RayError as exc:  # the worker died on every retry, or the node was lost
        return RunResult.failure(job.spec.run_id,
                                 f"its Ray worker died and retries ran out: {type(exc).__name__}")
