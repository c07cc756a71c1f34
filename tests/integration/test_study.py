"""The main job end to end on the debug preset: a study killed with SIGKILL resumes to the same result.

The `uninterrupted` debug study (tests/integration/conftest.py) is trained once per session; the resume
test starts from a copy of it with three runs not yet trained (helpers.partly_done)."""
import json
import os
import re
import signal
import sqlite3
import time

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from scalinglab.plan.config import PRESETS  # noqa: E402
from scalinglab.plan.spec import RunSpec  # noqa: E402

from .helpers import DEBUG_EXIT, call, cli, expected_eval_steps, partly_done, start_study, wait_done
from .helpers import statuses as read_statuses


def test_ctrl_c_then_sigkill_then_resume_equals_uninterrupted(uninterrupted, tmp_path):
    out_a, summary_a = uninterrupted
    db, log = tmp_path / "study.sqlite", tmp_path.parent / f"{tmp_path.name}-run.log"
    # the uninterrupted study before three of its runs began (the largest model, a WSD branch of the
    # smallest, the seed repeat); its held-out run is kept, its prediction made again from the new fit
    todo = partly_done(out_a, tmp_path, grid=("smallest branch", "largest"), roles=("noise",))
    assert len(todo) == 3

    # Ctrl-C (SIGINT to the whole foreground group, as a terminal sends it) after the first run is done
    proc = start_study(tmp_path, log)
    wait_done(proc, db, len(read_statuses(db)) - len(todo) + 1, log)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 3
    assert "interrupted: checkpoints written" in log.read_text()
    statuses = read_statuses(db)
    assert "running" not in statuses.values()
    stopped = [rid for rid, st in statuses.items() if st == "interrupted"]
    assert stopped, statuses  # a worker was mid-run: it stopped at a step boundary and said so
    for rid in stopped:
        assert (tmp_path / "runs" / rid / "checkpoint.pt").is_file()

    # then a crash: SIGKILL to driver and workers at once, mid-grid of the resumed study (the interrupted
    # run done, the branch not yet)
    proc = start_study(tmp_path, log)
    wait_done(proc, db, list(statuses.values()).count("done") + 1, log)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    r = cli("run", "--preset", "debug", "--out", tmp_path, "--json")
    assert r.returncode == DEBUG_EXIT, r.stderr
    summary_b = json.loads(r.stdout)

    with sqlite3.connect(tmp_path / "study.sqlite") as conn:
        runs = conn.execute("SELECT run_id, status, spec, role FROM runs").fetchall()
        evals = conn.execute("SELECT run_id, step FROM evals").fetchall()
    with sqlite3.connect(out_a / "study.sqlite") as conn:
        planned_a = {row[0] for row in conn.execute("SELECT run_id FROM runs")}
    assert {rid for rid, _, _, _ in runs} == planned_a and len(runs) == len(planned_a)
    assert all(status == "done" for _, status, _, _ in runs)
    assert len(evals) == len(set(evals))  # nothing duplicated
    specs = {rid: (role, RunSpec.from_dict(json.loads(spec))) for rid, _, spec, role in runs}
    for rid, expected in expected_eval_steps(specs).items():  # nothing lost: every run has exactly its evals
        assert sorted(s for r, s in evals if r == rid) == expected, rid
    for k, v in summary_a["fit"]["params"].items():
        assert summary_b["fit"]["params"][k] == pytest.approx(v, rel=1e-6), k
    assert summary_b["holdout"]["measured"] == pytest.approx(summary_a["holdout"]["measured"], abs=1e-6)
    assert summary_b["holdout"]["predicted"] == pytest.approx(summary_a["holdout"]["predicted"], rel=1e-9)


def test_finished_study_reruns_instantly_and_reports(uninterrupted):
    out, summary = uninterrupted
    t0 = time.time()
    r = call("run", "--preset", "debug", "--out", out, "--json")
    assert r.returncode == DEBUG_EXIT and time.time() - t0 < 60
    assert json.loads(r.stdout)["holdout"] == summary["holdout"]
    rep = json.loads(call("report", out, "--json").stdout)
    assert set(rep["holdout"]) == {"predicted", "measured", "rel_error", "interval", "inside_interval",
                                   "fit_converged", "law"}
    assert rep["law_converged"] is False and rep["holdout"]["fit_converged"] is False and rep["final"] is True
    text = call("report", out, "--out", out.parent / "rep-text").stdout
    assert "the law did NOT converge: this prediction is no test of a law" in text
    md = call("report", out, "--format", "md").stdout  # the law and the allocations for a paper
    assert "| C (FLOPs) | N_opt | D_opt | D/N | loss [95% one run] |" in md and "NOT converged" in md
    assert md.count("\n| ") >= 5 + 4  # 5 parameters, 4 allocations
    assert rep["holdout"]["rel_error"] == pytest.approx(
        (summary["holdout"]["predicted"] - summary["holdout"]["measured"]) / summary["holdout"]["measured"])
    fit = json.loads(call("fit", out, "--json").stdout)
    assert fit["params"] == pytest.approx(summary["fit"]["params"], rel=1e-6)


BAD_RUNS = {
    "unknown preset": (["run", "--preset", "huge"], "unknown preset 'huge'"),
    "not TOML": (["run", "{tmp}/bad.toml"], "is not valid TOML"),
    "negative budget": (["run", "{tmp}/neg.toml"], "impossible value for budgets"),
    "unknown key": (["run", "{tmp}/key.toml"], "unknown key 'budgetz'"),
    "out under a file": (["run", "--preset", "debug", "--out", "{tmp}/file/sub"], "cannot create --out"),
    "another config's study": (["run", "{tmp}/other.toml", "--out", "{study}"], "made with another config"),
    "report of no study": (["report", "{tmp}"], "not a study directory"),
    "no processes": (["run", "--preset", "debug", "--holdout-nproc", "0"], "--holdout-nproc must be"),
    "fsdp alone": (["run", "--preset", "debug", "--holdout-fsdp"], "--holdout-fsdp shards the held-out run"),
}


@pytest.mark.parametrize("what", BAD_RUNS)
def test_bad_run_inputs_are_one_error_line(what, uninterrupted, tmp_path):
    out, _ = uninterrupted
    (tmp_path / "bad.toml").write_text("[study\nbudgets = 1")
    (tmp_path / "neg.toml").write_text("[study]\nbudgets = [-1e12, 1e13]\n")
    (tmp_path / "key.toml").write_text("[study]\nbudgetz = [1e12]\n")
    (tmp_path / "other.toml").write_text("[study]\nname = 'debug'\nbudgets = [3e11, 6e11]\nn_ctx = 64\n"
                                         "batch_size = 8\nsizes_per_budget = 3\nsize_span = 6.0\n")
    (tmp_path / "file").write_text("x")
    args, message = BAD_RUNS[what]
    r = call(*(a.format(tmp=tmp_path, study=out) for a in args))  # in-process: main() as the CLI runs it
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert message in lines[0], lines[0]


def test_batch_sweep_study_fits_b_crit_two_ways(tmp_path):
    (tmp_path / "sweep.toml").write_text(
        "[study]\nname = 'tiny-sweep'\nkind = 'batch-sweep'\nbatch_sizes = [2, 4, 8, 16]\nsweep_params = "
        "37e3\nsweep_tokens = 2e5\nn_ctx = 64\nn_eval_tokens = 2048\nmin_steps = 30\nbootstrap = 20\n")
    r = cli("run", tmp_path / "sweep.toml", "--out", tmp_path / "s", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["kind"] == "batch-sweep" and summary["n_runs"] == 4
    noise = summary["bcrit"]["noise_scale"]
    assert noise["params"]["B_star"] > 0 and noise["params"]["alpha_B"] > 0 and noise["n_points"] >= 10
    sweep = summary["bcrit"]["batch_sweep"]
    # 4 batch sizes share enough loss range here (seeded): 11 target losses, B_crit falling with L
    assert sweep["params"]["B_star"] > 0 and sweep["params"]["alpha_B"] > 0 and sweep["n_points"] >= 5
    assert "draws" not in sweep.get("bootstrap", {}) and "points" not in sweep  # the summary stays small
    rep = json.loads(call("report", tmp_path / "s", "--json").stdout)
    assert rep["bcrit"]["noise_scale"]["params"] == noise["params"]


def test_report_page_is_self_contained_and_every_image_decodes(uninterrupted, tmp_path):
    import base64
    import io
    import re

    from PIL import Image
    out, _ = uninterrupted
    r = call("report", out, "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr, r.stderr  # e.g. a figure whose layout collapsed (its axes squeezed)
    page = (tmp_path / "rep" / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) >= 5
    for data in images:
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    assert "src='http" not in page and "<script src" not in page  # nothing fetched; one inline sort script
    assert "class=\"dataframe t sortable\"" in page
    sections = re.findall(r"<section><h2>(.*?)</h2>\n(.*?)</section>", page, flags=re.S)
    assert len(sections) >= 8
    for title, body in sections:
        assert "<img" in body or "<table" in body or "Not drawn:" in body, title
    assert {p.name for p in (tmp_path / "rep").glob("*.png")} >= {"curves.png", "isoflop.png", "holdout.png",
                                                                 "kaplan_ns.png", "residuals.png",
                                                                 "sources.png"}  # per-source losses
    laws = dict(sections)[next(t for t, _ in sections if t.startswith("Fitted laws"))]
    for name in ("Chinchilla Approach 3", "Chinchilla Approach 1", "Kaplan L(N)", "Kaplan L(D)",
                 "Kaplan L(C)", "Kaplan L(N,D)", "Kaplan L(N,S)", "B_crit (noise scale)"):
        assert f"<td>{name}" in laws, name
    # every fitted row carries numbers with an interval: "alpha_N = 0.0xx [lo, hi]"
    assert re.search(r"alpha_N = [0-9.e+-]+ \[[0-9.e+-]+, [0-9.e+-]+\]", laws)


def test_wsd_design_branches_measures_noise_and_spends_the_holdout_budget_in_exact_flops(uninterrupted):
    out, summary = uninterrupted
    assert "Appendix F" in summary["flop_convention"] and summary["schedule"] == "wsd"
    with sqlite3.connect(out / "study.sqlite") as conn:
        runs = conn.execute("SELECT run_id, role, status FROM runs").fetchall()
    grid = [rid for rid, role, _ in runs if role == "grid"]
    branched = [rid for rid in grid
                if json.loads((out / "runs" / rid / "config.json").read_text())["resolved"]["branched_from"]]
    assert branched and len(branched) < len(grid)  # every size but its longest run started from a snapshot
    noise = summary["run_noise"]
    assert noise["n_seeds"] == 2 and len(noise["losses"]) == 2 and 0 < noise["sd_rel"] < 0.05
    assert sum(role == "noise" for _, role, _ in runs) == 1
    h = summary["holdout"]
    assert h["flops"] == pytest.approx(h["flops_budget"], rel=0.01)  # the grid's own FLOP count, not 6ND
    lo, hi = h["interval"]
    assert lo <= h["fit_interval"][0] and hi >= h["fit_interval"][1]
    assert "run-to-run noise" in h["interval_kind"]
    assert [a["extrapolation"] for a in summary["allocations"]] == [4, 16, 64, 256]
    # the debug grid (2 budgets, 7 runs) allows no backtest: Chinchilla predicts, and the study says why
    law = summary["law"]
    assert law["form"] == "chinchilla" and "no backtest possible" in law["why"]
    assert h["law"] == "chinchilla:3" and h["candidates"]["chinchilla"] == pytest.approx(h["predicted"])
    assert (out / "law.json").exists()
    # `plan --law STUDY_DIR` plans as the study did: its family, vocabulary and FLOP count
    args = ("plan", "--law", out, "--flops", h["flops_budget"], "--json")
    if not summary["fit"]["converged"]:  # the debug grid is too small for a usable law: plan says so first
        r = call(*args)
        assert r.returncode == 2 and "did not converge" in r.stderr and "--allow-unconverged" in r.stderr
        args += ("--allow-unconverged",)
    planned = json.loads(call(*args).stdout)
    assert planned["n_params"] == h["n_params"] and planned["n_tokens"] == h["n_tokens"]
    assert planned["loss"] == pytest.approx(h["predicted"])
    assert planned["extrapolation"] == pytest.approx(PRESETS["debug"]["holdout_factor"])


def _children(pid: int) -> list[int]:
    from pathlib import Path
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    from pathlib import Path
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_second_writer_is_refused_and_sigterm_leaves_no_worker(tmp_path):
    """B1: two `run`s on one directory: the second is refused, naming the first. B2: SIGTERM to the driver
    alone (not its group) stops the workers, checkpoints written, and leaves none training."""
    log = tmp_path.parent / f"{tmp_path.name}-run.log"
    proc = start_study(tmp_path, log)
    t0 = time.time()
    while not list((tmp_path / "runs").glob("*/config.json")):  # a worker is training
        assert proc.poll() is None, log.read_text()
        assert time.time() - t0 < 300
        time.sleep(0.2)
    r = cli("run", "--preset", "debug", "--out", tmp_path)
    assert r.returncode == 2 and f"in use by `scalinglab run` (pid {proc.pid}" in r.stderr, r.stderr
    workers = _children(proc.pid)
    assert workers
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 3, log.read_text()
    time.sleep(1.0)
    assert not [pid for pid in workers if _alive(pid)]
    statuses = read_statuses(tmp_path / "study.sqlite")
    assert "running" not in statuses.values() and "interrupted" in statuses.values()
    assert "interrupted: checkpoints written" in log.read_text()


def test_a_prediction_made_on_other_runs_is_made_again(uninterrupted, tmp_path):
    """B3: the held-out prediction is tied to the exact set of grid runs it was fitted on; when that set
    changes (a failed run repaired), re-running predicts again instead of keeping the stale number."""
    import shutil
    out_a, summary_a = uninterrupted
    study = tmp_path / "copy"
    shutil.copytree(out_a, study)
    with sqlite3.connect(study / "study.sqlite") as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'holdout_prediction'").fetchone()
        pred = json.loads(row[0])
        assert len(pred["fit_runs"]) == summary_a["n_runs"]
        stale = pred | {"fit_runs": pred["fit_runs"][:-1], "predicted": 9.99}  # as if fitted without one run
        conn.execute("UPDATE meta SET value = ? WHERE key = 'holdout_prediction'", (json.dumps(stale),))
    r = cli("run", "--preset", "debug", "--out", study, "--json")
    assert r.returncode == DEBUG_EXIT, r.stderr
    assert "predicting it again" in r.stderr
    summary = json.loads(r.stdout)
    assert summary["holdout"]["predicted"] == pytest.approx(summary_a["holdout"]["predicted"], rel=1e-9)
    assert summary["final"] is True and summary["failed_runs"] == []


def test_report_draws_the_saved_fits_and_refits_only_when_asked(uninterrupted, tmp_path, monkeypatch):
    """Issue 16: `run` fits every law once (fits.json, with draws and points); `report` draws from it."""
    import shutil

    import scalinglab.fit.every as every
    from scalinglab.fit.fitfile import read_fits
    from scalinglab.report.html import build, study_inputs
    out_a, _ = uninterrupted
    study = tmp_path / "copy"
    shutil.copytree(out_a, study)
    fits, skipped = read_fits(study / "fits.json")
    keys = {f.key for f in fits}
    assert {"chinchilla:1", "chinchilla:3", "kaplan:L(N,D)"} <= keys
    assert all(f.points is not None for f in fits if f.key != "chinchilla:3")  # what the figures draw
    saved = (study / "report" / "report.html").read_text()

    def no_refit(*a, **k):
        raise AssertionError("the report refitted the laws")
    monkeypatch.setattr(every, "fit_every", no_refit)
    page = build(study_inputs(study), tmp_path / "rep")
    strip = lambda text: re.sub(r"src='data:image/png;base64,[^']+'", "", text)  # noqa: E731
    assert strip(page.read_text()) == strip(saved)  # the same page as the study wrote
    with pytest.raises(AssertionError, match="refitted"):
        build(study_inputs(study, refit=True), tmp_path / "rep2")
    # issue 30 R13: --refit rewrites the study's fits.json, so it takes the lock even with --out elsewhere
    from scalinglab.lock import DirLock
    with DirLock(study, "run"):  # held here; the report in another process (a lock is re-entrant in one)
        r = cli("report", study, "--refit", "--out", tmp_path / "elsewhere")
    assert r.returncode == 2 and "in use by `scalinglab run`" in r.stderr, r.stderr


def test_a_study_s_training_curves_fit_a_whole_curve_law_per_size(uninterrupted, tmp_path):
    """`fit STUDY --law multi-power`: the store's dense probe curves, one fit per model size with each run's
    exact per-step LR, and every run's final loss estimated from its first 30% / 50% with the law of the
    study's other runs; on the debug study's short curves flagged fits are never called converged. Then
    what the study does with curve_laws on: curvefits.json, the estimate rows, the report's three
    figures, and `plan --law curvefits.json --schedule` for the largest size."""
    from scalinglab.store import SQLiteStore
    from scalinglab.study import CURVE_FITS_FILE, ESTIMATE_SOURCE, curve_laws
    out, summary = uninterrupted
    with sqlite3.connect(out / "study.sqlite") as conn:
        sizes = {n for (n,) in conn.execute("SELECT n_params_total FROM runs WHERE role = 'grid'")}
        points, probes = conn.execute("SELECT COUNT(*), COUNT(probe) FROM curve").fetchone()
    assert points > 100 and probes == points  # every point has its fixed validation probe
    r = call("fit", out, "--law", "multi-power", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    fits = got["fits"]
    assert {round(float(f["approach"].split("=")[1])) for f in fits} == sizes
    for fit in fits:
        assert fit["n_runs"] >= 1 and fit["n_points"] >= 3 and fit["key"].startswith("multi-power:N=")
        assert not (fit["converged"] and fit["warnings"])  # a flagged fit is never called converged
        assert fit["params"]["L0"] >= 0
    rows = got["estimates"]
    assert {r["fraction"] for r in rows} == {0.3, 0.5}
    for row in rows:
        assert row["error"] == pytest.approx(row["final"] / row["measured"] - 1)
    half = got["estimate_summary"]["0.5"]
    assert half["n"] >= 6 and half["median_abs_error"] < 0.05  # measured here: 1.0% (docs/fitting.md)

    study = tmp_path / "study"
    study.mkdir()
    for name in ("study.sqlite", "study.sqlite-wal", "fit.json", "fits.json", "summary.json"):
        if (out / name).exists():
            (study / name).write_bytes((out / name).read_bytes())
    store = SQLiteStore.open(study / "study.sqlite")
    try:
        section = curve_laws(study, store, log=lambda _: None)
        stored = store.estimates()
    finally:
        store.close()
    assert section["estimates"] == got["estimate_summary"]  # the same fits as the command's
    assert (stored["source"] == ESTIMATE_SOURCE).all() and len(stored) == len(rows)
    from scalinglab.report import plots
    from scalinglab.report.html import FIGURES, curve_section
    from scalinglab.studydir import StudyDir
    store = SQLiteStore.open(study / "study.sqlite", readonly=True)
    try:
        drawn = curve_section(StudyDir(study), store)  # what the report draws the three figures from
    finally:
        store.close()
    assert len(drawn["estimates"]) == len(rows)
    assert set(drawn["alternatives"]) >= {"constant", "cosine:min=0.1"}
    fits_fig = plots.curve_law_fits(drawn)  # a fitted line per run, through its points
    assert len(fits_fig.axes[0].lines) >= len(drawn["runs"]) and fits_fig.axes[0].collections
    est_fig = plots.curve_estimates(drawn["estimates"])  # a point per estimate
    assert sum(len(c.get_offsets()) for c in est_fig.axes[0].collections[:4]) == len(rows)
    sched_fig = plots.alternative_schedules(drawn["largest"], drawn["alternatives"])  # a curve per schedule
    assert len(sched_fig.axes[0].lines) == len(drawn["alternatives"]) == 4
    assert {"curve_laws", "curve_estimates", "schedules"} <= {key for key, _ in FIGURES}
    largest = max(fits, key=lambda f: float(f["approach"].split("=")[1]))["approach"]
    r = call("plan", "--law", study / CURVE_FITS_FILE, "--size", largest, "--schedule", "wsd", "--steps",
             1000, "--peak-lr", 0.01, "--allow-unconverged", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["size"] == largest and 1.0 < plan["final_loss"] < 3.0


def test_export_then_fit_gives_the_study_s_own_fits(uninterrupted, tmp_path):
    """`scalinglab export STUDY [--curves] --format csv|parquet`: one row per run, or per eval with each
    row's own tokens and loss; `fit` of either file gives the study's fits (every law's parameters, exactly:
    the same numbers through the same code, not one run's final D and loss on every curve row)."""
    import pandas as pd
    out, _ = uninterrupted
    r = call("export", out, "--out", tmp_path / "runs.csv")
    assert r.returncode == 0, r.stderr
    r = call("export", out, "--curves", "--format", "parquet", "--out", tmp_path / "curves.parquet")
    assert r.returncode == 0, r.stderr
    runs, curves = pd.read_csv(tmp_path / "runs.csv"), pd.read_parquet(tmp_path / "curves.parquet")
    # a WSD run's curve is the ends of its size's shorter cool-downs (store.curve_table): 1 to 3 rows here
    assert runs["run_id"].is_unique and curves.groupby("run_id")["D"].nunique().max() > 1
    own3 = json.loads((out / "fit.json").read_text())["params"]
    r = call("fit", tmp_path / "runs.csv", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] == own3
    r = call("fit", tmp_path / "curves.parquet", "--law", "all", "--json")
    assert r.returncode == 0, r.stderr
    got = {f["key"]: f["params"] for f in json.loads(r.stdout)["fits"]}
    saved = {f["key"]: f["params"] for f in json.loads((out / "fits.json").read_text())["fits"]}
    assert got == saved and len(got) >= 10
    # of the per-run table, exactly the laws of final losses, as export says (issue 29 §4: it claimed all)
    r = call("fit", tmp_path / "runs.csv", "--law", "all", "--json")
    per_run = {f["key"]: f["params"] for f in json.loads(r.stdout)["fits"]}
    finals = {"chinchilla:2", "chinchilla:3", "kaplan:L(N)", "kaplan:L(N)+E", "kaplan:L(N,D)",
              "kaplan:L(N,D)+E"}
    assert {k: per_run[k] for k in finals} == {k: saved[k] for k in finals}
    assert "chinchilla:1" not in per_run and "kaplan:L(N,S)" not in per_run
    # --json, and the default place: inside the study (not the working directory)
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    r = call("export", copy, "--json")
    told = json.loads(r.stdout)
    assert told["wrote"] == str(copy / "export" / "runs.csv") and told["rows"] == len(runs) == told["runs"]
    assert "need --curves" in told["fit_gives"]
    r = call("export", out, "--format", "xlsx")
    assert r.returncode == 2 and r.stderr.strip().startswith("error:") and "csv or parquet" in r.stderr


def test_the_notebook_example_runs_on_a_finished_study(uninterrupted):
    """docs/notebook.md's code, as written, on the shared debug study; the Study's frames and fits match
    the study's own files."""
    import pathlib
    import re
    out, summary = uninterrupted
    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "notebook.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert blocks
    scope = {"STUDY": out}
    exec(compile("\n".join(blocks), "docs/notebook.md", "exec"), scope)
    study = scope["study"]
    assert study.fit.params == json.loads((out / "fit.json").read_text())["params"]
    assert len(study.finals) == summary["n_runs"] and study.holdout == summary["holdout"]
    assert {"chinchilla:3", "chinchilla:1", "kaplan:L(N)"} <= set(study.fits)
    assert "<table>" in scope["html"] and "Approach 3" in scope["html"]
    assert "converged" in study.fits["kaplan:L(N)"]._repr_html_()
    assert len(study.curves) > len(study.finals) and study.training_curves["probe"].notna().all()
