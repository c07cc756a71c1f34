"""RunResult: what one training run produced (no torch needed to read or store it)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, kw_only=True)
class RunResult:
    run_id: str
    status: str  # "done" | "failed" | "interrupted"
    reason: str = ""
    val_loss: float = math.nan
    bits_per_byte: float = math.nan
    n_params_total: int = 0
    n_params_nonembed: int = 0
    n_tokens: int = 0
    flops: float = 0.0
    flops_6nd: float = 0.0
    lr: float = 0.0
    steps: int = 0
    wall_time_s: float = 0.0
    eval_time_s: float = 0.0
    tokens_per_s: float = 0.0  # training tokens per second of training (evals excluded; wall_time_s has all)
    device: str = "cpu"
    evals: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)
