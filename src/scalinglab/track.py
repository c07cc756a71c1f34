"""Experiment trackers, optional: W&B and TensorBoard, fed from finished runs and from the study's results.

A run is logged as it trains (its progress every ~30 s: step, training loss, tokens/s, MFU, the final-loss
estimate; from the study's watcher or `train`'s progress line, never inside a training step) and when it
finishes, from its result (config, every eval row, the dense curve, the final metrics); a study logs its
fits, held-out check and report figures when it ends. A study is a W&B group (its name and id) and a
TensorBoard directory per run. A tracker never blocks or fails a run: the first error it raises becomes one
``warning:`` line and the tracker is off for the rest of the session.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from .errors import ScalingLabError

KINDS = ("wandb", "tensorboard")
INSTALL = {"wandb": "pip install 'scalinglab[wandb]'", "tensorboard": "pip install 'scalinglab[tensorboard]'"}


def make_tracker(kind: str | None, out_dir: str | Path, group: str) -> "Tracker | None":
    """A tracker of ``kind`` (None: no tracking) writing under ``out_dir``; an unknown kind or a missing
    library is one error before anything trains."""
    if kind is None:
        return None
    if kind not in KINDS:
        raise ScalingLabError(f"unknown tracker {kind!r}: choose {' or '.join(KINDS)}")
    try:
        if kind == "wandb":
            import wandb  # noqa: F401
        else:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ScalingLabError(f"the {kind} tracker needs its library: {INSTALL[kind]}") from None
    return (WandbTracker if kind == "wandb" else TensorBoardTracker)(Path(out_dir), group)


class Tracker:
    """Calls are guarded: a tracker error is a warning and switches the tracker off."""

    def __init__(self, out_dir: Path, group: str):
        self.out_dir, self.group, self.on = out_dir, group, True
        self.live: dict = {}  # W&B runs opened by a progress point, finished by log_run

    def log_run(self, role: str, result, spec: dict | None = None) -> None:
        self._guarded(self._log_run, role, result.to_dict(), spec or {})

    def log_progress(self, role: str, run_id: str, p: dict) -> None:
        """A run's progress while it trains (the study's watcher, `train`'s progress line: every ~30 s):
        step, training loss, tokens/s, MFU and the final-loss estimate, so a tracker shows a minutes-long run
        as it goes; the evals and the curve follow when it ends (log_run)."""
        self._guarded(self._log_progress, role, run_id, _progress_values(p), int(p["step"]))

    def _log_progress(self, role, run_id, values, step):
        raise NotImplementedError

    def log_study(self, summary: dict, study_dir: Path) -> None:
        self._guarded(self._log_study, summary, Path(study_dir))

    def _guarded(self, fn, *args) -> None:
        if not self.on:
            return
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - whatever a tracker raises, the run goes on
            self.on = False
            print(f"warning: {type(self).__name__} failed ({type(exc).__name__}: {str(exc)[:200]}); "
                  "tracking is off for the rest of this session, training goes on", file=sys.stderr)

    def _log_run(self, role, result, spec):
        raise NotImplementedError

    def _log_study(self, summary, study_dir):
        raise NotImplementedError


def _steps(result: dict) -> list[tuple[int, dict]]:
    """Eval rows and curve points merged by step (W&B wants increasing steps), finite values only."""
    rows: dict[int, dict] = {}
    for e in result.get("evals", ()):
        rows.setdefault(int(e["step"]), {}).update(
            {f"eval/{k}": e[k] for k in ("val_loss", "train_loss", "bits_per_byte", "lr", "noise_scale")
             if k in e} | {f"eval/val_loss/{src}": v for src, v in e.get("source_loss", {}).items()})
    for p in result.get("curve", ()):
        rows.setdefault(int(p["step"]), {}).update(
            {f"curve/{k}": p[k] for k in ("loss", "probe", "lr") if k in p})
    clean = lambda d: {k: float(v) for k, v in d.items()  # noqa: E731
                       if isinstance(v, (int, float)) and math.isfinite(v)}
    return [(s, clean(rows[s])) for s in sorted(rows)]


def _progress_values(p: dict) -> dict:
    e = p.get("estimate") or {}
    values = {"progress/train_loss": p.get("train_loss"), "progress/tokens_per_s": p.get("tokens_per_s"),
              "progress/mfu": p.get("mfu"),
              "progress/estimate_final": e.get("final") if e.get("converged") else None}
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}


FINALS = ("val_loss", "bits_per_byte", "n_params_total", "n_params_nonembed", "n_tokens", "flops", "steps",
          "wall_time_s", "tokens_per_s", "mfu")


def _finals(result: dict) -> dict:
    return {f"final/{k}": float(result[k]) for k in FINALS
            if isinstance(result.get(k), (int, float)) and math.isfinite(result[k])}


def _study_numbers(summary: dict, study_dir: Path) -> dict:
    """The held-out check and every saved fit's parameters as flat numbers."""
    out = {}
    h = summary.get("holdout") or {}
    for k in ("predicted", "measured", "rel_error"):
        if isinstance(h.get(k), (int, float)):
            out[f"holdout/{k}"] = float(h[k])
    from .fit.fitfile import load_fits
    from .studydir import CURVE_FITS_FILE, FIT_FILE, FITS_FILE
    for name in (FIT_FILE, FITS_FILE, CURVE_FITS_FILE):  # the files as the study wrote them, store or not
        for fit in load_fits(study_dir / name) if (study_dir / name).is_file() else ():
            for p, v in fit.params.items():
                if math.isfinite(v):
                    out[f"fit/{fit.key}/{p}"] = float(v)
    return out


class TensorBoardTracker(Tracker):
    """Event files under STUDY/tensorboard/<role>-<run_id>/ and STUDY/tensorboard/study/."""

    def _writer(self, name: str):
        from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter(log_dir=str(self.out_dir / "tensorboard" / name))

    def _log_progress(self, role, run_id, values, step):
        w = self._writer(f"{role}-{run_id}")
        try:
            for k, v in values.items():
                w.add_scalar(k, v, step)
        finally:
            w.close()

    def _log_run(self, role, result, spec):
        w = self._writer(f"{role}-{result['run_id']}")
        try:
            w.add_text("config", json.dumps({"run_id": result["run_id"], "role": role, "group": self.group,
                                             "spec": spec}, indent=1))
            for step, values in _steps(result):
                for k, v in values.items():
                    w.add_scalar(k, v, step)
            for k, v in _finals(result).items():
                w.add_scalar(k, v, int(result.get("steps", 0)))
        finally:
            w.close()

    def _log_study(self, summary, study_dir):
        import matplotlib.image as mpimg
        w = self._writer("study")
        try:
            for k, v in _study_numbers(summary, study_dir).items():
                w.add_scalar(k, v, 0)
            for png in sorted((study_dir / "report").glob("*.png")):
                w.add_image(f"report/{png.stem}", mpimg.imread(png)[..., :3], 0, dataformats="HWC")
        finally:
            w.close()


class WandbTracker(Tracker):
    """One W&B run per training run (group: the study) and one for the study's results. The mode is
    W&B's own (WANDB_MODE: online, or offline files under STUDY/wandb to `wandb sync` later)."""

    def _init(self, name: str, job_type: str, config: dict):
        import wandb
        return wandb.init(project=os.environ.get("WANDB_PROJECT", "scalinglab"), group=self.group, name=name,
                          job_type=job_type, config=config, dir=str(self.out_dir), reinit="create_new")

    def _log_progress(self, role, run_id, values, step):
        """A W&B run opened at the first progress point and kept for the rest (and for log_run): its series
        are on their own x-axes (progress/step, eval/step, curve/step), as progress comes before the evals
        it is followed by."""
        live = self.live
        if run_id not in live:
            run = self._init(run_id, role, {"run_id": run_id, "role": role})
            for prefix in ("progress", "eval", "curve"):
                run.define_metric(f"{prefix}/step", hidden=True)
                run.define_metric(f"{prefix}/*", step_metric=f"{prefix}/step")
            live[run_id] = run
        live[run_id].log(values | {"progress/step": step})

    def _log_run(self, role, result, spec):
        live = self.live.pop(result["run_id"], None)
        run = live or self._init(result["run_id"], role, {"run_id": result["run_id"], "role": role,
                                                         "spec": spec})
        try:
            if live is not None:
                run.config.update({"spec": spec}, allow_val_change=True)
            for step, values in _steps(result):
                if live is None:
                    run.log(values, step=step)
                else:  # the run's own x-axes: W&B's step already counted the progress points
                    run.log(values | {f"{k.split('/')[0]}/step": step for k in values})
            run.summary.update(_finals(result))
        finally:
            run.finish()

    def _log_study(self, summary, study_dir):
        import wandb
        run = self._init("study", "study", {"study": summary.get("study"),
                                            "study_id": summary.get("study_id")})
        try:
            numbers = _study_numbers(summary, study_dir)
            images = {f"report/{p.stem}": wandb.Image(str(p))
                      for p in sorted((study_dir / "report").glob("*.png"))}
            run.log(numbers | images, step=0)
            run.summary.update(numbers)
        finally:
            run.finish()
