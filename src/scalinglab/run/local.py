"""Local executor: K worker processes on this machine, threads per worker = cores / K.

Never oversubscribe: two 2-thread torch processes on 2 cores ran 4-6x slower than two 1-thread ones.
On a machine with GPUs (device auto or cuda) the workers are packed onto the GPUs instead, ``runs_per_gpu``
per GPU, each worker bound to one (cuda:i): tiny runs leave a GPU mostly idle (on an H100 four sharing one
gave 2.8x the throughput of one; the gpu-small preset's first budget on an H200, 1.29x at eight:
docs/gpu.md). The default K comes from the largest job's training memory and the GPU's free memory (at
most 8).
Jobs go largest first so the pool finishes together. Ctrl-C sends SIGTERM to the workers, which write a
checkpoint at the end of their current step and report the run as interrupted.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from typing import Callable

from ..model.accounting import flops_per_token, memory_needed
from ..train.result import RunResult
from .executor import Job


def _worker(jobs, results, threads: int, device: str, compile_model: bool = False) -> None:
    from ..train.loop import train  # torch is imported in the worker, not the driver
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; SIGTERM stops a run cleanly
    die_with_parent()
    while True:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            return
        try:
            res = train(job.spec, job.run_dir, threads=threads, device=device, compile_model=compile_model,
                        **job.train_kwargs())
        except Exception as exc:  # one bad run must not take the study down: report it as failed
            res = RunResult.failure(job.spec.run_id, f"{type(exc).__name__}: {exc}")
        results.put(res)
        if res.status == "interrupted":
            return


def die_with_parent() -> None:
    """Linux: SIGTERM this worker when its driver dies, even by SIGKILL, so no run trains on unrecorded
    (and the writer lock, released with the driver, never lets a second study share a live worker)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the driver died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the driver's SIGTERM handling still stops workers on a clean stop


MAX_RUNS_PER_GPU = 8  # the H100 probe: eight tiny runs saturated one GPU
GPU_MEMORY_SHARE = 0.8  # of the free memory, for the packed runs together


def runs_per_gpu(jobs: list[Job], free_bytes: int) -> int:
    """How many of these runs fit one GPU at once: its free memory over the largest run's need."""
    need = max(memory_needed(j.spec.shape, j.spec.batch_size, j.spec.precision) for j in jobs)
    return max(1, min(MAX_RUNS_PER_GPU, int(GPU_MEMORY_SHARE * free_bytes // need)))


def gpu_slots(n_gpus: int, per_gpu: int) -> list[str]:
    """One device per worker: runs_per_gpu workers on each GPU, spread round-robin."""
    return [f"cuda:{i % n_gpus}" for i in range(n_gpus * per_gpu)]


def _visible_gpus(device: str) -> tuple[int, int]:
    """(GPUs, free bytes of the first) when this executor should pack runs onto GPUs, else (0, 0). torch
    is imported only where a GPU may exist: a CPU driver stays light."""
    if device == "cpu" or (device == "auto" and not os.path.exists("/dev/nvidiactl")):
        return 0, 0
    import torch
    if not torch.cuda.is_available():
        return 0, 0
    return torch.cuda.device_count(), torch.cuda.mem_get_info(0)[0]


def _ddp_worker(job: Job, threads: int, device: str, fsdp: bool = False, compile_model: bool = False
                ) -> RunResult:
    """One rank of a data-parallel run (torchrun's launcher set RANK, WORLD_SIZE, LOCAL_RANK); it dies with
    the driver, as a pool worker does."""
    from ..train.loop import train
    die_with_parent()
    return train(job.spec, job.run_dir, threads=threads, device=device, fsdp=fsdp,
                 compile_model=compile_model, **job.train_kwargs())


def train_data_parallel(job: Job, nproc: int, threads: int, device: str, fsdp: bool = False,
                        compile_model: bool = False) -> RunResult:
    """``job`` trained over ``nproc`` processes on this machine through torchrun's launcher (no restarts):
    rank 0's result, a failure naming the rank that ended, or 'interrupted' when the launcher was
    signalled (every rank stopped at a step boundary and rank 0 checkpointed)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from ..train.distributed import how_they_ended, launch_here
    try:
        return launch_here(nproc, _ddp_worker, job, threads, device, fsdp, compile_model)[0]
    except SignalException as exc:
        raise KeyboardInterrupt from exc  # the executor reports the run as interrupted
    except ChildFailedError as exc:
        return RunResult.failure(job.spec.run_id, "a process of the data-parallel run ended "
                                 f"({how_they_ended(exc.failures)})")


# One run on a CPU machine (the held-out run): one single-threaded process per core, never threads.
# benchmarks/threads_vs_processes.py, 2 cores (docs/training.md): the default study's held-out shape idle
# 23.0k tok/s at 1 x 1 thread, 37.0k at 1 x 2 threads, 36.6k at 2 processes (DDP); beside one busy
# neighbour 22.1k, 13.1k (threads collapse), 20.3k. The debug shape (0.15 GFLOP a step) idle 71.9k, 89.9k,
# 50.3k: DDP's all-reduce costs more than half a step there, so a run that small trains in one process.
DDP_MIN_FLOPS_PER_RANK = 1e9  # training FLOPs of one step on one rank below which one process is faster
BUSY_PROBE_SECONDS = 0.5


def busy_cores(seconds: float = BUSY_PROBE_SECONDS) -> float:
    """Cores busy with other work right now (Linux /proc/stat over ``seconds``; 0 where unknown)."""
    def sample():
        with open("/proc/stat") as fh:
            values = [float(v) for v in fh.readline().split()[1:]]
        return sum(values), values[3] + (values[4] if len(values) > 4 else 0.0)  # total, idle + iowait
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, (1.0 - (i1 - i0) / max(t1 - t0, 1e-9)) * (os.cpu_count() or 1))


def processes_for_one_run(spec, cores: int) -> int:
    """How many single-threaded processes train one run on a CPU machine: the cores, when each rank still
    gets DDP_MIN_FLOPS_PER_RANK of a step and the batch splits evenly; else 1. It depends on the machine
    and the run, never on the load of the moment: the number of processes sets the float order of the
    gradient sums, so a run's numbers stay those of its machine however busy it was (a busy neighbour costs
    DDP 8% against one process: benchmarks/threads_vs_processes.py)."""
    step_flops = spec.batch_size * spec.shape.n_ctx * flops_per_token(spec.shape, "chinchilla")
    k = max(1, cores)
    while k > 1 and (spec.batch_size % k or step_flops / k < DDP_MIN_FLOPS_PER_RANK):
        k -= 1
    return k


class LocalExecutor:
    def __init__(self, workers: int | None = None, cores: int | None = None, device: str = "auto",
                 runs_per_gpu: int | None = None, nproc: int | None = 1, fsdp: bool = False,
                 compile_model: bool = False, log: Callable[[str], None] | None = None):
        """``nproc`` > 1: each run data-parallel over that many processes (torch.distributed, one after
        another; a GPU each where there are GPUs): for a held-out run far larger than the grid's; ``fsdp``
        shards its model over them (train/distributed.py). ``nproc`` None: chosen per run on a CPU machine
        (``processes_for_one_run``: the free cores, single-threaded; ``log`` says what was chosen).
        ``compile_model``: every run through torch.compile."""
        self.device = device
        self.cores = cores or os.cpu_count() or 1
        self.workers = max(1, min(workers or self.cores, self.cores))
        self.threads = max(1, self.cores // self.workers)
        self.runs_per_gpu = runs_per_gpu
        self.nproc, self.fsdp, self.compile_model = nproc, fsdp, compile_model
        self.log = log or (lambda msg: None)

    def _devices(self, jobs: list[Job]) -> list[str]:
        """The device of each worker: packed GPU slots, or the executor's device once per CPU worker."""
        n_gpus, free = _visible_gpus(self.device)
        if not n_gpus or (self.device.startswith("cuda:")):
            return [self.device] * min(self.workers, len(jobs))
        per_gpu = self.runs_per_gpu or runs_per_gpu(jobs, free)
        slots = gpu_slots(n_gpus, per_gpu)[:len(jobs)]
        self.log(f"  packing: {len(slots)} worker(s) on {n_gpus} GPU(s), {per_gpu} runs per GPU"
                 + ("" if self.runs_per_gpu else f" (free memory {free / 2 ** 30:.1f} GiB over the largest "
                                                  "run's need)"))
        return slots

    def close(self) -> None:
        """Nothing held between calls: each run() starts and joins its own workers."""

    def run(self, jobs: list[Job], on_result: Callable[[RunResult], None]) -> bool:
        if not jobs:
            return True
        if self.nproc is None:
            return self._run_placed(jobs, on_result)
        if self.nproc > 1:
            return self._run_data_parallel(jobs, on_result)
        return self._run_pool(jobs, on_result)

    def _run_pool(self, jobs: list[Job], on_result: Callable[[RunResult], None]) -> bool:
        """The workers, each taking the next job (largest first) until none is left."""
        jobs = sorted(jobs, key=lambda j: -j.spec.n_tokens * flops_per_token(j.spec.shape, "chinchilla"))
        ctx = mp.get_context("spawn")
        job_q, res_q = ctx.Queue(), ctx.Queue()
        for job in jobs:
            job_q.put(job)
        devices = self._devices(jobs)
        threads = self.threads if devices[0] == self.device else max(1, self.cores // len(devices))
        procs = [ctx.Process(target=_worker, args=(job_q, res_q, threads, device, self.compile_model),
                             daemon=True)
                 for device in devices]
        for p in procs:
            p.start()
        pending, stopped = len(jobs), False
        try:
            while pending:
                try:
                    result = res_q.get(timeout=0.5)
                except queue.Empty:
                    if not any(p.is_alive() for p in procs):
                        break  # every worker exited (e.g. killed): what is left stays planned
                    continue
                pending -= 1
                on_result(result)
        except KeyboardInterrupt:
            stopped = True
            for p in procs:
                if p.is_alive():
                    os.kill(p.pid, signal.SIGTERM)
            while True:  # every report, including those a worker sent just before it exited
                try:
                    on_result(res_q.get(timeout=0.5))
                except queue.Empty:
                    if not any(p.is_alive() for p in procs):
                        break
        for p in procs:
            p.join(timeout=5)
        return not stopped and pending == 0

    def _run_placed(self, jobs: list[Job], on_result: Callable[[RunResult], None]) -> bool:
        """Each run (one after another) on the free cores as single-threaded processes; with GPUs, as
        before (one process, the GPU)."""
        if _visible_gpus(self.device)[0]:
            return LocalExecutor(1, self.cores, self.device, self.runs_per_gpu, 1, self.fsdp,
                                 self.compile_model).run(jobs, on_result)
        for job in jobs:
            busy = busy_cores()
            k = processes_for_one_run(job.spec, self.cores)
            self.log(f"  {job.spec.run_id}: {k} single-threaded process{'es (DDP)' if k > 1 else ''} on "
                     f"{self.cores} cores" + (f" ({busy:.1f} busy with other work: slower, the same numbers)"
                                              if busy >= 0.5 else ""))
            single = LocalExecutor(1, 1, "cpu", compile_model=self.compile_model)
            ok = (single._run_pool([job], on_result) if k == 1 else
                  LocalExecutor(1, k, "cpu", nproc=k, compile_model=self.compile_model)
                  ._run_data_parallel([job], on_result))
            if not ok:
                return False
        return True

    def _run_data_parallel(self, jobs: list[Job], on_result: Callable[[RunResult], None]) -> bool:
        n_gpus, _ = _visible_gpus(self.device)
        device = "cuda" if n_gpus else "cpu"
        threads = max(1, self.cores // self.nproc)
        for job in jobs:
            try:
                result = train_data_parallel(job, self.nproc, threads, device, self.fsdp, self.compile_model)
            except KeyboardInterrupt:
                on_result(RunResult(run_id=job.spec.run_id, status="interrupted",
                                    reason="stopped; re-run to resume from the checkpoint"))
                return False
            on_result(result)
        return True
