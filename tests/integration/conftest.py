"""Session fixtures: the uninterrupted debug study, trained once and compared against by several tests."""
import json

import pytest

from .helpers import cli


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("study-a")
    r = cli("run", "--preset", "debug", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)
