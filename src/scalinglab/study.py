"""A whole study: plan the grid, train what is not done, fit, predict a held-out run, train it, compare.

Re-running with the same config resumes: finished runs are skipped, interrupted ones continue from their
checkpoints. The held-out prediction is recorded in the store BEFORE the held-out run is trained.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import atomic, jsonsafe
from .data.shards import build_shards
from .errors import ScalingLabError
from .fit.backtest import candidate_predictions, render_table, select
from .fit.chinchilla.approach3 import ChinchillaFit
from .lock import DirLock
from .model.accounting import flops_per_token, param_breakdown
from .plan.config import StudyConfig
from .plan.grid import isoflop_grid, noise_specs, sweep_grid
from .plan.schedules import cooldown_start
from .plan.spec import RunSpec
from .predict import FAMILY_FLOP_CONVENTION, plan_in_family
from .run.executor import Job
from .store import SQLiteStore
from .store.sqlite import checkpoint
from .studydir import (
    CONFIG_FILE,
    CURVE_FITS_FILE,
    FIT_FILE,
    FITS_FILE,
    LAW_FILE,
    STORE_FILE,
    SUMMARY_FILE,
    StudySummary,
)
from .train.progress import progress_line, read_progress
from .train.result import RunResult


def open_store(out: Path, cfg: StudyConfig, fingerprint: str) -> SQLiteStore:
    """The study's store, created on the first run; a store of another config or corpus is refused."""
    path = out / STORE_FILE
    if not path.exists():
        return SQLiteStore.create(path, {"study_id": cfg.study_id, "study_config": cfg.to_dict(),
                                         "corpus_fingerprint": fingerprint})
    store = SQLiteStore.open(path)
    meta = store.meta()
    if meta.get("study_id") != cfg.study_id:
        raise ScalingLabError(f"{path} holds study {meta.get('study_id')} made with another config "
                              f"(this one is {cfg.study_id}); its finished runs would not match: use another "
                              "`out` directory, or re-run with the original config", params=("out",))
    if meta.get("corpus_fingerprint") != fingerprint:
        raise ScalingLabError(f"{path} was trained on corpus {meta.get('corpus_fingerprint')}, not "
                              f"{fingerprint}")
    return store


def _record(store: SQLiteStore, result: RunResult) -> None:
    if result.status == "failed":
        store.set_status(result.run_id, "failed", result.reason)
    else:
        store.finish(result)


def branch_plan(specs: list[RunSpec], out: Path) -> dict[str, dict]:
    """For WSD runs, train kwargs per run_id: the longest run of each branch key (a size) is its trunk and
    keeps a snapshot where each shorter run's cool-down starts; the shorter ones start from it."""
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        if spec.schedule == "wsd":
            groups.setdefault(spec.branch_key, []).append(spec)
    plan = {}
    for group in groups.values():
        trunk = max(group, key=lambda s: s.n_tokens)
        starts = {s.run_id: cooldown_start(s.steps, s.cooldown_frac) for s in group if s is not trunk}
        plan[trunk.run_id] = {"snapshot_at": tuple(sorted(set(starts.values())))}
        for rid, start in starts.items():
            plan[rid] = {"init_from": str(out / "runs" / trunk.run_id / "snapshots" / f"step-{start}.pt")}
    return plan


def _train_pending(store: SQLiteStore, out: Path, roles: tuple[str, ...], executor, log=print,
                   tracker=None) -> bool:
    """Train the unfinished runs of ``roles`` in one pass over the workers: WSD trunks and standalone runs
    first (a seed repeat fills a core the grid's tail leaves idle), then the branches."""
    todo, role_of = [], {}
    for role in roles:
        branching = branch_plan(list(store.specs(role).values()), out)
        for spec in store.pending(role):
            todo.append(Job(spec, str(out / "runs" / spec.run_id), **branching.get(spec.run_id, {})))
            role_of[spec.run_id] = role
    flops = {j.spec.run_id: j.spec.n_tokens * flops_per_token(j.spec.shape, "chinchilla")
             * (j.spec.cooldown_frac if j.init_from else 1.0) for j in todo}  # a branch trains its cool-down
    total, t0 = sum(flops.values()), time.monotonic()
    flops_done, runs_done = 0.0, 0

    specs = {j.spec.run_id: j.spec for j in todo}

    def on_result(res: RunResult) -> None:
        nonlocal flops_done, runs_done
        _record(store, res)
        if tracker is not None and res.status == "done":  # after the store has it: never in its way
            tracker.log_run(role_of.get(res.run_id, roles[0]), res, specs[res.run_id].to_dict()
                            if res.run_id in specs else None)
        flops_done += flops.get(res.run_id, 0.0)
        runs_done += 1
        elapsed = time.monotonic() - t0
        eta = elapsed * (total / flops_done - 1) if flops_done else float("nan")
        log(f"  [{role_of.get(res.run_id, roles[0])} {runs_done}/{len(todo)}] {res.run_id} {res.status}: "
            f"N {res.n_params_total:,} D {res.n_tokens:,} loss {res.val_loss:.4f} "
            f"{res.tokens_per_s / 1e3:.1f}k tok/s{_mfu(res.mfu)}; elapsed {elapsed / 60:.1f} min, "
            f"ETA {eta / 60:.1f} min" + (f" ({res.reason})" if res.status == "failed" else ""))

    first = [j for j in todo if j.init_from is None]
    then = [j for j in todo if j.init_from is not None]
    with _Watcher(todo, role_of, log, tracker):
        return executor.run(first, on_result) and executor.run(then, on_result)


class _Watcher:
    """A progress line per run in flight every PROGRESS_EVERY seconds (read from the progress.json its worker
    writes: train/progress.py), so a minutes-long run (the held-out one) is not silent until it ends, on
    the terminal and in the tracker. A daemon thread; it only reads files, logs and tracks."""

    PROGRESS_EVERY = 30.0

    def __init__(self, jobs, role_of, log, tracker=None):
        self.jobs, self.role_of, self.log, self.tracker = jobs, role_of, log, tracker
        self.stop = threading.Event()
        self.since = time.time()

    def __enter__(self):
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=2)
        return False

    def _watch(self):
        shown = {}
        while not self.stop.wait(self.PROGRESS_EVERY):
            for job in self.jobs:
                p = read_progress(job.run_dir, since=shown.get(job.run_dir, self.since))
                if p is None or p["step"] >= p["steps"]:
                    continue
                shown[job.run_dir] = p["time"]
                role = self.role_of.get(job.spec.run_id, "")
                self.log(f"  [{role} running] {job.spec.run_id}: {progress_line(p)}")
                if self.tracker is not None:  # the tracker sees the run as it goes, not only when it ends
                    self.tracker.log_progress(role, job.spec.run_id, p)


def _mfu(value: float) -> str:
    return f", MFU {100 * value:.0f}%" if value == value else ""  # NaN: the run did not train


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScalingLabError(f"cannot create `out` {out}: {exc.strerror}", params=("out",)) from None
    if not os.access(out, os.W_OK):
        raise ScalingLabError(f"`out` {out} is not writable", params=("out",))


def run_study(cfg: StudyConfig, out: str | Path, executor, holdout_executor=None,
              log: Callable[[str], None] = print, tracker=None, computed: dict | None = None) -> dict | None:
    """Run (or resume) the study into ``out``; returns the summary, or None when interrupted. ``tracker``
    (track.py) logs each run as it finishes. ``computed``, when given, receives what the study fitted
    (``fit3``, ``fits``: (fits, skipped) as in fits.json) for a report drawn next, without reading the
    files back."""
    out = Path(out)
    check_writable(out)
    with DirLock(out, "run"):
        try:
            return _run_study(cfg, out, executor, holdout_executor, log, tracker,
                              {} if computed is None else computed)
        finally:  # the log emptied into the file: a copy or a read-only reader sees every run
            checkpoint(out / STORE_FILE)


def _run_study(cfg: StudyConfig, out: Path, executor, holdout_executor, log, tracker=None,
               computed: dict | None = None) -> dict | None:
    shards = build_shards(cfg.data, cfg.tokenizer, val_data=cfg.val_data or None)
    sweep = cfg.kind == "batch-sweep"
    # planned before the store exists: a config the planner refuses leaves no half-created study behind
    grid = sweep_grid(cfg, shards.vocab_size) if sweep else isoflop_grid(cfg, shards.vocab_size)
    store = open_store(out, cfg, shards.fingerprint)
    store.plan([s for _, s in grid], "grid", [b for b, _ in grid])
    atomic.write_text(out / CONFIG_FILE, json.dumps({"study_id": cfg.study_id, **cfg.to_dict()}, indent=1))
    if sweep:
        return _batch_sweep(cfg, store, out, len(grid), executor, log, tracker)
    noise = noise_specs(cfg, grid)
    store.plan([s for _, s in noise], "noise", [b for b, _ in noise])
    done = len(store.runs(role="grid", status="done"))
    log(f"study {cfg.name} ({cfg.study_id}): {len(grid)} grid runs ({cfg.schedule}), {done} already done"
        + (f", {len(noise)} seed repeats" if noise else ""))
    if not _train_pending(store, out, ("grid", "noise"), executor, log, tracker):
        return None
    failed = store.runs(role="grid", status="failed")
    if len(failed):
        log(f"warning: {len(failed)} grid run(s) failed: " + "; ".join(failed["reason"].astype(str)))
    table = store.fit_table()
    fit = ChinchillaFit(bootstrap=cfg.bootstrap, seed=cfg.seed,
                        ci_flops=cfg.holdout_factor * max(cfg.budgets)).fit(table).result_
    run_noise = measure_run_noise(store, noise, cfg.seed)
    fit = with_study_context(fit, cfg, shards.vocab_size, run_noise)
    fit.save(out / FIT_FILE)
    law = with_study_context(chosen_law(cfg, table, fit, log), cfg, shards.vocab_size, run_noise)
    law.save(out / LAW_FILE)
    holdout = _holdout(cfg, store, law, shards.vocab_size, out, holdout_executor or executor, run_noise, log,
                       tracker)
    if holdout is None:
        return None
    selection = law.settings["selection"]
    holdout["candidates"] = candidate_predictions(selection, holdout["n_params"], holdout["n_tokens"])
    summary = {"study": cfg.name, "study_id": cfg.study_id, "flop_convention": FAMILY_FLOP_CONVENTION,
               "schedule": cfg.schedule, "fit": fit.to_dict(draws=False), "run_noise": run_noise,
               "law": {"form": selection["chosen"], "key": law.key, "why": selection["why"],
                       "converged": bool(law.converged), "warnings": list(law.warnings),
                       "not_identified": list(law.not_identified),
                       "params": dict(law.params), "cuts": selection["cuts"], "backtest": selection["table"],
                       "error_model": selection["error_model"]},
               "holdout": holdout, "allocations": allocations(law, max(cfg.budgets), cfg, shards.vocab_size),
               "n_runs": len(store.runs(role="grid", status="done")),
               # a study with failed grid runs is provisional: its fit and prediction are redone once they
               # are repaired (the held-out prediction is tied to the exact set of runs it was fitted on)
               "final": not len(failed),
               # the law that predicts did not converge: the study finished, its predictions are not a law's
               "law_converged": bool(law.converged) and bool(holdout.get("fit_converged", True)),
               "failed_runs": [{"run_id": r, "reason": str(why)}
                               for r, why in zip(failed["run_id"], failed["reason"])]}
    from .fit.every import fit_study_laws
    # every other law, fitted once, for the report and `plan --law STUDY/fits.json --fit KEY`
    fits, skipped = fit_study_laws(out / FITS_FILE, store.curve_table(), fit,
                                   context=study_context(cfg, shards.vocab_size, run_noise))
    if computed is not None:
        computed.update(fit3=fit, fits=([f for f in fits if f.key != "chinchilla:3"], skipped))
    if cfg.curve_laws:
        try:
            summary["curve_laws"] = curve_laws(out, store, log)
        except (ScalingLabError, ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
            # an optional analysis of finished runs: it never costs the study its result
            log(f"warning: the whole-curve law could not be fitted ({exc}); the study's result stands")
            summary["curve_laws"] = {"error": str(exc)}
    _write_summary(out, summary)
    return summary


def chosen_law(cfg: StudyConfig, table, fit3, log=print):
    """The study's law: the form of L(N, D) with the lowest backtest error on the grid (or the one the
    study file pins), fitted on every grid run with the study's bootstrap; Approach 3 is ``fit3``."""
    fit, bt = select(table, pin=None if cfg.law == "auto" else cfg.law, bootstrap=cfg.bootstrap,
                     seed=cfg.seed, chinchilla=fit3)
    sel = fit.settings["selection"]
    log(f"law: the {sel['chosen']} form ({sel['why']}); backtest over {len(bt.cuts)} compute cuts:")
    log(render_table(sel["table"], sel["chosen"]))
    return fit


ESTIMATE_SOURCE = "other runs"  # the estimate table's source of the leave-one-out estimates


def curve_laws(out: Path, store: SQLiteStore, log=print) -> dict | None:
    """The Multi-Power Law fitted to each model size's dense curves (fit/curvelaws/), saved as
    STUDY/curvefits.json (a fit file `plan --law FILE --schedule ...` reads), and every run's final loss
    estimated from its first 30% and 50% with the law of the study's other runs (the estimate table).
    -> the summary's numbers, or None for a study without curves."""
    from .fit.curvelaws import curves_of_runs, estimate_summary, fit_curves, leave_one_out_estimates
    from .fit.fitfile import write_fits
    runs = curves_of_runs(store.training_curves())
    if not runs:
        return None
    t0 = time.perf_counter()
    sizes = sorted({n for n, _ in runs.values()})
    fits = [fit_curves([c for m, c in runs.values() if m == n], name=f"N={n:.6g}") for n in sizes]
    rows = leave_one_out_estimates(runs)
    for rid in runs:
        store.add_estimates(rid, [r for r in rows if r["run_id"] == rid], ESTIMATE_SOURCE)
    write_fits(out / CURVE_FITS_FILE, fits, estimates=rows)
    summary = {"law": "multi-power", "fits": [{"size": f.approach, "converged": f.converged,
                                               "mean_abs_error": f.diagnostics["mean_abs_error"],
                                               "warnings": list(f.warnings)} for f in fits],
               "estimates": estimate_summary(rows), "seconds": time.perf_counter() - t0}
    est = summary["estimates"]
    log(f"whole-curve law: {sum(f.converged for f in fits)} of {len(fits)} sizes converged; final loss "
        "from the first half of each run: median |error| "
        + (f"{100 * est['0.5']['median_abs_error']:.2f}%" if "0.5" in est else "n/a")
        + f" ({summary['seconds']:.0f} s)")
    return summary


def measure_run_noise(store: SQLiteStore, noise: list, seed: int) -> dict | None:
    """The relative spread of one grid point's loss over seeds: its own run and the seed repeats."""
    if not noise:
        return None
    base = dataclasses.replace(noise[0][1], seed=seed)  # the grid's own run of that point
    ids = {base.run_id} | {s.run_id for _, s in noise}
    runs = pd.concat([store.runs(role=r, status="done") for r in ("grid", "noise")])
    losses = runs.loc[runs["run_id"].isin(ids), "val_loss"].astype(float).to_numpy()
    if len(losses) < 2:
        return None
    return {"n_seeds": int(len(losses)), "losses": [float(x) for x in losses],
            "sd_rel": float(np.std(np.log(losses), ddof=1)),
            "n_params": int(param_breakdown(base.shape)["total"]), "n_tokens": int(base.n_tokens)}


def _write_summary(out: Path, summary: dict) -> None:
    """summary.json, checked first by the type its readers read it as (StudySummary)."""
    text = jsonsafe.dumps(summary, indent=1)
    StudySummary.from_dict(json.loads(text))  # a writer's bug is raised here, not in a later reader
    atomic.write_text(out / SUMMARY_FILE, text)


def _batch_sweep(cfg, store, out, n_runs, executor, log, tracker=None) -> dict | None:
    """Train the planned sweep, then B_crit(L) two ways: from the noise scale and from S_min/E_min."""
    from .fit.kaplan import fit_bcrit, fit_bcrit_sweep
    log(f"batch sweep {cfg.name} ({cfg.study_id}): {n_runs} runs at batch sizes "
        f"{', '.join(map(str, cfg.batch_sizes))}")
    if not _train_pending(store, out, ("grid",), executor, log, tracker):
        return None
    curves = store.curve_table()
    fits = {}
    for name, fit in (("noise_scale", fit_bcrit), ("batch_sweep", fit_bcrit_sweep)):
        try:
            fits[name] = fit(curves, bootstrap=cfg.bootstrap, seed=cfg.seed).to_dict(draws=False)
        except ScalingLabError as exc:
            fits[name] = {"error": str(exc)}
    summary = {"study": cfg.name, "study_id": cfg.study_id, "kind": cfg.kind, "bcrit": fits,
               "n_runs": len(store.runs(role="grid", status="done"))}
    _write_summary(out, summary)
    return summary


def allocations(fit, largest: float, cfg: StudyConfig, vocab_size: int,
                factors=(4, 16, 64, 256)) -> list[dict]:
    """The fitted compute-optimal run of the model family at the next budgets (exact FLOPs, like the grid),
    with the law's bootstrap interval on its loss and the factor it extrapolates beyond the largest budget."""
    rows = []
    for f in factors:
        p = plan_in_family(fit, f * largest, cfg, vocab_size)
        rows.append({"flops": p.flops, "n_params": p.n_params, "n_tokens": p.n_tokens, "loss": p.loss,
                     "tokens_per_param": p.tokens_per_param, "shape": p.shape}
                    | ({"interval": p.interval, "prediction_interval": p.prediction_interval}
                       if p.interval else {}) | {"extrapolation": float(f)})
    return rows


def study_context(cfg: StudyConfig, vocab_size: int, run_noise: dict | None) -> dict:
    """What a later `plan --law fit.json` needs of the study a fit came from: the model family's vocabulary
    and context (shapes like the study's), and the measured run-to-run noise for prediction intervals."""
    extra = {"vocab_size": int(vocab_size), "n_ctx": int(cfg.n_ctx), "model_family": "scalinglab"}
    if run_noise:
        extra |= {"noise_sd": run_noise["sd_rel"],
                  "noise_source": f"{run_noise['n_seeds']} seeds of one grid point"}
    return extra


def with_study_context(fit, cfg: StudyConfig, vocab_size: int, run_noise: dict | None):
    """The study's fit with its study_context in its settings."""
    return dataclasses.replace(fit, settings=dict(fit.settings) | study_context(cfg, vocab_size, run_noise))


def _holdout(cfg, store, fit, vocab_size, out, executor, run_noise=None, log=print,
             tracker=None) -> dict | None:
    """Predict the held-out run (recorded first), then train it and compare."""
    C = cfg.holdout_factor * max(cfg.budgets)
    meta = store.meta()
    fit_runs = sorted(store.runs(role="grid", status="done")["run_id"])
    if "holdout_prediction" in meta and meta["holdout_prediction"].get("fit_runs") != fit_runs:
        log("the grid's finished runs changed since the held-out prediction was made: predicting it again")
        del meta["holdout_prediction"]
    elif "holdout_prediction" in meta and meta["holdout_prediction"].get("law") != fit.key:
        was = meta["holdout_prediction"].get("law", "chinchilla:3")
        log(f"the study's law is now {fit.key} (was {was}): predicting the held-out run again")
        del meta["holdout_prediction"]
    if "holdout_prediction" not in meta:
        plan = plan_in_family(fit, C, cfg, vocab_size, cfg.min_steps)
        spec = plan.spec
        N, D, predicted = int(plan.n_params), spec.n_tokens, plan.loss
        if spec.run_id in set(store.runs(role="grid")["run_id"]):
            raise ScalingLabError(
                f"the held-out run at {cfg.holdout_factor:g}x the largest budget (N {N:,}, D {D:,}) is one "
                "of the grid's own runs: the law was fitted on it, so it would predict nothing held out; "
                "raise holdout_factor in the study file (the presets use 1.5-4)")
        # the plan computed both intervals from the fit's draws (the prediction one with the seed noise)
        fit_iv = (plan.interval or {}).get("loss")
        pred_iv = (plan.prediction_interval or {}).get("loss") if run_noise else fit_iv
        store.set_meta(holdout_prediction={
            "run_id": spec.run_id, "spec": spec.to_dict(), "flops_budget": C, "n_params": N, "n_tokens": D,
            "flops": D * flops_per_token(spec.shape, "chinchilla"), "predicted": predicted,
            "fit_interval": list(fit_iv) if fit_iv else None,
            "interval": list(pred_iv) if pred_iv else None,
            "fit_converged": bool(fit.converged), "fit_runs": fit_runs, "law": fit.key})
        store.plan([spec], "holdout", [C])
        meta = store.meta()
    pred = meta["holdout_prediction"]
    log(f"held-out run: predicted loss {pred['predicted']:.4f} at N {pred['n_params']:,}, D "
        f"{pred['n_tokens']:,}")
    if not _train_pending(store, out, ("holdout",), executor, log, tracker):
        return None
    row = store.runs(role="holdout")
    row = row[row["run_id"] == pred["run_id"]].iloc[0]
    if row["status"] != "done":
        raise ScalingLabError(f"the held-out run {pred['run_id']} failed: {row['reason']}")
    measured = float(row["val_loss"])
    interval = pred["interval"]
    return {"predicted": pred["predicted"], "measured": measured,
            "rel_error": (pred["predicted"] - measured) / measured, "interval": interval,
            "interval_kind": ("95%: bootstrap of the law, widened by run-to-run noise" if run_noise else
                              "95% bootstrap of the law (no seed repeats: run-to-run noise not included)")
            + (" and by the form's backtest error at this extrapolation"
               if fit.extrapolation_sd({"N": pred["n_params"], "D": pred["n_tokens"]}) else ""),
            "fit_interval": pred.get("fit_interval"),
            "inside_interval": bool(interval and interval[0] <= measured <= interval[1]),
            "n_params": pred["n_params"], "n_tokens": pred["n_tokens"], "flops_budget": pred["flops_budget"],
            "flops": pred.get("flops"), "run_id": pred["run_id"], "fit_converged": pred.get("fit_converged"),
            "law": pred.get("law", "chinchilla:3")}
