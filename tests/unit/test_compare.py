"""compare: the compute multiplier recovered from two laws whose data differ by a known factor."""
import dataclasses
import json

import numpy as np
import pytest

from scalinglab.compare import compare, compute_to_reach, frontier, load_side
from scalinglab.errors import ScalingLabError
from scalinglab.fit.chinchilla.approach3 import ChinchillaFit
from scalinglab.simulate import isoflop_runs

CLEAN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# each token of the worse data is worth K of a clean one: L_worse(N, D) = L(N, K D), i.e. B / K^beta, so the
# worse data's frontier at C is the clean one's at K C: it needs exactly 1/K x the compute for any loss
K = 0.5
WORSE = CLEAN | {"B": CLEAN["B"] * K ** -CLEAN["beta"]}
BUDGETS = np.geomspace(1e18, 1e21, 8)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("fits")
    paths = []
    for name, params in (("clean", CLEAN), ("worse", WORSE)):
        runs = isoflop_runs(params, budgets=BUDGETS, sizes_per_budget=9, noise=0.005, seed=3)
        res = ChinchillaFit(bootstrap=200).fit(runs).result_
        assert res.converged
        paths.append(res.save(out / f"{name}.json"))
    return paths


def test_the_true_laws_give_the_multiplier_exactly(fitted):
    clean, worse = (load_side(p) for p in fitted)
    clean.fit, worse.fit = (dataclasses.replace(s.fit, params=p) for s, p in ((clean, CLEAN), (worse, WORSE)))
    for C in (1e19, 1e20, 1e21):
        loss = frontier(clean.fit, C)
        assert compute_to_reach(worse.fit, loss, C)[0] / C == pytest.approx(1 / K, rel=2e-3)
        assert compute_to_reach(clean.fit, loss, C)[0] / C == pytest.approx(1.0, rel=2e-3)


def test_fitted_laws_recover_the_multiplier_inside_its_interval(fitted):
    result, _ = compare(fitted, budgets=[1e19, 1e20, 1e21])
    assert result["reference"] == "clean"
    rows = result["multipliers"][0]["at"]
    for row in rows:
        lo, hi = row["ci"]
        assert lo < 1 / K < hi and lo > 1.0  # worse data: > 1, and the truth inside the 95% interval
        assert row["multiplier"] == pytest.approx(1 / K, rel=0.15)
        assert row["draws"] == 200
    # fit files carry their runs' compute range: the budgets inside it are not marked, one beyond it is
    far, _ = compare(fitted, budgets=[1e23])
    assert any("outside clean's runs" in m for m in far["multipliers"][0]["at"][0]["extrapolated"])
    json.dumps(result, allow_nan=False)  # strict JSON


def test_a_floor_the_other_law_never_reaches_is_unreachable_not_a_number(fitted, tmp_path):
    clean, _ = (load_side(p) for p in fitted)
    doc = json.loads(fitted[1].read_text())
    doc["params"]["E"] = 2.5  # far above the clean frontier at these budgets
    high = tmp_path / "high.json"
    high.write_text(json.dumps(doc))
    result, sides = compare([fitted[0], high], budgets=[1e20])
    row = result["multipliers"][0]["at"][0]
    assert row["multiplier"] is None and "does not reach" in row["unreachable"]
    from scalinglab.report.compare_page import page  # issue 30 R7: a log-scale ValueError, nothing printed
    assert "<img" in page(result, sides)


def test_compare_refuses_one_input_and_a_missing_one(fitted, tmp_path):
    with pytest.raises(ScalingLabError, match="at least two"):
        compare(fitted[:1])
    with pytest.raises(ScalingLabError, match="no such study directory or fit file"):
        compare([fitted[0], tmp_path / "nope"])


def test_a_published_law_compares_and_the_table_keeps_its_columns_apart(fitted, tmp_path):
    """Issue 29 §4: `compare chinchilla STUDY` was refused; table cells with intervals ran into each other;
    the multiplier axis was linear; matplotlib's own warnings reached the user."""
    import warnings

    from scalinglab.compare import text
    from scalinglab.fit.laws import chinchilla_loss
    from scalinglab.report.compare_page import figure, page
    result, sides = compare(["chinchilla", fitted[0]], budgets=[1e19, 1e20])
    assert sides[0].fit.n_runs == 0 and sides[0].source.startswith("published: Hoffmann et al. 2022")
    assert result["inputs"][0]["frontier"]["1e+19"] == pytest.approx(
        float(frontier(sides[0].fit, 1e19)), rel=1e-12)
    n, d = sides[0].fit.optimal(1e19)
    assert float(frontier(sides[0].fit, 1e19)) == pytest.approx(
        float(chinchilla_loss(n, d, **dict(sides[0].fit.params))), rel=1e-12)
    # the clean law is the published one's constants: the multiplier is 1 up to the fit's error
    assert result["multipliers"][0]["at"][0]["multiplier"] == pytest.approx(1.0, abs=0.15)
    lines = text(result).splitlines()
    header, alpha = lines[1], next(line for line in lines if line.startswith("alpha"))
    column = header.index(result["inputs"][1]["name"])
    assert alpha[column - 2:column] == "  " and alpha[column] != " "  # its cell starts under its name
    assert sides[1].fit.ci and "[" in alpha[column:]
    with pytest.raises(ScalingLabError, match="compare needs a loss law"):
        compare(["kaplan", fitted[0]], budgets=[1e19])
    assert figure(result, sides).axes[1].get_yscale() == "log"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "<img" in page(result, sides)


def test_fits_at_different_vocabularies_are_said_not_to_compare(fitted, tmp_path):
    """Issue 30 R17: a fit file recorded at vocab 4096 against one at 256: no warning before."""
    from scalinglab.fit.fitfile import load_fit
    paths = []
    for path, vocab in zip(fitted, (256, 4096)):
        fit = load_fit(path)
        paths.append(dataclasses.replace(fit, settings=dict(fit.settings) | {"vocab_size": vocab})
                     .save(tmp_path / f"v{vocab}.json"))
    result, _ = compare(paths, budgets=[1e20])
    assert any("different vocabularies (256, 4096)" in w for w in result["warnings"])
    same, _ = compare(fitted, budgets=[1e20])
    assert not any("vocabularies" in w for w in same["warnings"])
