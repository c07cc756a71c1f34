"""benchmarks/gpu_check.py, the GPU window's one prepared call, dry-run on CPU so that it cannot rot
between windows (issue 31): the JSON it writes, the study part on a finished debug study, and a deadline
that cuts it short with what was measured kept."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _check(args, timeout=300):
    return subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--skip-tests", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_the_gpu_check_dry_run_writes_every_part(uninterrupted, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(uninterrupted[0], study)
    out = tmp_path / "gpu_check.json"
    r = _check(["--preset", "debug", "--study-dir", study, "--out", out, "--deadline", 200,
                "--packing-steps", 10])
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["parts"]["done"] is True and doc["cut_short"] is None
    assert "NaN" not in out.read_text() and doc["not_started"] == []  # strict JSON; every part ran
    assert doc["parts"]["device"]["device"] == "cpu" and doc["parts"]["device"]["torch"]
    s = doc["parts"]["study"]
    assert s["finished"] and s["exit"] == 4 and s["law_converged"] is False  # the debug law: exit 4
    assert set(s["holdout"]) >= {"predicted", "measured", "rel_error"} and s["n_runs"] == 7
    assert len(s["runs"]) >= 8 and s["largest_grid_run"]["n_params_total"] > 0
    assert 0 < s["mfu_max"] <= 1.0  # no MFU above 100% (issue 29)
    largest = s["largest_run"]  # the held-out run where it is the largest (the debug held-out is not)
    assert largest["n_params_total"] == max(r["n_params_total"] for r in s["runs"]) and largest["mfu"] > 0
    p = doc["parts"]["packing"]  # the first budget's 3 runs one at a time, then on both cores
    assert p["exit"] == 0 and [r["runs_at_once"] for r in p["rows"]] == [1, 2]
    assert all(r["done"] == r["runs"] == 3 and r["steps"] == 10 for r in p["rows"]) and p["speedup"] > 0
    alone = p["rows"][0]["per_run"]  # each size's rate alone: the step cost the sizing assumed (docs/gpu.md)
    assert len(alone) == 3 and all(r["tokens_per_s"] > 0 and 0 < r["mfu"] <= 1 for r in alone)
    assert "need two" in doc["parts"]["ddp"]["skipped"]


def test_the_gpu_check_stops_at_its_deadline_and_keeps_what_it_measured(tmp_path):
    out = tmp_path / "gpu_check.json"
    r = _check(["--preset", "debug", "--study-dir", tmp_path / "fresh", "--out", out, "--deadline", 12])
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["cut_short"].startswith("the study") and doc["parts"]["study"]["finished"] is False
    assert doc["parts"]["study"]["exit"] is None and doc["parts"]["done"] is True
    assert doc["not_started"] == ["packing", "ddp"]  # no time left for them: said, not silently absent
    assert doc["elapsed_s"] < 12 + 40  # the study's workers checkpoint on SIGTERM within their step
