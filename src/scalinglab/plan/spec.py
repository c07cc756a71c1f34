"""RunSpec: everything that determines a run's numbers, frozen; run_id is a stable hash of it."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from ..errors import ScalingLabError
from ..model.accounting import ModelShape


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """One training run. Runtime choices that do not change the numbers (threads, progress) live elsewhere.

    ``lr`` None means the default rule of train.optim.default_lr for this width; ``warmup_steps`` None means
    train.optim.default_warmup. ``n_tokens`` is rounded up to whole steps of batch_size x n_ctx tokens; the
    run records the tokens it actually saw.
    """

    shape: ModelShape
    n_tokens: int
    batch_size: int = 32
    lr: float | None = None
    warmup_steps: int | None = None
    min_lr_frac: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.95
    seed: int = 0
    data: str = "embedded"
    tokenizer: str = "bytes"
    n_eval_tokens: int = 32768
    n_evals: int = 12
    noise_every: int = 10
    checkpoint_every: int = 250
    unique_tokens: int | None = None  # train on the first U tokens only, repeated (data-constrained runs)
    # or "wsd": warm-up, stable, cool-down over the last cooldown_frac; "piecewise": lr_points, ((step,
    # fraction of the peak LR), ...) joined by straight lines (plan/schedules.py)
    schedule: str = "cosine"
    cooldown_frac: float = 0.2
    lr_points: tuple = ()
    precision: str = "fp32"  # or "bf16": bf16 autocast (train/precision.py; it changes the loss)
    extra: dict = field(default_factory=dict)
    val_data: str = ""  # the user's own validation files (data/corpus.py load_corpus); "": data's held-out

    def __post_init__(self):
        checks = {"n_tokens": self.n_tokens > 0, "batch_size": self.batch_size >= 1,
                  "warmup_steps": self.warmup_steps is None or self.warmup_steps >= 1,
                  "min_lr_frac": 0 <= self.min_lr_frac <= 1, "weight_decay": self.weight_decay >= 0,
                  "grad_clip": self.grad_clip > 0, "n_eval_tokens": self.n_eval_tokens >= 1,
                  "n_evals": self.n_evals >= 1, "noise_every": self.noise_every >= 0,
                  "checkpoint_every": self.checkpoint_every >= 1,
                  "lr": self.lr is None or (math.isfinite(self.lr) and self.lr > 0),
                  "unique_tokens": self.unique_tokens is None or self.unique_tokens > 2 * self.shape.n_ctx,
                  "schedule": self.schedule in ("cosine", "wsd", "piecewise"),
                  "lr_points": (self.schedule == "piecewise") == bool(self.lr_points),
                  "cooldown_frac": 0 < self.cooldown_frac <= 1, "beta1": 0 <= self.beta1 < 1,
                  "beta2": 0 <= self.beta2 < 1, "precision": self.precision in ("fp32", "bf16")}
        for name, ok in checks.items():
            if not ok:
                raise ScalingLabError(f"run spec: bad {name} = {getattr(self, name)!r}")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.shape.n_ctx

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.n_tokens / self.tokens_per_step))

    @property
    def n_epochs(self) -> float:
        """Passes over the unique data (1.0 when the run draws from the whole split)."""
        return self.n_tokens / self.unique_tokens if self.unique_tokens else 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = self.shape.to_dict()
        if d["unique_tokens"] is None:
            del d["unique_tokens"]  # so specs (and run_ids) from before the field existed are unchanged
        if d["schedule"] == "cosine":
            del d["schedule"], d["cooldown_frac"]  # likewise
        if d["lr_points"]:
            d["lr_points"] = [list(p) for p in self.lr_points]
        else:
            del d["lr_points"]  # likewise
        if d["precision"] == "fp32":
            del d["precision"]  # likewise
        if not d["val_data"]:
            del d["val_data"]  # likewise
        return d

    @property
    def branch_key(self) -> str:
        """Runs with equal keys differ only in length (and eval/checkpoint cadence): under a WSD schedule a
        shorter one's steps before its cool-down are a longer one's, so it may start from that snapshot."""
        d = self.to_dict()
        for k in ("n_tokens", "checkpoint_every", "n_evals"):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        d = dict(d)
        d["shape"] = ModelShape(**d["shape"])
        if "lr_points" in d:
            d["lr_points"] = tuple((int(s), float(f)) for s, f in d["lr_points"])
        return cls(**d)

    @property
    def run_id(self) -> str:
        """Stable across processes and versions: sha256 of the canonical JSON, minus checkpoint cadence."""
        d = self.to_dict()
        d.pop("checkpoint_every")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]
