"""Session fixtures: the uninterrupted debug study, trained once and compared against by several tests."""
import json

import pytest

from .helpers import DEBUG_EXIT, cli


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("study-a")
    r = cli("run", "--preset", "debug", "--out", out, "--json")
    assert r.returncode == DEBUG_EXIT, r.stderr
    summary = json.loads(r.stdout)
    # said where the user looks: exit status, the JSON, one warning line
    assert summary["law_converged"] is False and summary["holdout"]["fit_converged"] is False
    assert "the law that predicts did not converge" in r.stderr and "exit status 4" in r.stderr
    return out, summary
