"""A seeded fuzz test over the CLI's file inputs (issue 15): random bytes, truncations and type confusions in
run tables, fit files, study files and summaries. Every case either succeeds with strict JSON, or fails with
exactly one `error:` line, a non-zero exit, no traceback and no file written."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from scalinglab.simulate import DEMO_TRUE, isoflop_runs

from ..cli_helpers import call

SEED = 15
CASES_PER_KIND = 60  # x 4 kinds = 240 cases per run


def _strict(text):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _called(argv) -> tuple[int, str, str]:
    r = call(*argv)
    return r.returncode, r.stdout, r.stderr


def _mutations(rng: random.Random, text: str, confusions: list[tuple[str, str]]) -> str:
    kind = rng.randrange(4)
    if kind == 0:  # random bytes
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))).decode("latin-1")
    if kind == 1:  # truncation
        return text[: rng.randrange(len(text))]
    if kind == 2:  # one type confusion
        old, new = rng.choice(confusions)
        return text.replace(old, new, 1)
    # bytes flipped inside a valid file
    chars = list(text)
    for _ in range(rng.randrange(1, 6)):
        chars[rng.randrange(len(chars))] = chr(rng.randrange(32, 127))
    return "".join(chars)


def _check(case: str, rc: int, out: str, err: str, written=None):
    assert "Traceback" not in err, (case, err)
    if rc == 0:
        if out.lstrip().startswith("{"):
            _strict(out)
        return
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.rstrip().splitlines()[-1].startswith("error:"), (case, err)
    assert not err.startswith("error:") or err.count("\n") == 1, (case, err)
    if written is not None:
        assert not written.exists(), case


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    d = tmp_path_factory.mktemp("valid")
    runs = isoflop_runs(DEMO_TRUE, budgets=np.geomspace(1e18, 1e20, 3), sizes_per_budget=6, noise=0.01,
                        seed=1)
    csv = runs.to_csv(index=False, float_format="%.8g")
    (d / "runs.csv").write_text(csv)
    rc, _, err = _called(["fit", d / "runs.csv", "--bootstrap", "20", "--out", d / "fit.json"])
    assert rc == 0, err
    return d, csv, (d / "fit.json").read_text()


def test_fuzz_run_tables(valid, tmp_path):
    _, csv, _ = valid
    rng = random.Random(SEED)
    confusions = [(",", ";"), ("\n", ",x\n"), ("loss", "loss,loss"), ("1e+18", "abc"), ("1e+18", ""),
                  ("1e+18", "-1e18"), ("1e+18", "1e400"), ("1e+18", "nan"), ("N,", "params_M,"),
                  ("run_id", "name")]
    for i in range(CASES_PER_KIND):
        path, out = tmp_path / f"t{i}.csv", tmp_path / f"f{i}.json"
        path.write_text(_mutations(rng, csv, confusions), encoding="latin-1")
        rc, so, se = _called(["fit", path, "--json", "--out", out])
        _check(f"fit case {i}", rc, so, se, out)


def test_fuzz_fit_files(valid, tmp_path):
    _, _, fit_text = valid
    rng = random.Random(SEED + 1)
    confusions = [('"E": ', '"E": "x", "_": '), ('"alpha": ', '"alpha": [1], "_": '), ('"params"', '"parms"'),
                  ('"version": 2', '"version": "2"'), ('"format"', '"fmt"'),
                  ('"draws": [', '"draws": [["a"], '),
                  ('"converged": true', '"converged": "yes"'), ('"approach": "3"', '"approach": 3'),
                  ('"law": "chinchilla"', '"law": "kaplan"'), ("{", "[")]
    for i in range(CASES_PER_KIND):
        path = tmp_path / f"f{i}.json"
        path.write_text(_mutations(rng, fit_text, confusions), encoding="latin-1")
        for argv in (["plan", "--law", path, "--flops", "1e21", "--json"],
                     ["plan", "--law", path, "--params", "1e9", "--tokens", "2e10", "--json"]):
            rc, so, se = _called(argv)
            _check(f"plan case {i}", rc, so, se)


def test_fuzz_study_files(tmp_path):
    text = "[study]\nname = \"x\"\nbudgets = [2e11, 5e11]\nsizes_per_budget = 4\nn_ctx = 64\nseed = 0\n"
    rng = random.Random(SEED + 2)
    confusions = [("4", "4.5"), ("64", '"64"'), ("[2e11, 5e11]", '"2e11"'), ("0\n", "-3\n"),
                  ("[study]", "[stud]"),
                  ("name", "nam"), ("2e11", "nan"), ("2e11", "true"), ("= ", "== "), ("4\n", "[4]\n")]
    for i in range(CASES_PER_KIND):
        path = tmp_path / f"s{i}.toml"
        path.write_text(_mutations(rng, text, confusions), encoding="latin-1")
        # --workers 0 is refused after the file is read: a valid file never starts training here
        rc, so, se = _called(["run", path, "--out", tmp_path / f"o{i}", "--workers", "0"])
        assert rc != 0
        _check(f"run case {i}", rc, so, se)
        assert not (tmp_path / f"o{i}" / "study.sqlite").exists()


def test_fuzz_summaries(tmp_path):
    from scalinglab.store import SQLiteStore
    study = tmp_path / "study"
    study.mkdir()
    SQLiteStore.create(study / "study.sqlite", {"study_id": "x"}).close()
    summary = json.dumps({"study": "x", "study_id": "y", "fit": {"params": {"E": 1.0}, "converged": True},
                          "holdout": {"predicted": 1.5, "measured": 1.4, "rel_error": 0.07,
                                      "interval": [1.3, 1.6],
                                      "flops_budget": 1e13, "n_params": 1000, "n_tokens": 20000},
                          "allocations": []})
    rng = random.Random(SEED + 3)
    confusions = [("1.5", '"1.5"'), ("[1.3, 1.6]", "[1.3]"), ('"fit"', '"fat"'), ("{", "["), ("1000", "null"),
                  ('"allocations": []', '"allocations": {}'), ('"study"', '"studies"'), ("0.07", "true"),
                  ("1e13", "\"big\""), ('"holdout"', '"held"')]
    for i in range(CASES_PER_KIND):
        (study / "summary.json").write_text(_mutations(rng, summary, confusions), encoding="latin-1")
        rc, so, se = _called(["report", study, "--json"])
        _check(f"report case {i}", rc, so, se)


def test_fuzz_schedules_curve_tables_and_compare_inputs(valid, tmp_path):
    """Issue 30: the fuzz extended to `plan --schedule` specs and numbers, whole-curve tables (`fit --law
    multi-power`) and `compare` inputs: one error line or strict JSON, never a traceback."""
    d, _, fit_json = valid
    rng = random.Random(SEED + 1)
    steps = np.arange(10, 400, 10)
    lr = np.where(steps < 40, steps / 40, 1.0) * 1e-3
    curve = "run,step,lr,loss\n" + "".join(f"r,{s},{v:.6g},{3 + 2 * (1 + s / 50) ** -0.5:.6g}\n"
                                           for s, v in zip(steps, lr))
    from scalinglab.fit.curvelaws import Curve, fit_curves
    from scalinglab.fit.fitfile import write_fits
    full_lr = np.concatenate([np.linspace(0, 1e-3, 40), np.full(360, 1e-3)])
    write_fits(d / "mpl.json", [fit_curves([Curve("c", full_lr, steps, 3 + 2 * (1 + steps / 50) ** -0.5)],
                                           name="N=1")], [])
    specs = ["cosine", "wsd", "constant", "wsd:cooldown=0.3", "cosine:min=0.1", "piecewise:0=0,10=1,300=0"]
    numbers = ["1", "2", "0", "-5", "1e12", "nan", "400", "3.5", "x", "1e-3"]
    for i in range(CASES_PER_KIND // 2):
        spec = rng.choice(specs)
        if rng.random() < 0.5:
            spec = _mutations(rng, spec, [(":", "::"), ("=", "=="), ("0.3", "-1"), ("300", "1e15")])
        argv = ["plan", "--law", d / "mpl.json", "--schedule", spec.replace("\x00", ""), "--steps",
                rng.choice(numbers), "--peak-lr", rng.choice(numbers), "--json", "--allow-unconverged"]
        if rng.random() < 0.3:
            argv += ["--warmup", rng.choice(numbers)]
        _check(f"schedule {i}: {argv[4:]}", *_called(argv))
        path = tmp_path / f"c{i}.csv"
        path.write_text(_mutations(rng, curve, [("lr", "learning_rate"), ("1e-", "-1e-"), (",3", ",0"),
                                                ("step", "steps"), ("0.001", "0")]), encoding="latin-1")
        _check(f"curves {i}", *_called(["fit", path, "--law", rng.choice(["multi-power", "lr-annealing"]),
                                         "--json"]))
        other = tmp_path / f"o{i}.json"
        other.write_text(_mutations(rng, fit_json, [('"E"', '"e"'), ("[", "{"), ("0.3", "\"x\""),
                                                     ("chinchilla", "kaplan")]), encoding="latin-1")
        _check(f"compare {i}", *_called(["compare", d / "fit.json", other, "--at", "1e19", "--json",
                                         "--out", tmp_path / f"cmp{i}.html"]))
