"""The CLI as the tests call it: `cli` in a subprocess (what a user's shell sees: exit code, streams,
signals), `call` in this process (main([...]) with the streams captured: the same answers without starting
an interpreter that imports pandas, scipy and torch again)."""
import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass


def cli(*args, timeout=900, **kw) -> subprocess.CompletedProcess:
    """`scalinglab ARGS` in a subprocess, output captured as text."""
    return subprocess.run([sys.executable, "-m", "scalinglab", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, **kw)


@dataclass
class Called:
    returncode: int
    stdout: str
    stderr: str


def call(*args) -> Called:
    """`scalinglab ARGS` in-process: main()'s exit code and what it printed (argparse's --help/--version
    exit through SystemExit, caught here)."""
    from scalinglab.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:
            rc = int(exc.code or 0)
    return Called(rc, out.getvalue(), err.getvalue())
