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
    flops_per_s: float = 0.0   # achieved: exact training FLOPs per second of training, all processes
    mfu: float = math.nan      # flops_per_s over the measured matmul peak of the processes (train/mfu.py)
    processes: int = 1         # data-parallel processes (torch.distributed) the run last trained with
    device: str = "cpu"
    evals: list = field(default_factory=list)
    # the training curve, densely: {step, lr, loss} at most CURVE_POINTS times, each over >= CURVE_TOKENS
    # tokens, loss the mean raw batch loss since the previous point, lr that of its last step (train/loop.py)
    curve: list = field(default_factory=list)
    # the final loss estimated from the curve so far at ESTIMATE_AT fractions of the run (fit/curvelaws/
    # estimate_final: step, fraction, final, interval, converged, warnings, decay_from); runs shorter than
    # ESTIMATE_AFTER_S seconds make none
    estimates: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def failure(cls, run_id: str, reason: str) -> "RunResult":
        """A run that produced no result: its worker raised, or died."""
        return cls(run_id=run_id, status="failed", reason=reason)


def _digest(d: dict) -> str:
    import hashlib

    from ..jsonsafe import dumps
    return hashlib.sha256(dumps({k: v for k, v in d.items() if k != "digest"},
                                sort_keys=True).encode()).hexdigest()


def write_result(path, result: RunResult) -> None:
    """result.json, written atomically, with a digest of its content (an edited or torn file is noticed)."""
    from ..atomic import write_text
    from ..jsonsafe import dumps
    d = result.to_dict()
    write_text(path, dumps(d | {"digest": _digest(d)}))


_NUMBERS = ("val_loss", "bits_per_byte", "flops", "flops_6nd", "lr", "wall_time_s", "eval_time_s",
            "tokens_per_s", "flops_per_s", "mfu")
_INTS = ("n_params_total", "n_params_nonembed", "n_tokens", "steps", "processes")


def read_result(path, run_id: str) -> RunResult | None:
    """The finished result in ``path`` for ``run_id``, or None when there is none to trust.

    A file that is torn, not this run's, of unknown fields or types, or whose digest does not match its
    content (edited) is set aside as ``result.json.bad`` with a warning, and the run trains again."""
    import json
    import sys
    from pathlib import Path
    path = Path(path)
    if not path.exists():
        return None
    problem = None
    try:
        d = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        d, problem = None, f"unreadable ({type(exc).__name__})"
    if problem is None:
        known = {f for f in RunResult.__dataclass_fields__} | {"digest"}
        if not isinstance(d, dict):
            problem = "not a JSON object"
        elif set(d) - known:
            problem = f"unknown field(s) {', '.join(sorted(set(d) - known))}"
        elif d.get("run_id") != run_id:
            # another run's result: not ours to judge (train refuses a foreign checkpoint the same way)
            return None
        elif "digest" in d and d["digest"] != _digest(d):
            problem = "its content does not match its digest (edited or damaged)"
        elif not all(isinstance(d.get(k, 0), (int, float)) or d.get(k) is None for k in _NUMBERS + _INTS) \
                or not isinstance(d.get("evals", []), list) \
                or d.get("status") not in ("done", "failed", "interrupted"):
            problem = "fields of the wrong type"
    if problem is not None:
        aside = path.with_name(path.name + ".bad")
        path.replace(aside)
        print(f"warning: {path} is {problem}; set aside as {aside.name}, the run trains again",
              file=sys.stderr)
        return None
    d = {k: (math.nan if v is None and k in _NUMBERS else v) for k, v in d.items() if k != "digest"}
    return RunResult(**d)
