"""The executor protocol: run jobs somewhere, hand each RunResult back to the caller (the one store writer).

Only typed values cross it: a ``Job`` (a RunSpec and where to train it) in, a ``RunResult`` out; a run
that crashed or whose worker died comes back as ``RunResult.failure(run_id, reason)``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from ..fit.curvelaws.estimates import RunEstimator
from ..plan.spec import RunSpec
from ..train.progress import ProgressFile
from ..train.result import RunResult


@dataclass(frozen=True)
class Job:
    """One run to train in ``run_dir``. A WSD trunk keeps snapshots after the steps in ``snapshot_at``; a
    branch starts from the snapshot ``init_from`` when it is there (train/loop.py)."""

    spec: RunSpec
    run_dir: str
    snapshot_at: tuple[int, ...] = ()
    init_from: str | None = None

    def train_kwargs(self) -> dict:
        """TrainOptions fields of this job; its final loss estimated mid-run from its own curve, its progress
        written to run_dir/progress.json for the driver to print (train/progress.py)."""
        return {"snapshot_at": self.snapshot_at, "init_from": self.init_from, "estimator": RunEstimator(),
                "progress": ProgressFile(self.run_dir)}


class Executor(Protocol):
    def run(self, jobs: list[Job], on_result: Callable[[RunResult], None]) -> bool:
        """Run every job; call on_result(RunResult) in the caller's process as each ends.

        Returns False when stopped early (Ctrl-C): finished runs were reported, the rest checkpointed.
        """
        ...

    def close(self) -> None:
        """Release what the executor holds (worker pools, a Ray cluster it started)."""
        ...
