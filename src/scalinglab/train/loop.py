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
from dataclasses import dataclass
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
from ..plan.schedules import warmup_of
from ..plan.spec import RunSpec
from . import checkpoint, distributed, mfu
from .optim import cooldown_start, default_lr, lr_at, param_groups
from .result import RunResult, read_result, write_result

# the dense training curve each run records (for fit/schedule_laws.py): at most CURVE_POINTS points, each
# the mean raw batch loss over at least CURVE_TOKENS tokens (a point over ~3k tokens of the debug study
# scattered by ~2%, burying the loss drops the curve laws fit) and the loss on a fixed probe of the
# validation windows (CURVE_PROBE_TOKENS: the same text at every point, so the points differ only by the
# weights, not by which documents a batch drew)
CURVE_POINTS, CURVE_TOKENS, CURVE_PROBE_TOKENS = 256, 16384, 4096
# the final loss is estimated from the probe curve at these fractions of a run (fit/schedule_laws.py
# estimate_final on at most ESTIMATE_POINTS of them: 1.5-3.5 s each on 2 busy cores; 45 s on 195 points), once
# the run has trained ESTIMATE_AFTER_S seconds (so that the three cost under ~7%)
ESTIMATE_AT, ESTIMATE_AFTER_S, ESTIMATE_POINTS = (0.3, 0.5, 0.75), 120.0, 64


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
    mark = lambda frac: max((f for f in ESTIMATE_AT if f <= frac), default=0.0)
    return mark(fraction) > max((mark(e["fraction"] + 0.05) for e in estimates), default=0.0)


def _estimate(spec: RunSpec, peak_lr: float, curve: list, reference: dict | None = None) -> dict:
    """The run's final loss estimated from its probe curve so far (fit/schedule_laws.py)."""
    from ..fit.curvelaws import Curve, CurveFit, estimate_final
    from ..plan import schedules
    pts = [p for p in curve if p["step"] > schedules.warmup_of(spec) + 1]
    if len(pts) < 8:
        return {"step": curve[-1]["step"], "fraction": curve[-1]["step"] / spec.steps, "final": math.nan,
                "interval": None, "converged": False, "warnings": ["fewer than 8 curve points past warm-up"],
                "decay_from": "own curve"}
    pts = pts[::-1][::-(-len(pts) // ESTIMATE_POINTS)][::-1]  # every k-th, ending with the latest
    lr = schedules.of_run(spec, peak_lr)
    return estimate_final(Curve("run", lr, np.array([p["step"] - 1 for p in pts]),
                                np.array([p["probe"] for p in pts])), seed=spec.seed,
                          reference=CurveFit.from_dict(reference) if reference else None)


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


def train(spec: RunSpec, out_dir: str | Path, *, device: str = "auto", threads: int | None = None,
          shards: Shards | None = None, progress: Callable[[dict], None] | None = None,
          stop_after_steps: int | None = None, should_stop: Callable[[], bool] | None = None,
          snapshot_at: tuple[int, ...] = (), init_from: str | Path | None = None,
          fsdp: bool = False, compile_model: bool = False, curve_reference: dict | None = None) -> RunResult:
    """Train one run into ``out_dir`` (config.json, checkpoint.pt, result.json); resume if interrupted.

    WSD branching: after each step in ``snapshot_at`` the state is also kept as
    ``out_dir/snapshots/step-S.pt``; a run given ``init_from`` (such a snapshot) and no checkpoint of its
    own starts there instead of at step 0, when the snapshot's run had the same branch key, peak LR and
    warm-up and the snapshot's step is not past this run's cool-down start: its numbers are then those of
    training it from scratch (the data of step s depend only on (seed, s)), for the price of its cool-down.

    ``stop_after_steps`` stops (as 'interrupted', checkpointed) after that many steps of this call: tests
    use it to cut a run exactly where SIGTERM would. ``should_stop()``, asked between steps (at most 5 times
    a second), stops the same way: how a driver on another machine stops a run (run/ray.py).

    Under torchrun (or Ray Train) the run is data-parallel over the world's processes; ``fsdp`` shards the
    model over them instead of replicating it (train/distributed.py). ``compile_model``: the training
    forward and backward through torch.compile (on CPU it measured 0.99-1.04x the eager speed after a
    12-27 s compile: benchmarks/compile_speed.py); not part of the spec, recorded in config.json.
    ``curve_reference``: a whole-curve fit (CurveFit.to_dict) whose parameters the in-training estimates
    of the final loss keep, refitting only its scale to this run's curve (fit/schedule_laws.py
    estimate_final); without one they use the run's own curve and are flagged until its LR falls.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done_path = out / "result.json"
    prior = read_result(done_path, spec.run_id)
    if prior is not None and prior.status == "done":
        return prior
    if threads:
        torch.set_num_threads(threads)
    group, device = distributed.join(resolve_device(device))
    try:
        return _train(spec, out, device, threads, shards, progress, stop_after_steps, should_stop,
                      snapshot_at, init_from, group, fsdp, compile_model, curve_reference)
    finally:
        distributed.leave(group)


def _train(spec: RunSpec, out: Path, device: str, threads: int | None, shards: Shards | None,
           progress, stop_after_steps, should_stop, snapshot_at, init_from,
           group: distributed.Group | None, fsdp: bool, compile_model: bool,
           curve_reference: dict | None = None) -> RunResult:
    done_path = out / "result.json"
    main = group is None or group.main  # the one process that writes files
    world = group.world if group else 1
    if spec.batch_size % world:
        raise ScalingLabError(f"batch size {spec.batch_size} does not split over {world} processes: give a "
                              "multiple of the process count")
    shards = shards or spec_shards(spec)
    shape = spec.shape
    if shards.vocab_size != shape.vocab_size:
        raise ScalingLabError(f"model vocab {shape.vocab_size} does not match tokenizer {shards.tokenizer} "
                              f"({shards.vocab_size})")
    if shards.train.size < shape.n_ctx + 2:
        raise ScalingLabError(f"training split has {shards.train.size} tokens, fewer than one context of "
                              f"{shape.n_ctx} (+1): give more data (at least {20 * (shape.n_ctx + 2)} "
                              "tokens, as bytes or text, for the two splits)")
    check_memory(shape, spec.batch_size // world, device, spec.precision)
    if shards.validation.size < shape.n_ctx + 2:
        raise ScalingLabError(f"validation split has {shards.validation.size} tokens, fewer than one context "
                              f"of {shape.n_ctx}: give more data")

    counts = param_breakdown(shape)
    peak_lr = spec.lr or default_lr(shape.d_model)
    steps, T, B = spec.steps, shape.n_ctx, spec.batch_size
    warmup = warmup_of(spec)
    flops_per_tok = flops_per_token(shape, "chinchilla")
    evals_at = set(eval_steps(steps, spec.n_evals))
    val_offsets = eval_offsets(shards.validation.size, T, spec.n_eval_tokens)
    probe_offsets = eval_offsets(shards.validation.size, T, CURVE_PROBE_TOKENS)  # spread over the split
    n_train = min(shards.train.size,
                  spec.unique_tokens or shards.train.size)  # data-constrained: first U tokens
    on_cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda" if on_cuda else "cpu", dtype=torch.bfloat16) \
        if spec.precision == "bf16" else nullcontext()

    peak = mfu.peak_flops(device, spec.precision) * world  # cached after the first run on this machine
    torch.manual_seed(spec.seed)
    model = GPT(shape).to(device)  # the same init on every rank (same seed)
    ckpt_path = out / "checkpoint.pt"
    state = checkpoint.load(ckpt_path, spec.run_id)
    branched = None
    if state is None and init_from is not None:
        state = _branch_state(spec, Path(init_from), peak_lr, warmup)
        branched = {"snapshot": str(init_from), "step": state["step"]} if state else None
    if state is not None:
        model.load_state_dict(state["model"])  # before sharding: every rank holds the full checkpoint
    sharded = bool(group and fsdp)
    net = distributed.wrap(model, group, sharded)  # DDP broadcasts rank 0's weights; FSDP keeps a shard
    if compile_model:
        net = torch.compile(net)  # compiled at the first step; evals run the eager model
    # fused AdamW runs on CPU too in current torch: one kernel instead of a loop over ~40 tensors
    opt = torch.optim.AdamW(param_groups(model, spec.weight_decay), lr=peak_lr,
                            betas=(spec.beta1, spec.beta2), fused=True)
    config_path = out / "config.json"
    if main and (branched or not config_path.exists() or state is None):  # a resumed branch keeps its record
        atomic.write_text(config_path, json.dumps(
            {"run_id": spec.run_id, "spec": spec.to_dict(),
             "resolved": {"lr": peak_lr, "steps": steps, "warmup": warmup, "device": device,
                          "threads": threads, "processes": world,
                          "data_parallel": "fsdp" if sharded else "ddp" if group else "none",
                          "compiled": compile_model,
                          "flops_per_token": flops_per_tok, "branched_from": branched,
                          "corpus_fingerprint": shards.fingerprint,
                          "validation_sources": list(shards.sources),
                          **counts},
             "version": __version__}, indent=1))
    step, evals, noise, elapsed, train_loss, eval_time = 0, [], NoiseSums(), 0.0, math.nan, 0.0
    curve, window = [], [0.0, 0]  # dense training curve; the raw losses since its last point (sum, count)
    estimates = []
    curve_every = max(1, steps // CURVE_POINTS, math.ceil(CURVE_TOKENS / (B * T)))
    if state is not None:
        opt.load_state_dict(distributed.sharded_like(state["optim"], opt) if sharded else state["optim"])
        step, evals, noise = state["step"], state["evals"], NoiseSums(*state["noise"])
        curve, window = state.get("curve", []), state.get("window", [0.0, 0])  # older checkpoints: none
        estimates = state.get("estimates", [])
        elapsed, train_loss, eval_time = state["elapsed"], state["train_loss"], state["eval_time"]
        del state

    def save_checkpoint(path=ckpt_path, **ids):
        weights, moments = model.state_dict(), opt.state_dict()
        if sharded:  # gathered on every rank (a collective); the file is a replicated run's
            weights, moments = distributed.gathered(weights), distributed.gathered(moments)
        if not main:
            return
        checkpoint.save(path, {"run_id": spec.run_id, **ids, "model": weights,
                               "optim": moments, "step": step, "evals": evals,
                               "noise": noise.as_list(), "elapsed": elapsed, "train_loss": train_loss,
                               "curve": curve, "window": window, "estimates": estimates,
                               "eval_time": eval_time})

    snapshot_at = {s for s in snapshot_at if 0 < s < steps}
    if snapshot_at and main:
        (out / "snapshots").mkdir(exist_ok=True)

    def result(status: str, reason: str = "") -> RunResult:
        tokens = step * B * T
        last = evals[-1] if evals else {}
        rate = tokens / (elapsed - eval_time) if elapsed > eval_time else 0.0
        return RunResult(run_id=spec.run_id, status=status, reason=reason,
                         val_loss=last.get("val_loss", math.nan),
                         bits_per_byte=last.get("bits_per_byte", math.nan), n_params_total=counts["total"],
                         n_params_nonembed=counts["nonembed"], n_tokens=tokens, flops=flops_per_tok * tokens,
                         flops_6nd=6.0 * counts["total"] * tokens, lr=peak_lr, steps=step,
                         wall_time_s=elapsed, eval_time_s=eval_time,
                         tokens_per_s=rate, flops_per_s=rate * flops_per_tok,
                         mfu=mfu.utilisation(rate * flops_per_tok, peak, device, spec.precision, world)
                         if rate else math.nan, processes=world,
                         device=device, evals=list(evals), curve=list(curve), estimates=list(estimates))

    ran = 0
    t_start = time.perf_counter() - elapsed
    asked = 0.0
    if should_stop is not None and should_stop():  # stopped before it began: nothing to checkpoint
        return result("interrupted", "stopped before its first step; re-run to train it")
    with _StopFlag() as flag:
        while step < steps:
            lr = lr_at(step, peak=peak_lr, steps=steps, warmup=warmup, min_frac=spec.min_lr_frac,
                       schedule=spec.schedule, cooldown_frac=spec.cooldown_frac, points=spec.lr_points)
            for pg in opt.param_groups:
                pg["lr"] = lr
            offsets = batch_offsets(n_train, T, B, spec.seed, step)
            if group:
                offsets = offsets[group.batch_share(B)]  # this rank's share of the global batch
            xy = torch.from_numpy(windows(shards.train, offsets, T)).to(device)
            b = xy.shape[0]
            measure = spec.noise_every and b >= 2 and step % spec.noise_every == 0
            parts = (xy[:b // 2], xy[b // 2:]) if measure else (xy,)
            loss_sum = 0.0
            for i, part in enumerate(parts):
                with autocast:
                    loss = net(part[:, :-1], part[:, 1:])
                # DDP averages the ranks' gradients: each rank's mean over its slice -> the global mean
                (loss * part.shape[0] / b).backward()
                loss_sum += loss.item() * part.shape[0] / b
                if measure and i == 0:  # (already averaged over the ranks' first halves)
                    g_small = _grad_sq(model, group if sharded else None) * (b / part.shape[0]) ** 2
            if group:
                loss_sum = group.sum([loss_sum])[0] / world  # every rank sees the same loss (and NaN)
            if not math.isfinite(loss_sum):
                elapsed = time.perf_counter() - t_start
                res = result("failed", f"non-finite training loss ({loss_sum}) at step {step}")
                if main:
                    write_result(done_path, res)
                return res
            if measure:
                # McCandlish et al. 2018 App. A.1: unbiased |G|^2 and tr(Sigma) from two batch sizes
                g_big = _grad_sq(model, group if sharded else None)
                b_small, b_big = world * (b // 2) * T, B * T
                noise.grad_sq += (b_big * g_big - b_small * g_small) / (b_big - b_small)
                noise.trace_cov += (g_small - g_big) / (1 / b_small - 1 / b_big)
                noise.count += 1
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            ran += 1
            train_loss = loss_sum if math.isnan(train_loss) else 0.9 * train_loss + 0.1 * loss_sum
            window[0], window[1] = window[0] + loss_sum, window[1] + 1
            if (steps - step) % curve_every == 0:  # windows end at the last step: the final point is whole
                t_eval = time.perf_counter()
                probe = evaluate(model, shards.validation, probe_offsets, T, device, autocast, group=group,
                                 lockstep=sharded)
                eval_time += time.perf_counter() - t_eval
                curve.append({"step": step, "lr": lr, "loss": window[0] / window[1], "probe": probe})
                window = [0.0, 0]
                due = estimate_due(estimates, step / steps)
                if main and due and step < steps and time.perf_counter() - t_start >= ESTIMATE_AFTER_S:
                    t_est = time.perf_counter()
                    estimates.append(_estimate(spec, peak_lr, curve, curve_reference))
                    eval_time += time.perf_counter() - t_est
            if step in evals_at:
                t_eval = time.perf_counter()
                val = evaluate(model, shards.validation, val_offsets, T, device, autocast, group=group,
                               lockstep=sharded, owner=shards.validation_source,
                               n_sources=len(shards.sources))
                per_source = {}
                if shards.sources:
                    val, sums, seen = val
                    named = [(i, n) for i, n in enumerate(shards.sources) if seen[i]]
                    per_source = {"source_loss": {n: float(sums[i] / seen[i]) for i, n in named},
                                  "source_tokens": {n: int(seen[i]) for i, n in named}}
                eval_time += time.perf_counter() - t_eval
                evals.append({"step": step, "tokens": step * B * T, "flops": flops_per_tok * step * B * T,
                              "train_loss": train_loss, "val_loss": val,
                              "bits_per_byte": shards.bits_per_byte(val), "lr": lr, **noise.estimates(),
                              **per_source})
                noise = NoiseSums()
                if not math.isfinite(val):
                    elapsed = time.perf_counter() - t_start
                    res = result("failed", f"non-finite validation loss at step {step}")
                    if main:
                        write_result(done_path, res)
                    return res
            elapsed = time.perf_counter() - t_start
            if progress is not None:
                rate = step * B * T / max(elapsed - eval_time, 1e-9)
                progress({"step": step, "steps": steps, "train_loss": train_loss, "elapsed": elapsed,
                          "tokens_per_s": rate, "mfu": rate * flops_per_tok / peak,
                          "estimate": estimates[-1] if estimates else None})
            stop = flag.stop or (stop_after_steps is not None and ran >= stop_after_steps)
            # asked at most 5 times a second (a file's existence in the Ray executors): a stop asked for
            # lands within ~0.2 s plus a step
            if should_stop is not None and not stop and time.perf_counter() - asked > 0.2:
                asked = time.perf_counter()
                stop = should_stop()
            if group:  # stop together (SIGTERM may reach one rank first), after the same step
                stop = group.sum([float(stop)])[0] > 0
            if step in snapshot_at:
                save_checkpoint(out / "snapshots" / f"step-{step}.pt", branch_key=spec.branch_key, lr=peak_lr,
                                warmup=warmup)
            if step % spec.checkpoint_every == 0 or stop:
                save_checkpoint()
            if stop and step < steps:
                return result("interrupted",
                              "stopped (SIGTERM or by the driver); re-run to resume from the checkpoint")
    res = result("done")
    uniform = math.log(shape.vocab_size)
    if not res.val_loss < uniform:  # above a uniform guess over the vocabulary: diverged, not a result
        res = result("failed",
                     f"diverged: final validation loss {res.val_loss:.4g} is above the uniform-guess "
                     f"loss ln({shape.vocab_size}) = {uniform:.4g}; lower the learning rate")
    if main:
        write_result(done_path, res)
        ckpt_path.unlink(missing_ok=True)  # the result holds everything; keep the run dir small
    return res
