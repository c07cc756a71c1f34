"""train(spec) -> RunResult: one run, resumable, recording what a scaling study needs.

Per eval row: step, tokens, exact FLOPs (Appendix F), train_loss, val_loss, bits_per_byte, lr, and the
gradient noise scale B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018, App. A.1) estimated from squared
gradient norms at two batch sizes since the previous eval.
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__, atomic
from ..data.loader import batch_offsets, eval_offsets, windows
from ..data.shards import Shards, spec_shards
from ..errors import ScalingLabError
from ..model.accounting import flops_per_token, memory_needed, param_breakdown
from ..model.gpt import GPT
from ..plan.schedules import of_run, warmup_of
from ..plan.spec import RunSpec
from . import checkpoint, distributed, mfu
from .optim import cooldown_start, default_lr, lr_at, param_groups
from .result import RunResult, read_result, write_result

# the dense training curve each run records (for the whole-curve laws, fit/curvelaws/): at most
# CURVE_POINTS points, each the mean raw batch loss over at least CURVE_TOKENS tokens (a point over ~3k
# tokens of the debug study scattered by ~2%, burying the loss drops the curve laws fit) and the loss on a
# fixed probe of the validation windows (CURVE_PROBE_TOKENS: the same text at every point, so the points
# differ only by the weights, not by which documents a batch drew)
CURVE_POINTS, CURVE_TOKENS, CURVE_PROBE_TOKENS = 256, 16384, 4096
# the final loss is estimated from the probe curve at these fractions of a run (by the estimator the caller
# hands in: fit/curvelaws RunEstimator, 1.5-3.5 s each on 2 busy cores), once the run has trained
# ESTIMATE_AFTER_S seconds (so that the three cost under ~7%)
ESTIMATE_AT, ESTIMATE_AFTER_S = (0.3, 0.5, 0.75), 120.0


def resolve_device(device: str) -> str:
    """cpu, cuda or cuda:N (a GPU of this machine, as the local executor packs runs onto them)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ScalingLabError("`device` cuda: no CUDA device is available here; use `device` cpu or auto",
                              params=("device",))
    index = device.partition(":")[2]
    if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and index.isdigit()
                                             and int(index) < torch.cuda.device_count()):
        raise ScalingLabError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N (a GPU here)")
    return device


@dataclass
class NoiseSums:
    """Running sums of the unbiased |G|^2 and tr(Sigma) estimates since the last eval (McCandlish et al.
    2018 App. A.1); kept in checkpoints as a plain list (a weights_only load takes no custom types)."""

    grad_sq: float = 0.0
    trace_cov: float = 0.0
    count: int = 0

    def as_list(self) -> list:
        return [self.grad_sq, self.trace_cov, self.count]

    def estimates(self) -> dict:
        """Per-eval means and the noise scale B_simple = tr(Sigma) / |G|^2 (NaN when nothing was measured)."""
        if not self.count:
            return {"grad_sq": math.nan, "trace_cov": math.nan, "noise_scale": math.nan}
        return {"grad_sq": self.grad_sq / self.count, "trace_cov": self.trace_cov / self.count,
                "noise_scale": self.trace_cov / self.grad_sq if self.grad_sq > 0 else math.nan}


def check_memory(shape, batch_size: int, device: str, precision: str = "fp32") -> None:
    """Refuse, with the estimate, a model that cannot be trained in this machine's memory."""
    n, B, T, d, L = param_breakdown(shape)["total"], batch_size, shape.n_ctx, shape.d_model, shape.n_layer
    need = memory_needed(shape, batch_size, precision)
    if device.startswith("cuda"):
        have = torch.cuda.mem_get_info(torch.device(device))[0]
        where = "free GPU memory"
    else:
        have = _available_ram()
        where = "available memory"
    if have and need > 0.9 * have:
        raise ScalingLabError(f"the model ({n:.3g} parameters, {L} layers x {d}) needs about "
                              f"{need / 2**30:.1f} GiB to train at batch {B} x context {T} (16 "
                              f"bytes/parameter + activations); this machine has {have / 2**30:.1f} GiB of "
                              f"{where}: choose a smaller model or batch")


def _available_ram() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def eval_steps(steps: int, n_evals: int) -> list[int]:
    """Log-spaced steps (1-based: after that many updates) ending at the last step."""
    return sorted(set(int(round(s)) for s in np.geomspace(1, steps, n_evals)) | {steps})


class _StopFlag:
    """Set by SIGTERM (and, in a data-parallel run, SIGINT: Ctrl-C reaches every rank of the terminal's
    process group); the loop checkpoints at the end of the current step and returns 'interrupted'."""

    def __init__(self):
        self.stop = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            signals = (signal.SIGTERM, signal.SIGINT) if distributed.in_torchrun() else (signal.SIGTERM,)
            self._old = {s: signal.signal(s, self._handle) for s in signals}
        return self

    def _handle(self, signum, frame):
        self.stop = True

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


@torch.no_grad()
def evaluate(model: GPT, val: np.ndarray, offsets: np.ndarray, n_ctx: int, device: str, autocast,
             batch: int = 32, group: distributed.Group | None = None, lockstep: bool = False,
             owner: np.ndarray | None = None, n_sources: int = 0):
    """Mean cross-entropy (nats/token) over the fixed validation windows (in a data-parallel run each
    rank takes every world-th batch of windows and the sums are added up). ``lockstep`` (a sharded model,
    whose forward is a collective): every rank runs as many forwards, one past its share counting nothing.
    ``owner`` (each validation token's source index, Shards.validation_source): also the loss summed and
    the tokens counted per source, returned as (mean, sums, counts); their token-weighted mean is the mean.
    """
    model.eval()
    total, count = 0.0, 0
    sums, counts = np.zeros(n_sources), np.zeros(n_sources)
    starts = range(0, len(offsets), batch)
    mine = list(starts[group.rank::group.world]) if group else list(starts)
    if lockstep and group:
        mine += [None] * (-(-len(starts) // group.world) - len(mine))
    for i in mine:
        at = offsets[(i or 0):(i or 0) + batch]
        xy = torch.from_numpy(windows(val, at, n_ctx)).to(device)
        with autocast:
            if owner is None:
                loss = model(xy[:, :-1], xy[:, 1:])
            else:  # the mean exactly as model(x, y) computes it (its float rounding), and each token's
                logits = model(xy[:, :-1])
                flat, targets = logits.float().view(-1, logits.size(-1)), xy[:, 1:].reshape(-1)
                loss = F.cross_entropy(flat, targets)
                per_token = F.cross_entropy(flat, targets, reduction="none")
                del logits, flat
        if i is None:
            continue
        n = xy.shape[0] * n_ctx
        total += float(loss) * n
        count += n
        if owner is not None:
            src = torch.from_numpy(windows(owner, at, n_ctx)[:, 1:].reshape(-1))  # the targets' sources
            sums += torch.bincount(src, weights=per_token.double().cpu(), minlength=n_sources).numpy()
            counts += torch.bincount(src, minlength=n_sources).numpy()
    model.train()
    if group:
        total, count, *rest = group.sum([total, count, *sums, *counts])
        sums, counts = np.array(rest[:n_sources]), np.array(rest[n_sources:])
    if owner is None:
        return total / count
    return total / count, sums, counts


def _grad_sq(model: GPT, sharded_over: distributed.Group | None = None) -> float:
    """|g|^2 of the (rank-averaged) gradient; with FSDP each rank holds a shard of it: summed over ranks."""
    total = float(sum(float(distributed.local(p.grad).pow(2).sum())
                      for p in model.parameters() if p.grad is not None))
    return sharded_over.sum([total])[0] if sharded_over else total


def estimate_due(estimates: list, fraction: float) -> bool:
    """Whether a run ``fraction`` through, with these estimates made, passed a mark (ESTIMATE_AT) it has no
    estimate for. An estimate counts for the marks up to 5% of the run past it: a run that passes
    ESTIMATE_AFTER_S at 74.97% estimates once there, not again a step later at 75%."""
    mark = lambda frac: max((f for f in ESTIMATE_AT if f <= frac), default=0.0)  # noqa: E731
    return mark(fraction) > max((mark(e["fraction"] + 0.05) for e in estimates), default=0.0)


def _branch_state(spec: RunSpec, path: Path, peak_lr: float, warmup: int) -> dict | None:
    """The snapshot to start this run from, or None (then it trains from step 0: same numbers, more time)."""
    if spec.schedule != "wsd":
        return None
    state = checkpoint.load_snapshot(path, spec.branch_key)
    if state is None or state["lr"] != peak_lr or state["warmup"] != warmup:
        return None
    if state["step"] > cooldown_start(spec.steps, spec.cooldown_frac):
        return None
    return state


Estimator = Callable[[np.ndarray, list, int, int], dict]  # (LR of every step, curve so far, warm-up, seed)


@dataclass(frozen=True)
class TrainOptions:
    """How to train a run (not what: that is the RunSpec). Every field is optional.

    ``stop_after_steps`` stops (as 'interrupted', checkpointed) after that many steps of this call: tests
    use it to cut a run exactly where SIGTERM would. ``should_stop()``, asked between steps (at most 5
    times a second), stops the same way: how a driver on another machine stops a run (run/ray.py).
    ``snapshot_at`` / ``init_from``: WSD branching (``train``). ``fsdp`` shards the model over the
    processes of a data-parallel run instead of replicating it (train/distributed.py). ``compile_model``:
    the training forward and backward through torch.compile (on CPU 0.99-1.04x the eager speed after a
    12-27 s compile: benchmarks/compile_speed.py); recorded in config.json, not part of the spec.
    ``estimator(lr, curve, warmup, seed)``: the final loss estimated from the probe curve at ESTIMATE_AT
    (fit/curvelaws RunEstimator; None: no estimates). The trainer imports nothing from fit/."""

    device: str = "auto"
    threads: int | None = None
    shards: Shards | None = None
    progress: Callable[[dict], None] | None = None
    stop_after_steps: int | None = None
    should_stop: Callable[[], bool] | None = None
    snapshot_at: tuple[int, ...] = ()
    init_from: str | Path | None = None
    fsdp: bool = False
    compile_model: bool = False
    estimator: Estimator | None = None


def train(spec: RunSpec, out_dir: str | Path, options: TrainOptions | None = None, **fields) -> RunResult:
    """Train one run into ``out_dir`` (config.json, checkpoint.pt, result.json); resume if interrupted.
    ``options`` (or its fields by keyword: ``train(spec, out, threads=1)``) say how (TrainOptions).

    WSD branching: after each step in ``snapshot_at`` the state is also kept as
    ``out_dir/snapshots/step-S.pt``; a run given ``init_from`` (such a snapshot) and no checkpoint of its
    own starts there instead of at step 0, when the snapshot's run had the same branch key, peak LR and
    warm-up and the snapshot's step is not past this run's cool-down start: its numbers are then those of
    training it from scratch (the data of step s depend only on (seed, s)), for the price of its cool-down.
    Under torchrun (or Ray Train) the run is data-parallel over the world's processes.
    """
    opts = options if options is not None else TrainOptions(**fields)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prior = read_result(out / "result.json", spec.run_id)
    if prior is not None and prior.status == "done":
        return prior
    if opts.threads:
        torch.set_num_threads(opts.threads)
    group, device = distributed.join(resolve_device(opts.device))
    try:
        return _Run(spec, out, opts, device, group).run()
    finally:
        distributed.leave(group)


@dataclass
class _Progress:
    """What a run has done so far: all a checkpoint restores."""

    step: int = 0
    evals: list = field(default_factory=list)
    noise: NoiseSums = field(default_factory=NoiseSums)
    elapsed: float = 0.0
    train_loss: float = math.nan
    eval_time: float = 0.0
    curve: list = field(default_factory=list)  # the dense training curve
    window: list = field(default_factory=lambda: [0.0, 0])  # raw losses since its last point (sum, count)
    estimates: list = field(default_factory=list)

    @classmethod
    def from_state(cls, state: dict) -> "_Progress":
        return cls(step=state["step"], evals=state["evals"], noise=NoiseSums(*state["noise"]),
                   elapsed=state["elapsed"], train_loss=state["train_loss"], eval_time=state["eval_time"],
                   curve=state.get("curve", []), window=state.get("window", [0.0, 0]),  # older: none
                   estimates=state.get("estimates", []))

    def state(self) -> dict:
        return {"step": self.step, "evals": self.evals, "noise": self.noise.as_list(),
                "elapsed": self.elapsed, "train_loss": self.train_loss, "curve": self.curve,
                "window": self.window, "estimates": self.estimates, "eval_time": self.eval_time}


class _Run:
    """One call of ``train``: set up (check the data, build or restore the model and optimiser, write
    config.json), then ``run`` the loop; every file is written by the main process only."""

    def __init__(self, spec: RunSpec, out: Path, opts: TrainOptions, device: str,
                 group: distributed.Group | None):
        self.spec, self.out, self.opts, self.device, self.group = spec, out, opts, device, group
        self.main = group is None or group.main  # the one process that writes files
        self.world = group.world if group else 1
        self.shards = opts.shards or spec_shards(spec)
        self.shape = spec.shape
        self._check_data()
        self.counts = param_breakdown(self.shape)
        self.peak_lr = spec.lr or default_lr(self.shape.d_model)
        self.steps, self.T, self.B = spec.steps, self.shape.n_ctx, spec.batch_size
        self.warmup = warmup_of(spec)
        self.flops_per_tok = flops_per_token(self.shape, "chinchilla")
        self.evals_at = set(eval_steps(self.steps, spec.n_evals))
        self.val_offsets = eval_offsets(self.shards.validation.size, self.T, spec.n_eval_tokens)
        # the probe: the same validation text at every curve point, spread over the split
        self.probe_offsets = eval_offsets(self.shards.validation.size, self.T, CURVE_PROBE_TOKENS)
        self.n_train = min(self.shards.train.size,
                           spec.unique_tokens or self.shards.train.size)  # data-constrained: first U tokens
        self.autocast = torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16) \
            if spec.precision == "bf16" else nullcontext()
        self.peak = mfu.peak_flops(device, spec.precision) * self.world  # cached after the first run here
        self.ckpt_path = out / "checkpoint.pt"
        self._build_model()
        self.curve_every = max(1, self.steps // CURVE_POINTS, math.ceil(CURVE_TOKENS / (self.B * self.T)))
        self.snapshot_at = {s for s in opts.snapshot_at if 0 < s < self.steps}
        if self.snapshot_at and self.main:
            (out / "snapshots").mkdir(exist_ok=True)

    # -- set-up -----------------------------------------------------------------------------------------
    def _check_data(self) -> None:
        spec, shape, shards = self.spec, self.shape, self.shards
        if spec.batch_size % self.world:
            raise ScalingLabError(f"batch size {spec.batch_size} does not split over {self.world} processes: "
                                  "give a multiple of the process count")
        if shards.vocab_size != shape.vocab_size:
            raise ScalingLabError(f"model vocab {shape.vocab_size} does not match tokenizer "
                                  f"{shards.tokenizer} ({shards.vocab_size})")
        if shards.train.size < shape.n_ctx + 2:
            raise ScalingLabError(f"training split has {shards.train.size} tokens, fewer than one context of "
                                  f"{shape.n_ctx} (+1): give more data (at least {20 * (shape.n_ctx + 2)} "
                                  "tokens, as bytes or text, for the two splits)")
        check_memory(shape, spec.batch_size // self.world, self.device, spec.precision)
        if shards.validation.size < shape.n_ctx + 2:
            raise ScalingLabError(f"validation split has {shards.validation.size} tokens, fewer than one "
                                  f"context of {shape.n_ctx}: give more data")

    def _build_model(self) -> None:
        """The model (the same init on every rank: same seed), restored from this run's checkpoint or a
        branch's snapshot, wrapped for data parallelism, its optimiser, and config.json."""
        spec, opts = self.spec, self.opts
        torch.manual_seed(spec.seed)
        self.model = GPT(self.shape).to(self.device)
        state = checkpoint.load(self.ckpt_path, spec.run_id)
        branched = None
        if state is None and opts.init_from is not None:
            state = _branch_state(spec, Path(opts.init_from), self.peak_lr, self.warmup)
            branched = {"snapshot": str(opts.init_from), "step": state["step"]} if state else None
        if state is not None:
            self.model.load_state_dict(state["model"])  # before sharding: every rank holds the whole
        self.sharded = bool(self.group and opts.fsdp)
        # DDP broadcasts rank 0's weights; FSDP keeps a shard
        self.net = distributed.wrap(self.model, self.group, self.sharded)
        if opts.compile_model:
            self.net = torch.compile(self.net)  # compiled at the first step; evals run the eager model
        # fused AdamW runs on CPU too in current torch: one kernel instead of a loop over ~40 tensors
        self.opt = torch.optim.AdamW(param_groups(self.model, spec.weight_decay), lr=self.peak_lr,
                                     betas=(spec.beta1, spec.beta2), fused=True)
        config_path = self.out / "config.json"
        if self.main and (branched or not config_path.exists() or state is None):  # a resumed branch keeps it
            self._write_config(config_path, branched)
        self.done = _Progress()
        if state is not None:
            optim = state["optim"]
            self.opt.load_state_dict(distributed.sharded_like(optim, self.opt) if self.sharded else optim)
            self.done = _Progress.from_state(state)

    def _write_config(self, path: Path, branched: dict | None) -> None:
        group, opts = self.group, self.opts
        atomic.write_text(path, json.dumps(
            {"run_id": self.spec.run_id, "spec": self.spec.to_dict(),
             "resolved": {"lr": self.peak_lr, "steps": self.steps, "warmup": self.warmup,
                          "device": self.device, "threads": opts.threads, "processes": self.world,
                          "data_parallel": "fsdp" if self.sharded else "ddp" if group else "none",
                          "compiled": opts.compile_model,
                          "flops_per_token": self.flops_per_tok, "branched_from": branched,
                          "corpus_fingerprint": self.shards.fingerprint,
                          "validation_sources": list(self.shards.sources),
                          **self.counts},
             "version": __version__}, indent=1))

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        opts, done = self.opts, self.done
        if opts.should_stop is not None and opts.should_stop():  # stopped before it began: no checkpoint
            return self.result("interrupted", "stopped before its first step; re-run to train it")
        ran, self._asked = 0, 0.0
        self.t_start = time.perf_counter() - done.elapsed
        with _StopFlag() as flag:
            while done.step < self.steps:
                lr = lr_at(done.step, peak=self.peak_lr, steps=self.steps, warmup=self.warmup,
                           min_frac=self.spec.min_lr_frac, schedule=self.spec.schedule,
                           cooldown_frac=self.spec.cooldown_frac, points=self.spec.lr_points)
                for pg in self.opt.param_groups:
                    pg["lr"] = lr
                loss = self._forward_backward()
                if not math.isfinite(loss):
                    return self._fail(f"non-finite training loss ({loss}) at step {done.step}")
                self._update()
                done.step += 1
                ran += 1
                done.train_loss = loss if math.isnan(done.train_loss) else 0.9 * done.train_loss + 0.1 * loss
                done.window[0], done.window[1] = done.window[0] + loss, done.window[1] + 1
                if (self.steps - done.step) % self.curve_every == 0:  # the final point is a whole window
                    self._curve_point(lr)
                if done.step in self.evals_at and not math.isfinite(self._evaluate(lr)):
                    return self._fail(f"non-finite validation loss at step {done.step}")
                done.elapsed = time.perf_counter() - self.t_start
                self._report()
                stop = self._stop_asked(flag, ran)
                self._checkpoint(stop)
                if stop and done.step < self.steps:
                    return self.result("interrupted", "stopped (SIGTERM or by the driver); re-run to resume "
                                                      "from the checkpoint")
        return self._finish()

    # -- one step ---------------------------------------------------------------------------------------
    def _forward_backward(self) -> float:
        """Forward and backward on this step's batch (this rank's share); the mean loss over the world.
        Every ``noise_every`` steps the batch goes in two halves, and |g|^2 after the first is kept for the
        noise scale (McCandlish et al. 2018 App. A.1)."""
        spec, group, B, T = self.spec, self.group, self.B, self.T
        offsets = batch_offsets(self.n_train, T, B, spec.seed, self.done.step)
        if group:
            offsets = offsets[group.batch_share(B)]
        xy = torch.from_numpy(windows(self.shards.train, offsets, T)).to(self.device)
        b = xy.shape[0]
        self._measure = spec.noise_every and b >= 2 and self.done.step % spec.noise_every == 0
        parts = (xy[:b // 2], xy[b // 2:]) if self._measure else (xy,)
        loss_sum = 0.0
        for i, part in enumerate(parts):
            with self.autocast:
                loss = self.net(part[:, :-1], part[:, 1:])
            # DDP averages the ranks' gradients: each rank's mean over its slice -> the global mean
            (loss * part.shape[0] / b).backward()
            loss_sum += loss.item() * part.shape[0] / b
            if self._measure and i == 0:  # (already averaged over the ranks' first halves)
                g_small = _grad_sq(self.model, group if self.sharded else None)
                self._g_small = g_small * (b / part.shape[0]) ** 2
                self._b_small = self.world * (b // 2) * T
        if group:
            loss_sum = group.sum([loss_sum])[0] / self.world  # every rank sees the same loss (and NaN)
        return loss_sum

    def _update(self) -> None:
        if self._measure:  # unbiased |G|^2 and tr(Sigma) from the two batch sizes
            g_big, g_small = _grad_sq(self.model, self.group if self.sharded else None), self._g_small
            b_small, b_big, noise = self._b_small, self.B * self.T, self.done.noise
            noise.grad_sq += (b_big * g_big - b_small * g_small) / (b_big - b_small)
            noise.trace_cov += (g_small - g_big) / (1 / b_small - 1 / b_big)
            noise.count += 1
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    # -- what a run records -----------------------------------------------------------------------------
    def _curve_point(self, lr: float) -> None:
        """A point of the dense curve (the window's mean training loss and the probe's loss) and, at an
        ESTIMATE_AT mark, the estimate of the final loss."""
        done = self.done
        t_eval = time.perf_counter()
        probe = evaluate(self.model, self.shards.validation, self.probe_offsets, self.T, self.device,
                         self.autocast, group=self.group, lockstep=self.sharded)
        done.eval_time += time.perf_counter() - t_eval
        done.curve.append({"step": done.step, "lr": lr, "loss": done.window[0] / done.window[1],
                           "probe": probe})
        done.window = [0.0, 0]
        due = estimate_due(done.estimates, done.step / self.steps)
        if self.main and due and self.opts.estimator is not None and done.step < self.steps \
                and time.perf_counter() - self.t_start >= ESTIMATE_AFTER_S:
            t_est = time.perf_counter()
            done.estimates.append(self.opts.estimator(of_run(self.spec, self.peak_lr), done.curve,
                                                      self.warmup, self.spec.seed))
            done.eval_time += time.perf_counter() - t_est

    def _evaluate(self, lr: float) -> float:
        """An eval row: the validation loss (per source too), bits per byte, and the noise scale since the
        last eval. -> the validation loss."""
        done, shards = self.done, self.shards
        t_eval = time.perf_counter()
        val = evaluate(self.model, shards.validation, self.val_offsets, self.T, self.device, self.autocast,
                       group=self.group, lockstep=self.sharded, owner=shards.validation_source,
                       n_sources=len(shards.sources))
        per_source = {}
        if shards.sources:
            val, sums, seen = val
            named = [(i, n) for i, n in enumerate(shards.sources) if seen[i]]
            if len(named) >= 2:  # one source in the validation text: its loss is val_loss, not kept twice
                per_source = {"source_loss": {n: float(sums[i] / seen[i]) for i, n in named},
                              "source_tokens": {n: int(seen[i]) for i, n in named}}
        done.eval_time += time.perf_counter() - t_eval
        tokens = done.step * self.B * self.T
        done.evals.append({"step": done.step, "tokens": tokens, "flops": self.flops_per_tok * tokens,
                           "train_loss": done.train_loss, "val_loss": val,
                           "bits_per_byte": shards.bits_per_byte(val), "lr": lr, **done.noise.estimates(),
                           **per_source})
        done.noise = NoiseSums()
        return val

    def _report(self) -> None:
        if self.opts.progress is None:
            return
        done = self.done
        rate = done.step * self.B * self.T / max(done.elapsed - done.eval_time, 1e-9)
        self.opts.progress({"step": done.step, "steps": self.steps, "train_loss": done.train_loss,
                            "elapsed": done.elapsed, "tokens_per_s": rate,
                            "mfu": rate * self.flops_per_tok / self.peak,
                            "estimate": done.estimates[-1] if done.estimates else None})

    def _stop_asked(self, flag: _StopFlag, ran: int) -> bool:
        opts = self.opts
        stop = flag.stop or (opts.stop_after_steps is not None and ran >= opts.stop_after_steps)
        # asked at most 5 times a second (a file's existence in the Ray executors): a stop asked for lands
        # within ~0.2 s plus a step
        if opts.should_stop is not None and not stop and time.perf_counter() - self._asked > 0.2:
            self._asked = time.perf_counter()
            stop = opts.should_stop()
        if self.group:  # stop together (SIGTERM may reach one rank first), after the same step
            stop = self.group.sum([float(stop)])[0] > 0
        return stop

    def _checkpoint(self, stop: bool) -> None:
        step = self.done.step
        if step in self.snapshot_at:
            self._save(self.out / "snapshots" / f"step-{step}.pt", branch_key=self.spec.branch_key,
                       lr=self.peak_lr, warmup=self.warmup)
        if step % self.spec.checkpoint_every == 0 or stop:
            self._save(self.ckpt_path)

    def _save(self, path: Path, **ids) -> None:
        weights, moments = self.model.state_dict(), self.opt.state_dict()
        if self.sharded:  # gathered on every rank (a collective); the file is a replicated run's
            weights, moments = distributed.gathered(weights), distributed.gathered(moments)
        if self.main:
            checkpoint.save(path, {"run_id": self.spec.run_id, **ids, "model": weights, "optim": moments,
                                   **self.done.state()})

    # -- how it ends ------------------------------------------------------------------------------------
    def result(self, status: str, reason: str = "") -> RunResult:
        done, counts = self.done, self.counts
        tokens = done.step * self.B * self.T
        last = done.evals[-1] if done.evals else {}
        rate = tokens / (done.elapsed - done.eval_time) if done.elapsed > done.eval_time else 0.0
        return RunResult(run_id=self.spec.run_id, status=status, reason=reason,
                         val_loss=last.get("val_loss", math.nan),
                         bits_per_byte=last.get("bits_per_byte", math.nan), n_params_total=counts["total"],
                         n_params_nonembed=counts["nonembed"], n_tokens=tokens,
                         flops=self.flops_per_tok * tokens, flops_6nd=6.0 * counts["total"] * tokens,
                         lr=self.peak_lr, steps=done.step, wall_time_s=done.elapsed,
                         eval_time_s=done.eval_time, tokens_per_s=rate, flops_per_s=rate * self.flops_per_tok,
                         mfu=mfu.utilisation(rate * self.flops_per_tok, self.peak, self.device,
                                             self.spec.precision, self.world) if rate else math.nan,
                         processes=self.world, device=self.device, evals=list(done.evals),
                         curve=list(done.curve), estimates=list(done.estimates))

    def _fail(self, reason: str) -> RunResult:
        """The one failure exit: a result saying why, written (a failed run is not retried as it is)."""
        self.done.elapsed = time.perf_counter() - self.t_start
        res = self.result("failed", reason)
        if self.main:
            write_result(self.out / "result.json", res)
        return res

    def _finish(self) -> RunResult:
        res = self.result("done")
        uniform = math.log(self.shape.vocab_size)
        if not res.val_loss < uniform:  # above a uniform guess over the vocabulary: diverged
            res = self.result("failed", f"diverged: final validation loss {res.val_loss:.4g} is above the "
                                        f"uniform-guess loss ln({self.shape.vocab_size}) = {uniform:.4g}; "
                                        "lower the learning rate")
        if self.main:
            write_result(self.out / "result.json", res)
            self.ckpt_path.unlink(missing_ok=True)  # the result holds everything; keep the run dir small
        return res
