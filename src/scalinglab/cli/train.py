"""`scalinglab train`: one run (a named size, or a target N), on the embedded corpus or --data."""
from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from ..errors import ScalingLabError
from ..train.progress import progress_line
from .common import emit_json, positive_float


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train one model (debugging, single big runs)",
                       description="Train one GPT on the embedded corpus or your text; re-running the same "
                                   "command resumes from the last checkpoint.")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", help="named size: debug, xs, s, m, l, xl (default debug)")
    size.add_argument("--params", type=positive_float, metavar="N",
                      help="target parameters (all, Chinchilla's N): the model family's nearest shape")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--tokens", type=positive_float, metavar="D", help="training tokens (default 20 N)")
    budget.add_argument("--flops", type=positive_float, metavar="C", help="training FLOPs (Appendix F count)")
    p.add_argument("--data", default="embedded", help="text/JSONL file or folder (default: embedded corpus)")
    p.add_argument("--val-data", metavar="PATH", default=None,
                   help="your own validation text/JSONL file or folder: every document of --data then "
                        "trains (recorded in the spec and the corpus fingerprint)")
    p.add_argument("--tokenizer", default="bytes",
                   help="bytes | bpe<VOCAB> (trained on the train split, e.g. bpe4096) | "
                        "path/to/tokenizer.json (a Hugging Face tokenizers file: its vocabulary sets the "
                        "model's; recorded in the spec with its content hash)")
    p.add_argument("--out", default="scalinglab-run", help="run directory (default ./scalinglab-run)")
    p.add_argument("--n-ctx", type=int, default=256, help="context length (default 256)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (default 32)")
    p.add_argument("--lr", type=positive_float, default=None, help="peak LR (default: the calibrated rule)")
    p.add_argument("--schedule", default="cosine", metavar="SPEC",
                   help="LR schedule after a linear warm-up, as `plan --schedule` names it: cosine[:min=F] "
                        "(to F of the peak, default 0.1), wsd[:cooldown=F,min=F] (constant, then a 1-sqrt "
                        "cool-down over the last F of the run, default 0.2, to min, default 0), constant, or "
                        "your own: piecewise:STEP=FRAC,... (fractions of the peak LR joined by straight "
                        "lines, e.g. piecewise:0=0,100=1,1600=1,2000=0; no warm-up added) or a CSV of "
                        "step,lr_frac")
    p.add_argument("--min-lr-frac", type=float, default=None, metavar="F",
                   help="cosine / wsd: the same as SPEC's min=F")
    p.add_argument("--cooldown-frac", type=float, default=None, metavar="F",
                   help="wsd: the same as SPEC's cooldown=F")
    p.add_argument("--curve-reference", metavar="FIT.json",
                   help="a whole-curve fit (a study's curvefits.json, or `fit --law multi-power --out`): the "
                        "progress line's estimate of the final loss keeps its law and refits only its scale "
                        "to this run (the fit of the model size nearest this one's); without it the estimate "
                        "uses this run's curve alone and waits for the LR to fall")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=250, metavar="STEPS", help="default 250")
    p.add_argument("--eval-tokens", type=int, default=32768,
                   help="validation tokens per eval (default 32768)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--precision", default="auto",
                   help="auto | fp32 | bf16 (autocast). auto: bf16 on a GPU; on a CPU with BF16 instructions "
                        "only from d_model 256 on, where it was measured faster; fp32 elsewhere. Part of "
                        "the run's spec (it changes the loss)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default on CPU: 1, and the free cores as processes; "
                        "with --nproc K, cores / K)")
    p.add_argument("--nproc", type=int, default=None, metavar="K",
                   help="train this one run data-parallel over K processes on this machine "
                        "(torch.distributed through torchrun's launcher: gloo on CPU, one GPU each with "
                        "NCCL); the global batch and the numbers stay those of one process. Default on "
                        "CPU: one single-threaded process per core when the run is large enough to "
                        "gain from it, else one (threads collapse on a busy machine: docs/training.md). "
                        "Several machines: start `torchrun --nnodes ... -m scalinglab train ...` on each")
    p.add_argument("--fsdp", action="store_true",
                   help="with --nproc K (or under torchrun): shard the model's weights, gradients and Adam "
                        "state over the K processes (FSDP2) instead of a full copy in each, for a model "
                        "that does not fit one device; the numbers are those of DDP")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile (a compile of 12-27 s at the first step; on CPU it "
                        "measured 0.99-1.04x eager, so it is off by default: for GPUs, measure yours)")
    p.add_argument("--log", metavar="TRACKER", default=None,
                   help="wandb | tensorboard: the finished run (config, evals, curve, final metrics); "
                        "TensorBoard files under OUT/tensorboard, W&B under OUT/wandb")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def build_spec(args):
    from ..data.shards import build_shards
    from ..model.accounting import flops_per_token, param_breakdown
    from ..model.family import named_shape, shape_for_params
    from ..plan.spec import RunSpec

    if args.n_ctx < 8 or args.batch_size < 1:
        raise ScalingLabError("--n-ctx must be >= 8 and --batch-size >= 1")
    if args.threads is not None and args.threads < 1:
        raise ScalingLabError(f"--threads must be at least 1, got {args.threads}")
    if args.seed < 0:
        raise ScalingLabError(f"--seed must be 0 or more, got {args.seed}")
    from ..train.loop import resolve_device
    from ..train.precision import resolve_precision
    device = resolve_device(args.device)  # --device cuda without a GPU: one line now, not a failed run later
    from ..data.tokenizer import pin_tokenizer
    args.tokenizer = pin_tokenizer(args.tokenizer)  # a tokenizer.json: pinned by its content in the spec
    # your files are recorded (spec, config.json) by their absolute paths: a resume from another working
    # directory, or a reader of config.json, finds the same file (`embedded...` names stay names)
    args.data, args.val_data = _absolute(args.data), _absolute(args.val_data)
    shards = build_shards(args.data, args.tokenizer, val_data=args.val_data)
    vocab = shards.vocab_size
    if args.params is not None:
        shape = shape_for_params(args.params, kind="total", vocab_size=vocab, n_ctx=args.n_ctx)
        got = param_breakdown(shape)["total"]
        if not 1 / 1.5 <= got / args.params <= 1.5:
            raise ScalingLabError(f"--params {args.params:g}: the model family has no shape within 1.5x (its "
                                  f"nearest has {got:.3g} parameters at vocab {vocab}, n_ctx {args.n_ctx})")
    else:
        shape = named_shape(args.size or "debug", vocab_size=vocab, n_ctx=args.n_ctx)
    if args.flops is not None:
        tokens = args.flops / flops_per_token(shape, "chinchilla")
    else:
        tokens = args.tokens or 20 * param_breakdown(shape)["total"]
    spec = RunSpec(shape=shape, n_tokens=int(round(tokens)), batch_size=args.batch_size, lr=args.lr,
                   seed=args.seed, data=str(args.data), tokenizer=args.tokenizer,
                   val_data=args.val_data or "",
                   checkpoint_every=args.checkpoint_every, n_eval_tokens=args.eval_tokens,
                   precision=resolve_precision(args.precision, shape.d_model, device),
                   **schedule_fields(args.schedule, args.min_lr_frac, args.cooldown_frac))
    return spec, shards


def _curve_reference(path: str, spec) -> dict:
    """The whole-curve fit in ``path`` for the size nearest this run's (by total parameters)."""
    import math

    from ..fit.curvelaws import CurveFit
    from ..fit.fitfile import load_fits
    from ..model.accounting import param_breakdown
    fits = [f for f in load_fits(path) if isinstance(f, CurveFit) and f.law == "multi-power"]
    if not fits:
        raise ScalingLabError(f"--curve-reference {path} holds no Multi-Power Law fit (from a study's "
                              "curvefits.json or `fit --law multi-power --out`)")
    n = param_breakdown(spec.shape)["total"]

    def distance(f):
        try:
            return abs(math.log(float(f.approach.split("=", 1)[1]) / n))
        except (ValueError, IndexError, ZeroDivisionError):
            return math.inf
    return min(fits, key=distance).to_dict(draws=False)


def _same_run_or_refuse(out: Path, spec) -> None:
    """--out holding another run (its config.json names another spec): refuse, as a study refuses another
    config, rather than overwrite its result (issue 30 R5)."""
    import json
    try:
        held = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return  # no run there yet (or a torn file the trainer sets aside)
    if not isinstance(held, dict) or held.get("run_id") in (None, spec.run_id):
        return
    mine, theirs = spec.to_dict(), held.get("spec") if isinstance(held.get("spec"), dict) else {}
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    raise ScalingLabError(f"--out {out} holds run {held['run_id']}, trained with another spec (it differs in "
                          f"{', '.join(differ[:6]) or 'its id'}): give another --out, or remove that one")


def _absolute(path: str | None) -> str | None:
    if not path or not Path(path).exists():
        return path
    return str(Path(path).resolve())


def schedule_fields(text: str, min_lr_frac: float | None, cooldown_frac: float | None) -> dict:
    """--schedule SPEC (plan/schedules.py Schedule: the grammar `plan --schedule` reads) as RunSpec fields;
    --min-lr-frac and --cooldown-frac are the same as SPEC's ``min=`` and ``cooldown=``."""
    from dataclasses import replace

    from ..plan.schedules import Schedule
    if min_lr_frac is not None and not 0 <= min_lr_frac <= 1:
        raise ScalingLabError(f"--min-lr-frac must be in [0, 1], got {min_lr_frac}")
    if cooldown_frac is not None and not 0 < cooldown_frac <= 1:
        raise ScalingLabError(f"--cooldown-frac must be in (0, 1], got {cooldown_frac}")
    schedule = Schedule.parse(text)
    flags = min_lr_frac is not None or cooldown_frac is not None
    if ":" in text and not text.startswith("piecewise:") and flags:
        raise ScalingLabError(f"--schedule {text} gives its own options: drop --min-lr-frac and "
                              "--cooldown-frac")
    if min_lr_frac is not None and schedule.kind in ("cosine", "wsd") and text != "constant":
        schedule = replace(schedule, min_frac=min_lr_frac)
    if cooldown_frac is not None and schedule.kind == "wsd":
        schedule = replace(schedule, cooldown_frac=cooldown_frac)
    return schedule.run_fields()


def run(args) -> int:
    try:
        from ..train import distributed
        from ..train.loop import train  # noqa: F401  (torch: say it is missing here, once)
    except ImportError:
        raise ScalingLabError("training needs torch: pip install 'scalinglab[train]' "
                              "(CPU: pip install torch==2.13.0 first)") from None
    auto = args.nproc is None
    args.nproc = 1 if auto else args.nproc
    if args.nproc < 1:
        raise ScalingLabError(f"--nproc must be at least 1, got {args.nproc}")
    if args.fsdp and args.nproc < 2 and not distributed.in_torchrun():
        raise ScalingLabError("--fsdp shards the model over the processes of one run: give --nproc 2 or more "
                              "(or start the command under torchrun)")
    if args.nproc > 1 and args.batch_size % args.nproc:
        raise ScalingLabError(f"--batch-size {args.batch_size} does not split over --nproc {args.nproc} "
                              "processes: give a multiple of K")
    spec, shards = build_spec(args)
    from ..plan.schedules import Schedule
    Schedule.parse(args.schedule).check_steps(spec.steps)  # piecewise points past the run: one error line
    from ..track import make_tracker
    tracker = make_tracker(args.log, args.out, "train")
    reference = _curve_reference(args.curve_reference, spec) if args.curve_reference else None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ScalingLabError(f"--out {out} exists and is not a directory")
    _same_run_or_refuse(out, spec)
    from ..lock import DirLock
    from ..study import check_writable
    check_writable(out)
    if auto:
        _place(args, spec)
    if args.nproc > 1 and not distributed.in_torchrun():
        with DirLock(out, "train"):
            return _launch(args)
    rank = int(os.environ.get("RANK", "0"))
    result = _train_this_process(args, spec, shards, out, reference, rank, tracker)
    if isinstance(result, int):
        return result
    if rank:  # rank 0 speaks for the run
        return {"interrupted": 3, "failed": 1}.get(result.status, 0)
    if tracker is not None and result.status == "done":
        tracker.log_run("train", result, spec.to_dict())
    if args.json:
        emit_json(result.to_dict())
    else:
        print(f"run {result.run_id}: {result.status}; val_loss {result.val_loss:.4f} nats/token, "
              f"{result.bits_per_byte:.4f} bits/byte; N_total {result.n_params_total:,}, "
              f"N_nonembed {result.n_params_nonembed:,}; D {result.n_tokens:,} tokens; "
              f"C {result.flops:.4g} FLOPs; {result.tokens_per_s:,.0f} tokens/s on {result.device}"
              + (f" x {result.processes} processes" if result.processes > 1 else "")
              + f", {result.flops_per_s / 1e9:.3g} GFLOP/s = {100 * result.mfu:.1f}% MFU")
    if result.status == "interrupted":
        print(f"interrupted: checkpoint saved in {out}; re-run the same command to resume", file=sys.stderr)
        return 3
    if result.status == "failed":
        print(f"error: run failed: {result.reason}", file=sys.stderr)
        return 1
    return 0


def _train_this_process(args, spec, shards, out: Path, reference, rank: int, tracker=None):
    """The run in this process (the whole of it, or one rank of it): its RunResult, or an exit code when a
    peer process died mid-collective (one line from this rank, not gloo's 24-line traceback: issue 30 R20;
    the launcher's line names who ended and how)."""
    from ..fit.curvelaws import RunEstimator
    from ..lock import DirLock
    from ..train import distributed
    from ..train.loop import train
    if os.environ.get(distributed.LAUNCHED):
        # a rank of our launcher dies with it (issue 30 R4: a SIGKILLed launcher left both ranks training
        # with the lock released): SIGTERM, so it stops at a step boundary as a Ctrl-C would
        from ..run.local import die_with_parent
        die_with_parent()
    # under our launcher it holds the lock; under a user's torchrun, rank 0 takes it
    lock = nullcontext() if os.environ.get(distributed.LAUNCHED) or rank else DirLock(out, "train")
    bar = _Progress()
    progress = None if rank else _Tracked(None if args.json else bar, tracker, spec.run_id)
    with lock:
        try:
            result = train(spec, out, device=args.device, threads=args.threads, shards=shards,
                           progress=progress, fsdp=args.fsdp,
                           compile_model=args.compile, estimator=RunEstimator(reference))
        except RuntimeError as exc:
            if not distributed.in_torchrun():
                raise
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            print(f"error: rank {rank}: another process of this run ended ({first})", file=sys.stderr)
            return 1
    bar.close()
    return result


def _place(args, spec) -> None:
    """Without --nproc and --threads, on CPU: one single-threaded process per core when the run is large
    enough to gain from data parallelism, else one single-threaded process (run/local.py
    processes_for_one_run; measured in benchmarks/threads_vs_processes.py)."""
    from ..train import distributed
    from ..train.loop import resolve_device
    if resolve_device(args.device) != "cpu" or distributed.in_torchrun() or args.fsdp:
        return
    if args.threads is None:
        args.threads = 1
        from ..run.local import busy_cores, processes_for_one_run
        args.nproc = processes_for_one_run(spec, os.cpu_count() or 1)
        if args.nproc > 1:
            busy = busy_cores()
            print(f"training over {args.nproc} single-threaded processes (DDP, {os.cpu_count()} cores"
                  + (f"; {busy:.1f} busy with other work: slower, the same numbers" if busy >= 0.5 else "")
                  + "); --nproc 1 for one", file=sys.stderr)


def _launch(args) -> int:
    """`train --nproc K`: this same command in K processes through torchrun's launcher (elastic_launch, no
    restarts); one line when a process dies, and re-running the command resumes from the last checkpoint."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from ..train.distributed import LAUNCHED, how_they_ended, launch_here
    child = _without_nproc(args.argv) + ["--nproc", "1"]  # each child is one process of the run
    if "--threads" not in child:  # one torch thread pool per process, never more threads than cores
        child += ["--threads", str(args.threads or max(1, (os.cpu_count() or 1) // args.nproc))]
    os.environ[LAUNCHED] = "1"
    try:
        launch_here(args.nproc, sys.executable, "-m", "scalinglab", *child)
    except SignalException as exc:  # the launcher was told to stop: torchrun passed it on to every rank
        print(f"interrupted ({exc.sigval.name}): every process stopped at a step boundary and rank 0 "
              "checkpointed; re-run the same command to resume", file=sys.stderr)
        return 3
    except ChildFailedError as exc:
        codes = {f.exitcode for f in exc.failures.values()}
        if codes <= {3}:  # every process stopped at a step boundary and checkpointed
            print("interrupted: checkpoint saved by rank 0; re-run the same command to resume",
                  file=sys.stderr)
            return 3
        raise ScalingLabError(f"a training process of this run ended ({how_they_ended(exc.failures)}): the "
                              "others were stopped; "
                              f"re-run the same command to resume from the last checkpoint in {args.out}") \
            from None
    finally:
        os.environ.pop(LAUNCHED, None)
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for tok in argv:
        if skip:
            skip = False
        elif tok == "--nproc":
            skip = True
        elif not tok.startswith("--nproc="):
            out.append(tok)
    return out


class _Tracked:
    """The progress line, and every TRACK_EVERY seconds the tracker's progress point (`train --log`)."""

    TRACK_EVERY = 30.0

    def __init__(self, bar, tracker, run_id: str):
        self.bar, self.tracker, self.run_id, self.last = bar, tracker, run_id, time.monotonic()

    def __call__(self, p: dict) -> None:
        if self.bar is not None:
            self.bar(p)
        if self.tracker is not None and time.monotonic() - self.last >= self.TRACK_EVERY:
            self.last = time.monotonic()
            self.tracker.log_progress("train", self.run_id, p)


class _Progress:
    """One status line on stderr: step, loss, tokens/s, ETA (redrawn on a terminal, every 10% otherwise)."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.shown_tenth = -1

    def __call__(self, p: dict) -> None:
        now = time.monotonic()
        tenth = 10 * p["step"] // p["steps"]
        if self.tty and now - self.last < 0.5 and p["step"] < p["steps"]:
            return
        if not self.tty and tenth == self.shown_tenth:
            return
        self.last, self.shown_tenth = now, tenth
        line = progress_line(p)
        sys.stderr.write(("\r" + line.ljust(80)) if self.tty else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")
