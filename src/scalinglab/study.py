"""A whole study: plan the grid, train what is not done, fit, predict a held-out run, train it, compare.

Re-running with the same config resumes: finished runs are skipped, interrupted ones continue from their
checkpoints. The held-out prediction is recorded in the store BEFORE the held-out run is trained.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from . import atomic
from .data.shards import build_shards
from .errors import ScalingLabError
from .fit.estimators import ChinchillaFit
from .model.accounting import flops_per_token, param_breakdown
from .plan.grid import holdout_spec, isoflop_grid, sweep_grid
from .plan.spec import RunSpec
from .plan.study import StudyConfig
from .run.executor import Job
from .store import SQLiteStore
from .train.result import RunResult

STORE_NAME = "study.sqlite"


def open_store(out: Path, cfg: StudyConfig, fingerprint: str) -> SQLiteStore:
    """The study's store, created on the first run; a store of another config or corpus is refused."""
    path = out / STORE_NAME
    if not path.exists():
        return SQLiteStore.create(path, {"study_id": cfg.study_id, "study_config": cfg.to_dict(),
                                         "corpus_fingerprint": fingerprint})
    store = SQLiteStore.open(path)
    meta = store.meta()
    if meta.get("study_id") != cfg.study_id:
        raise ScalingLabError(f"{path} holds study {meta.get('study_id')} made with another config "
                              f"(this one is {cfg.study_id}); its finished runs would not match: use another "
                              f"--out, or re-run with the original config")
    if meta.get("corpus_fingerprint") != fingerprint:
        raise ScalingLabError(f"{path} was trained on corpus {meta.get('corpus_fingerprint')}, not {fingerprint}")
    return store


def _record(store: SQLiteStore, payload: dict) -> None:
    if payload.get("status") in ("done", "interrupted") and "evals" in payload:
        store.finish(RunResult(**payload))
    else:
        store.set_status(payload["run_id"], "failed", payload.get("reason", ""))


def _train_pending(store: SQLiteStore, out: Path, role: str, executor, log=print) -> bool:
    runs = store.runs(role=role)
    todo = runs[runs["status"] != "done"]
    jobs = [Job(RunSpec.from_dict(json.loads(s)), str(out / "runs" / rid))
            for rid, s in zip(todo["run_id"], todo["spec"])]
    flops = {j.spec.run_id: j.spec.n_tokens * flops_per_token(j.spec.shape, "chinchilla") for j in jobs}
    total, t0, done = sum(flops.values()), time.monotonic(), [0.0, 0]

    def on_result(payload: dict) -> None:
        _record(store, payload)
        done[0] += flops.get(payload["run_id"], 0.0)
        done[1] += 1
        elapsed = time.monotonic() - t0
        eta = elapsed * (total / done[0] - 1) if done[0] else float("nan")
        loss = payload.get("val_loss", float("nan"))
        log(f"  [{role} {done[1]}/{len(jobs)}] {payload['run_id']} {payload.get('status')}: "
            f"N {payload.get('n_params_total', 0):,} D {payload.get('n_tokens', 0):,} loss {loss:.4f} "
            f"{payload.get('tokens_per_s', 0.0) / 1e3:.1f}k tok/s; elapsed {elapsed / 60:.1f} min, "
            f"ETA {eta / 60:.1f} min")

    return executor.run(jobs, on_result)


def check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScalingLabError(f"cannot create --out {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise ScalingLabError(f"--out {out} is not writable")


def run_study(cfg: StudyConfig, out: str | Path, executor, holdout_executor=None,
              log: Callable[[str], None] = print) -> dict | None:
    """Run (or resume) the study into ``out``; returns the summary, or None when interrupted."""
    out = Path(out)
    check_writable(out)
    shards = build_shards(cfg.data, cfg.tokenizer)
    store = open_store(out, cfg, shards.fingerprint)
    sweep = cfg.kind == "batch-sweep"
    grid = sweep_grid(cfg, shards.vocab_size) if sweep else isoflop_grid(cfg, shards.vocab_size)
    store.plan([s for _, s in grid], "grid", [b for b, _ in grid])
    (out / "config.json").write_text(json.dumps({"study_id": cfg.study_id, **cfg.to_dict()}, indent=1))
    if sweep:
        return _batch_sweep(cfg, store, out, len(grid), executor, log)
    done = len(store.runs(role="grid", status="done"))
    log(f"study {cfg.name} ({cfg.study_id}): {len(grid)} grid runs, {done} already done")
    if not _train_pending(store, out, "grid", executor, log):
        return None
    failed = store.runs(role="grid", status="failed")
    if len(failed):
        log(f"warning: {len(failed)} grid run(s) failed: " + "; ".join(failed["reason"].astype(str)))
    fit = ChinchillaFit(bootstrap=cfg.bootstrap, seed=cfg.seed,
                        ci_flops=cfg.holdout_factor * max(cfg.budgets)).fit(store.fit_table()).result_
    fit.save(out / "fit.json")
    holdout = _holdout(cfg, store, fit, shards.vocab_size, out, holdout_executor or executor, log)
    if holdout is None:
        return None
    summary = {"study": cfg.name, "study_id": cfg.study_id, "fit": fit.to_dict(draws=False), "holdout": holdout,
               "allocations": allocations(fit, max(cfg.budgets)),
               "n_runs": len(store.runs(role="grid", status="done"))}
    _write_summary(out, summary)
    return summary


def _write_summary(out: Path, summary: dict) -> None:
    atomic.write_text(out / "summary.json", json.dumps(summary, indent=1))


def _batch_sweep(cfg, store, out, n_runs, executor, log) -> dict | None:
    """Train the planned sweep, then B_crit(L) two ways: from the noise scale and from S_min/E_min."""
    from .fit.kaplan import fit_bcrit, fit_bcrit_sweep
    log(f"batch sweep {cfg.name} ({cfg.study_id}): {n_runs} runs at batch sizes {', '.join(map(str, cfg.batch_sizes))}")
    if not _train_pending(store, out, "grid", executor, log):
        return None
    curves = store.curve_table()
    fits = {}
    for name, fit in (("noise_scale", fit_bcrit), ("batch_sweep", fit_bcrit_sweep)):
        try:
            fits[name] = fit(curves, bootstrap=cfg.bootstrap, seed=cfg.seed).to_dict()
        except ScalingLabError as exc:
            fits[name] = {"error": str(exc)}
    summary = {"study": cfg.name, "study_id": cfg.study_id, "kind": cfg.kind, "bcrit": fits,
               "n_runs": len(store.runs(role="grid", status="done"))}
    _write_summary(out, summary)
    return summary


def allocations(fit, largest: float, factors=(4, 16, 64, 256)) -> list[dict]:
    """The fitted compute-optimal N, D and loss at the next budgets, with bootstrap intervals when fitted."""
    out = []
    for f in factors:
        C = f * largest
        n, d = (float(x) for x in fit.optimal(C))
        row = {"flops": C, "n_opt": n, "d_opt": d, "loss": float(fit.predict(n, d))}
        iv = fit.optimal_interval(C)
        if iv:
            row["interval"] = {k: list(v) for k, v in iv.items()}
        out.append(row)
    return out


def _holdout(cfg, store, fit, vocab_size, out, executor, log=print) -> dict | None:
    """Predict the held-out run (recorded first), then train it and compare."""
    C = cfg.holdout_factor * max(cfg.budgets)
    meta = store.meta()
    if "holdout_prediction" not in meta:
        n_opt, _ = fit.optimal(C)
        spec = holdout_spec(float(n_opt), C, cfg, vocab_size)
        N, D = param_breakdown(spec.shape)["total"], spec.n_tokens
        lo_hi = fit.predict_interval(N, D)
        store.set_meta(holdout_prediction={"run_id": spec.run_id, "spec": spec.to_dict(), "flops_budget": C,
                                           "n_params": N, "n_tokens": D, "predicted": float(fit.predict(N, D)),
                                           "interval": list(lo_hi) if lo_hi else None})
        store.plan([spec], "holdout", [C])
        meta = store.meta()
    pred = meta["holdout_prediction"]
    log(f"held-out run: predicted loss {pred['predicted']:.4f} at N {pred['n_params']:,}, D {pred['n_tokens']:,}")
    if not _train_pending(store, out, "holdout", executor, log):
        return None
    row = store.runs(role="holdout")
    row = row[row["run_id"] == pred["run_id"]].iloc[0]
    if row["status"] != "done":
        raise ScalingLabError(f"the held-out run {pred['run_id']} failed: {row['reason']}")
    measured = float(row["val_loss"])
    interval = pred["interval"]
    return {"predicted": pred["predicted"], "measured": measured,
            "rel_error": (pred["predicted"] - measured) / measured, "interval": interval,
            "inside_interval": bool(interval and interval[0] <= measured <= interval[1]),
            "n_params": pred["n_params"], "n_tokens": pred["n_tokens"], "flops_budget": pred["flops_budget"],
            "run_id": pred["run_id"]}
