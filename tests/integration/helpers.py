"""Shared by the integration tests: the CLI (tests/cli_helpers.py), and reading a study's store while it
runs."""
import signal
import sqlite3
import subprocess
import sys
import time

from ..cli_helpers import call, cli  # noqa: F401  (the tests' one CLI helper module)

# The debug study finishes, but its law does not converge (7 runs: A's interval spans > 100 decades), so
# `run` exits 4 and says so (issue 29): a finished study whose predictions are not a law's.
DEBUG_EXIT = 4


def done_runs(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def default_sigint():
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT: give the
    # study the terminal's default, as an interactive `scalinglab run` has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_study(out, log, *extra):
    """`scalinglab run --preset debug` in its own session (so a test can signal its whole group)."""
    return subprocess.Popen([sys.executable, "-m", "scalinglab", "run", "--preset", "debug", "--out",
                             str(out), *map(str, extra)],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True,
                            preexec_fn=default_sigint)


def wait_done(proc, db, n, log):
    t0 = time.time()
    while done_runs(db) < n:
        assert proc.poll() is None, log.read_text()
        assert time.time() - t0 < 600
        time.sleep(0.2)


def statuses(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT run_id, status FROM runs").fetchall())


def expected_eval_steps(runs: dict) -> dict:
    """run_id -> the eval steps a finished run must have, from {run_id: (role, RunSpec)}: its own log-spaced
    ones, or for a WSD branch its trunk's up to the snapshot it started from, then its own (train/loop.py).
    A study plans branches within each role (grid, noise, holdout), so trunks are found per role."""
    from pathlib import Path

    from scalinglab.study import branch_plan
    from scalinglab.train.loop import eval_steps
    from scalinglab.train.optim import cooldown_start
    out = {}
    for role in {role for role, _ in runs.values()}:
        specs = {rid: spec for rid, (r, spec) in runs.items() if r == role}
        branching = branch_plan(list(specs.values()), Path("."))
        trunks = {s.branch_key: s for s in specs.values() if "snapshot_at" in branching.get(s.run_id, {})}
        for rid, spec in specs.items():
            own = eval_steps(spec.steps, spec.n_evals)
            if "init_from" in branching.get(rid, {}):
                start, trunk = cooldown_start(spec.steps, spec.cooldown_frac), trunks[spec.branch_key]
                own = [s for s in eval_steps(trunk.steps, trunk.n_evals) if s <= start] + \
                    [s for s in own if s > start]
            out[rid] = own
    return out



RESULT_COLUMNS = ("reason", "n_params_nonembed", "n_params_total", "n_tokens", "flops", "flops_6nd",
                  "val_loss", "bits_per_byte", "lr", "steps", "wall_time_s", "tokens_per_s", "device",
                  "version", "flops_per_s", "mfu", "processes")


def partly_done(study, dest, grid=("smallest", "largest"), roles=("holdout",)) -> list[str]:
    """A copy of the finished ``study`` at ``dest`` as it stood before some of its runs began: of the grid,
    the runs ``grid`` names ("smallest": the smallest model's WSD trunk and its branch; "smallest branch":
    the branch alone, to start from the trunk's kept snapshot; "largest": the largest model), and every
    run of ``roles``. Their store rows are back to planned with no results, their eval and curve rows and
    run directories are gone, and what a study writes after its grid (the held-out prediction, fits,
    summary, report) is not there. Resume tests start here rather than train the runs kept done a second
    time. -> the ids of the runs to train."""
    import shutil
    from pathlib import Path

    from scalinglab.model.accounting import param_breakdown
    from scalinglab.store.sqlite import RUN_COLUMNS, SQLiteStore
    study, dest = Path(study), Path(dest)
    assert set(RESULT_COLUMNS) < set(RUN_COLUMNS)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(study / "runs", dest / "runs")
    shutil.copy2(study / "config.json", dest / "config.json")
    store = SQLiteStore.open(study / "study.sqlite", readonly=True)
    specs = {role: store.specs(role) for role in ("grid", "noise", "holdout")}
    store.close()
    size = {rid: param_breakdown(s.shape)["total"] for rid, s in specs["grid"].items()}
    smallest = sorted((specs["grid"][r].n_tokens, r) for r in size if size[r] == min(size.values()))
    picked = {"smallest": [r for _, r in smallest], "smallest branch": [r for _, r in smallest[:-1]],
              "largest": [r for r in size if size[r] == max(size.values())]}
    gone = [rid for what in grid for rid in picked[what]] + [rid for role in roles for rid in specs[role]]
    with sqlite3.connect(f"file:{study / 'study.sqlite'}?mode=ro", uri=True) as src, \
            sqlite3.connect(dest / "study.sqlite") as conn:
        src.backup(conn)
        unset = ", ".join(f"{c} = NULL" for c in RESULT_COLUMNS)
        for rid in gone:
            conn.execute(f"UPDATE runs SET status = 'planned', {unset} WHERE run_id = ?", (rid,))
            conn.execute("DELETE FROM evals WHERE run_id = ?", (rid,))
            conn.execute("DELETE FROM curve WHERE run_id = ?", (rid,))
            conn.execute("DELETE FROM source_loss WHERE run_id = ?", (rid,))
            conn.execute("DELETE FROM estimate WHERE run_id = ?", (rid,))
            shutil.rmtree(dest / "runs" / rid)
        conn.execute("DELETE FROM meta WHERE key = 'holdout_prediction'")
    src.close()
    conn.close()
    return gone
