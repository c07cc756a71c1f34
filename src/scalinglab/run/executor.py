"""The executor protocol: run jobs somewhere, hand each result back to the caller (the one store writer)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from ..plan.spec import RunSpec


@dataclass(frozen=True)
class Job:
    spec: RunSpec
    run_dir: str


class Executor(Protocol):
    def run(self, jobs: list[Job], on_result: Callable[[dict], None]) -> bool:
        """Run every job; call on_result(RunResult dict) in the caller's process as each ends.

        Returns False when stopped early (Ctrl-C): finished runs were reported, the rest checkpointed.
        """
        ...
