"""Local executor: K worker processes on this machine, threads per worker = cores / K.

Never oversubscribe: two 2-thread torch processes on 2 cores ran 4-6x slower than two 1-thread ones.
Jobs go largest first so the pool finishes together. Ctrl-C sends SIGTERM to the workers, which write a
checkpoint at the end of their current step and report the run as interrupted.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from typing import Callable

from ..model.accounting import flops_per_token
from ..train.result import RunResult
from .executor import Job


def _worker(jobs, results, threads: int, device: str) -> None:
    from ..train.loop import train  # torch is imported in the worker, not the driver
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; SIGTERM stops a run cleanly
    _die_with_parent()
    while True:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            return
        try:
            res = train(job.spec, job.run_dir, threads=threads, device=device, **job.train_kwargs())
        except Exception as exc:  # one bad run must not take the study down: report it as failed
            res = RunResult.failure(job.spec.run_id, f"{type(exc).__name__}: {exc}")
        results.put(res)
        if res.status == "interrupted":
            return


def _die_with_parent() -> None:
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


class LocalExecutor:
    def __init__(self, workers: int | None = None, cores: int | None = None, device: str = "auto"):
        self.device = device
        self.cores = cores or os.cpu_count() or 1
        self.workers = max(1, min(workers or self.cores, self.cores))
        self.threads = max(1, self.cores // self.workers)

    def close(self) -> None:
        """Nothing held between calls: each run() starts and joins its own workers."""

    def run(self, jobs: list[Job], on_result: Callable[[RunResult], None]) -> bool:
        if not jobs:
            return True
        jobs = sorted(jobs, key=lambda j: -j.spec.n_tokens * flops_per_token(j.spec.shape, "chinchilla"))
        ctx = mp.get_context("spawn")
        job_q, res_q = ctx.Queue(), ctx.Queue()
        for job in jobs:
            job_q.put(job)
        procs = [ctx.Process(target=_worker, args=(job_q, res_q, self.threads, self.device), daemon=True)
                 for _ in range(min(self.workers, len(jobs)))]
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
