"""Study configuration: a TOML file or a named preset, read into a frozen, validated dataclass.

A study file has one table, ``[study]``; FLOPs are written as numbers (``budgets = [1e13, 3e13]``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..data.corpus import noisy_percent
from ..errors import ScalingLabError, plain


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """An IsoFLOP study: per budget, ``sizes_per_budget`` models spread over ``size_span``x around the
    expected optimum (N = sqrt(C / (6 * tokens_per_param))), each trained on the tokens that make its exact
    FLOPs equal the budget; then a held-out run at ``holdout_factor`` x the largest budget."""

    name: str = "study"
    budgets: tuple[float, ...] = (1e13, 3e13)
    sizes_per_budget: int = 5
    size_span: float = 16.0
    tokens_per_param: float = 20.0
    n_ctx: int = 128
    batch_size: int = 16
    tokenizer: str = "bytes"
    data: str = "embedded"
    val_data: str = ""  # the user's own validation files ("": data's own held-out documents)
    seed: int = 0
    n_eval_tokens: int = 16384
    min_steps: int = 40
    holdout_factor: float = 4.0
    bootstrap: int = 1000
    unique_tokens: int = 0  # > 0: every run draws from the first U training tokens only (repeated data)
    kind: str = "isoflop"   # or "batch-sweep": one model at several batch sizes, for B_crit (no budgets used)
    batch_sizes: tuple[int, ...] = ()  # batch-sweep: sequences per step
    sweep_params: float = 0.0          # batch-sweep: target N (total parameters)
    sweep_tokens: float = 0.0          # batch-sweep: tokens per run
    schedule: str = "cosine"  # "wsd": one stable run per size, cool-downs branched off it at every budget
    cooldown_frac: float = 0.2         # wsd: the share of each run's steps spent cooling down
    beta2: float = 0.95                # AdamW beta2 of every run
    warmup_steps: int = 0              # > 0: every run warms up over this many steps (0: the default)
    noise_seeds: int = 0               # seed repeats of one grid run: run-to-run noise of the held-out run
    precision: str = "fp32"            # or "bf16" (autocast): part of every run's spec (train/precision.py)
    # fit the whole-curve law per size at the end and estimate each run's end from its first 30% / 50%
    # (fit/curvelaws/; ~1 min for the default study); changes no run, so not part of the study id
    curve_laws: bool = True
    # the form of L(N, D) that predicts the held-out run and plans the allocations: "auto" (the lowest
    # backtest error on the grid, fit/backtest.py) or a form pinned; re-predicts, changes no grid run
    law: str = "auto"

    def __post_init__(self):
        self._check_types()
        if ":" in self.schedule:  # the grammar every command reads (plan/schedules.py Schedule)
            self._parse_schedule()
        object.__setattr__(self, "budgets", tuple(float(b) for b in self.budgets))
        object.__setattr__(self, "batch_sizes", tuple(int(b) for b in self.batch_sizes))
        bad = {
            "seed": self.seed < 0,
            "budgets": not self.budgets or any(not (math.isfinite(b) and b > 0) for b in self.budgets),
            "sizes_per_budget": self.sizes_per_budget < 3,
            "size_span": not self.size_span > 1,
            "tokens_per_param": not self.tokens_per_param > 0,
            "n_ctx": self.n_ctx < 8, "batch_size": self.batch_size < 2,
            "n_eval_tokens": self.n_eval_tokens < self.n_ctx, "min_steps": self.min_steps < 1,
            "holdout_factor": not self.holdout_factor >= 1, "bootstrap": self.bootstrap < 0,
            "unique_tokens": self.unique_tokens != 0 and self.unique_tokens <= 2 * self.n_ctx,
            "kind": self.kind not in ("isoflop", "batch-sweep"),
            "batch_sizes": self.kind == "batch-sweep" and (len(set(self.batch_sizes)) < 3
                                                           or min(self.batch_sizes) < 2),
            "sweep_params": self.kind == "batch-sweep" and not self.sweep_params > 0,
            "sweep_tokens": self.kind == "batch-sweep" and not self.sweep_tokens > 0,
            "schedule": self.schedule not in ("cosine", "wsd"),
            "cooldown_frac": not 0 < self.cooldown_frac <= 0.5,
            "beta2": not 0 <= self.beta2 < 1, "noise_seeds": self.noise_seeds < 0,
            "warmup_steps": self.warmup_steps < 0, "precision": self.precision not in ("fp32", "bf16"),
            "law": self.law not in LAW_CHOICES,
        }
        noisy_percent(self.data)  # an unknown `embedded:` variant: one error line naming it
        if self.tokenizer.endswith(".json") and "#sha256:" not in self.tokenizer:
            from ..data.tokenizer import pin_tokenizer  # a tokenizer file: pinned by its content, so that
            # the study id and every run's spec name the file's version (a changed file is a new study)
            object.__setattr__(self, "tokenizer", pin_tokenizer(self.tokenizer))
        for key, is_bad in bad.items():
            if is_bad:
                value = plain(getattr(self, key))
                raise ScalingLabError(f"study config: impossible value for {key}: {value}")

    def _parse_schedule(self) -> None:
        """``schedule = "wsd:cooldown=0.3"``: the same as schedule "wsd" with cooldown_frac 0.3 (one study
        id for both spellings). A study's runs end at the schedule's default floor: no ``min=``."""
        from .schedules import Schedule
        parsed = Schedule.parse(self.schedule)
        default = Schedule.parse(parsed.kind)
        if parsed.kind not in ("cosine", "wsd") or parsed.min_frac != default.min_frac:
            raise ScalingLabError(f"study config: schedule {self.schedule!r}: a study takes cosine, wsd or "
                                  "wsd:cooldown=F")
        object.__setattr__(self, "schedule", parsed.kind)
        if parsed.kind == "wsd":
            object.__setattr__(self, "cooldown_frac", parsed.cooldown_frac)

    def _check_types(self) -> None:
        """Each field of the type its default has (a TOML file can hold anything): one line naming it."""
        for f in dataclasses.fields(self):
            value, want = getattr(self, f.name), type(f.default)
            if want is tuple:
                ok = isinstance(value, (list, tuple)) and all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)
                if ok and f.name == "batch_sizes":
                    ok = all(float(x).is_integer() for x in value)
                expected = "a list of numbers"
            elif want is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
                expected = "an integer"
            elif want is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                expected = "a finite number"
            else:
                ok, expected = isinstance(value, want), f"a {want.__name__}"
            if not ok:
                raise ScalingLabError(f"study config: {f.name} must be {expected}, got {plain(value)}")
        if any(not math.isfinite(b) for b in self.budgets):
            raise ScalingLabError(f"study config: budgets must be finite numbers, got {list(self.budgets)}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self) | {"budgets": list(self.budgets), "batch_sizes": list(self.batch_sizes)}
        for key, default in NEWER_FIELDS.items():
            if d[key] == default:
                del d[key]  # study ids from before these fields existed stay the same
        return d

    @property
    def study_id(self) -> str:
        """Hash of everything that changes a run's numbers (the name does not)."""
        d = self.to_dict()
        d.pop("name")
        d.pop("curve_laws", None)
        d.pop("law", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


NEWER_FIELDS = {"unique_tokens": 0, "kind": "isoflop", "batch_sizes": [], "sweep_params": 0.0,
                "sweep_tokens": 0.0, "schedule": "cosine", "cooldown_frac": 0.2, "beta2": 0.95,
                "noise_seeds": 0, "warmup_steps": 0, "precision": "fp32", "curve_laws": True,
                "val_data": "", "law": "auto"}
LAW_CHOICES = ("auto", "chinchilla", "kaplan", "interaction", "farseer")  # fit/forms.py FORMS, and auto

PRESETS: dict[str, dict] = {
    # CI-sized (the study, resume and Ray tests share it): two tiny budgets near the family's smallest
    # model, 7 WSD runs of 5-18 s, one seed repeat, the held-out run at 1.5x: ~70 s on 2 cores.
    "debug": dict(name="debug", budgets=(1.2e11, 3e11), sizes_per_budget=4, size_span=6.0,
                  tokens_per_param=10.0, n_ctx=64, batch_size=8, n_eval_tokens=4096, min_steps=30,
                  bootstrap=200, schedule="wsd", beta2=0.99, noise_seeds=1, holdout_factor=1.5,
                  curve_laws=False),  # ~16 s of fits: `fit STUDY --law multi-power` does them on demand
    # The README's main job, <= 20 minutes on 2 CPU cores including the held-out run (docs/study.md): an
    # N x D grid of WSD runs over an 8x budget range, each size's shorter runs branched off its longest.
    # Six budgets (sqrt(2) apart below 2e12): the backtest that chooses the law gets 3 compute cuts, not
    # the single one of the four budgets 5e11..4e12 (+25% grid compute, one more cool-down per size).
    "default": dict(name="default", budgets=(5e11, 7.07e11, 1e12, 1.41e12, 2e12, 4e12), sizes_per_budget=7,
                    size_span=12.0,
                    tokens_per_param=40.0, min_steps=300, n_ctx=128, batch_size=16, n_eval_tokens=16384,
                    bootstrap=1000, schedule="wsd", beta2=0.99, noise_seeds=2),
    # Repeated data: every run sees only the first 500k training tokens, for 2-23 epochs (Muennighoff et al.
    # 2023).
    "data-constrained": dict(name="data-constrained", budgets=(1e12, 2e12, 4e12), sizes_per_budget=4,
                             size_span=6.0, tokens_per_param=60.0, min_steps=300, n_ctx=128, batch_size=16,
                             n_eval_tokens=16384, bootstrap=200, unique_tokens=500_000),
    # B_crit two ways on the embedded corpus: one ~74k-parameter model at 5 batch sizes, constant LR after
    # warm-up (min_lr_frac 1) so that steps-to-loss compare across batch sizes; noise scale recorded too.
    "batch-sweep": dict(name="batch-sweep", kind="batch-sweep", batch_sizes=(4, 8, 16, 32, 64),
                        sweep_params=74e3, sweep_tokens=3e6, n_ctx=128, n_eval_tokens=16384, bootstrap=200),
    # For a GPU: larger context, batch and budgets.
    # The data-quality question (docs/study.md): the same grid on the embedded corpus and on its noisy
    # variant (25% of the training bytes in documents with 20% of their characters corrupted; validation
    # clean), then `scalinglab compare CLEAN NOISY` for the compute multiplier. ~N min each on 2 cores.
    "data-quality": dict(name="data-quality", budgets=(5e11, 1e12, 2e12), sizes_per_budget=6, size_span=12.0,
                         tokens_per_param=40.0, min_steps=300, n_ctx=128, batch_size=16, n_eval_tokens=16384,
                         bootstrap=1000, schedule="wsd", beta2=0.99, holdout_factor=1.5, curve_laws=False),
    # One GPU window (<= 6 minutes on one H100-class GPU; docs/gpu.md sizes it): the default's design at 100x
    # its budgets and held-out budget, sizes centred on 10 tokens per parameter (the default study's own
    # fitted optimum near these budgets) and so ~15-20x the default's, bf16, runs packed onto the GPU; 12,288
    # tokens a step (6x the default's: a step costs ~10 ms of the CPU's dispatch whatever the size). Grid
    # runs reach 2.25 epochs of the embedded corpus' 23.5M training tokens, the held-out run ~2-4: what the
    # repetition costs, by the data-constrained law, is in docs/gpu.md (~0.2% of the loss).
    "gpu-quick": dict(name="gpu-quick", budgets=(5e13, 7.07e13, 1e14, 1.41e14, 2e14, 4e14),
                      sizes_per_budget=7, size_span=12.0, tokens_per_param=10.0, min_steps=200, n_ctx=256,
                      batch_size=48, n_eval_tokens=65536, bootstrap=1000, schedule="wsd", beta2=0.99,
                      noise_seeds=2, precision="bf16", curve_laws=False),
    "gpu-small": dict(name="gpu-small", budgets=(1e16, 3e16, 1e17, 3e17), sizes_per_budget=7, n_ctx=512,
                      batch_size=64, n_eval_tokens=262144, bootstrap=2000, precision="bf16"),
}


PRESETS["data-quality-noisy"] = PRESETS["data-quality"] | {"name": "data-quality-noisy",
                                                          "data": "embedded:noisy25"}


def load_study(source: str | None = None, preset: str | None = None) -> StudyConfig:
    """A preset by name, a TOML path, or the default preset when neither is given."""
    if source is not None and preset is not None:
        raise ScalingLabError("give a study file or a `preset`, not both", params=("preset",))
    if source is None:
        name = preset or "default"
        if name not in PRESETS:
            raise ScalingLabError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
        return StudyConfig(**PRESETS[name])
    path = Path(source)
    if not path.is_file():
        raise ScalingLabError(f"no study file {path}")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScalingLabError(f"{path} is not valid TOML: {exc}") from None
    table = doc.get("study")
    if not isinstance(table, dict) or set(doc) - {"study"}:
        raise ScalingLabError(f"{path}: expected one [study] table, found {', '.join(doc) or 'nothing'}")
    known = {f.name for f in dataclasses.fields(StudyConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ScalingLabError(f"{path}: unknown key {unknown[0]!r} in [study]; known keys: "
                              f"{', '.join(sorted(known))}")
    try:
        return StudyConfig(**table)
    except (TypeError, ValueError) as exc:
        raise ScalingLabError(f"{path}: bad value in [study]: {exc}") from None
