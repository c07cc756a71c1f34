"""Shared by the integration tests: the CLI in a subprocess, and reading a study's store while it runs."""
import signal
import sqlite3
import subprocess
import sys
import time


def cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "scalinglab", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


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
    return subprocess.Popen([sys.executable, "-m", "scalinglab", "run", "--preset", "debug", "--out", str(out),
                             *map(str, extra)],
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
