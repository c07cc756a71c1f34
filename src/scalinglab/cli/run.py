"""`scalinglab run`: the main job. Train a grid, fit, predict a held-out run, train it, compare."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ScalingLabError
from .common import emit_json


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run (or resume) a scaling study: the main job",
                       description="Without arguments: the default study on the embedded corpus into "
                                   "./scalinglab-study/. Re-running the same command resumes.")
    p.add_argument("study", nargs="?", metavar="STUDY.toml", help="a study file ([study] table)")
    p.add_argument("--preset", help="debug | default | batch-sweep | data-constrained | data-quality | "
                                    "data-quality-noisy | gpu-quick | gpu-small")
    p.add_argument("--out", default="scalinglab-study", help="study directory (default ./scalinglab-study)")
    p.add_argument("--executor", default="local", help="local (default) | ray")
    p.add_argument("--address", default=None,
                   help="with --executor ray: an existing cluster (auto | HOST:6379 | ray://HOST:10001); "
                        "default: a local cluster sized to this machine, shut down at the end")
    p.add_argument("--cpus-per-run", type=int, default=1,
                   help="with --executor ray: CPUs (torch threads) per run")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--runs-per-gpu", type=int, default=None, metavar="K",
                   help="with GPUs: runs sharing each GPU at once (default: from the largest run's memory "
                        "and the GPU's free memory, at most 8)")
    p.add_argument("--holdout-nproc", type=int, default=None, metavar="K",
                   help="train the held-out run data-parallel over K processes (torch.distributed; a GPU "
                        "each where there are GPUs; with --executor ray, K Ray Train workers); it does not "
                        "change the run's spec. Default on CPU: one single-threaded process per core "
                        "when the run is large enough to gain from it, else one (never threads: they "
                        "collapse on a busy machine; docs/training.md)")
    p.add_argument("--holdout-fsdp", action="store_true",
                   help="with --holdout-nproc K: shard the held-out model over the K processes (FSDP2)")
    p.add_argument("--compile", action="store_true",
                   help="train every run through torch.compile (off by default: on CPU it measured "
                        "0.99-1.04x eager after a 12-27 s compile per run; docs/training.md)")
    p.add_argument("--log", metavar="TRACKER", default=None,
                   help="wandb | tensorboard: each run as it finishes (config, evals, curve, final metrics) "
                        "and the study's fits and report figures; a W&B group per study, TensorBoard event "
                        "files under STUDY/tensorboard (pip install 'scalinglab[wandb]' or "
                        "'scalinglab[tensorboard]'); a tracker error is a warning, never a failed run")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args) -> int:
    from ..plan.config import load_study
    cfg = load_study(args.study, args.preset)
    _check_args(args)
    try:
        import torch  # noqa: F401  (the workers need it; say so here, once)

        from ..study import run_study
    except ImportError:
        raise ScalingLabError("training needs torch: pip install torch==2.13.0 && pip install "
                              "'scalinglab[train]'") from None
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    grid, holdout = _executors(args, log)
    from ..track import make_tracker
    tracker = make_tracker(args.log, args.out, f"{cfg.name}-{cfg.study_id}")
    from ..lock import DirLock
    from ..study import check_writable
    out = Path(args.out)
    check_writable(out)
    with DirLock(out, "run"), _sigterm_stops():  # one writer; SIGTERM stops the workers as Ctrl-C does
        try:
            computed: dict = {}
            summary = run_study(cfg, out, grid, holdout, log=log, tracker=tracker, computed=computed)
        finally:
            for ex in (grid, holdout):
                ex.close()
        if summary is None:
            print("interrupted: checkpoints written; re-run the same command to resume", file=sys.stderr)
            return 3
        from ..report.html import build, study_inputs
        from ..studydir import StudySummary
        typed = StudySummary.from_dict(summary)
        page = build(study_inputs(out, typed, computed=computed), out / "report")  # as computed, not re-read
        if tracker is not None:
            tracker.log_study(summary, out)
    log(f"report: {page}")
    if not summary.get("final", True):
        failed = summary.get("failed_runs", [])
        print(f"warning: {len(failed)} grid run(s) failed "
              f"({'; '.join(f['run_id'] + ': ' + f['reason'] for f in failed)}): this summary is provisional "
              "(\"final\": false); repair them and re-run to finish the study",
              file=sys.stderr)
    if not typed.law_converged:
        print("warning: the law that predicts did not converge (its reasons are in the summary): the "
              "held-out check and the allocations are not a law's; exit status 4", file=sys.stderr)
    if args.json:
        emit_json(summary)
    else:
        from ..report.summary import render
        print(render(typed))
    if not summary.get("final", True):
        return 1
    return 0 if typed.law_converged else 4


def _executors(args, log=print):
    """(grid executor, held-out executor) as the flags ask: local processes or a Ray cluster."""
    if args.executor == "local":
        from ..train.loop import resolve_device
        resolve_device(args.device)  # --device cuda without a GPU: one line before any run fails for it
    if args.executor == "ray":
        from ..run.ray import RayExecutor, import_ray
        import_ray()  # without the extra: one line saying how to install it, before any work
        grid = RayExecutor(args.address, cpus_per_run=args.cpus_per_run, device=args.device,
                           compile_model=args.compile)
        # one run: a whole node, or K Ray Train workers
        holdout = RayExecutor(args.address, cpus_per_run=None, device=args.device,
                              nproc=args.holdout_nproc or 1, fsdp=args.holdout_fsdp,
                              compile_model=args.compile)
        grid.connect()  # an unreachable cluster is one error line before the study dir is touched
    else:
        from ..run.local import LocalExecutor
        grid = LocalExecutor(workers=args.workers, device=args.device, runs_per_gpu=args.runs_per_gpu,
                             compile_model=args.compile, log=log)
        # one run: every core to it, or K processes of it
        holdout = LocalExecutor(workers=1, device=args.device, nproc=args.holdout_nproc,
                                fsdp=args.holdout_fsdp, compile_model=args.compile, log=log)
    return grid, holdout


def _check_args(args) -> None:
    """Every flag that contradicts another, or is out of range: one error line before any work."""
    if args.executor not in ("local", "ray"):
        raise ScalingLabError(f"unknown --executor {args.executor!r}: use local or ray")
    if args.address is not None and args.executor != "ray":
        raise ScalingLabError("--address applies to --executor ray")
    if args.workers is not None and args.executor == "ray":
        raise ScalingLabError("--workers applies to --executor local; with ray, each run takes "
                              "--cpus-per-run CPUs")
    if args.holdout_nproc is not None and args.holdout_nproc < 1:
        raise ScalingLabError(f"--holdout-nproc must be at least 1, got {args.holdout_nproc}")
    if args.holdout_fsdp and (args.holdout_nproc or 1) < 2:
        raise ScalingLabError("--holdout-fsdp shards the held-out run over processes: give --holdout-nproc 2 "
                              "or more")
    if args.workers is not None and args.workers < 1:
        raise ScalingLabError(f"--workers must be at least 1, got {args.workers}")
    if args.cpus_per_run < 1:
        raise ScalingLabError(f"--cpus-per-run must be at least 1, got {args.cpus_per_run}")
    if args.runs_per_gpu is not None and args.runs_per_gpu < 1:
        raise ScalingLabError(f"--runs-per-gpu must be at least 1, got {args.runs_per_gpu}")


class _sigterm_stops:
    """SIGTERM to the driver becomes a KeyboardInterrupt: the executor stops its workers (each writes a
    checkpoint) and the study exits as interrupted, instead of the driver dying with workers still
    training."""

    def __enter__(self):
        import signal

        def stop(signum, frame):
            raise KeyboardInterrupt
        self.previous = signal.signal(signal.SIGTERM, stop)
        return self

    def __exit__(self, *exc):
        import signal
        signal.signal(signal.SIGTERM, self.previous)
        return False
