import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ScalingLabError
from scalinglab.fit.core import table as runs_table
from scalinglab.model.accounting import ModelShape, param_breakdown
from scalinglab.model.family import shape_for_params
from scalinglab.predict import plan_budget, plan_point, resolve_law
from scalinglab.published import CHINCHILLA_UNROUNDED, LAWS


def test_aliases_are_found_case_insensitively_and_total_is_preferred():
    table = pd.DataFrame({"n_params_nonembed": [1.0], "N_PARAMS_TOTAL": [2.0], "Tokens": [3.0],
                          "loss": [4.0]})
    runs, chosen = runs_table.canonical_columns(table)
    assert chosen == {"N": "N_PARAMS_TOTAL", "D": "Tokens", "loss": "loss", "N_nonembed": "n_params_nonembed"}
    assert runs["N"].iloc[0] == 2.0


def test_missing_column_lists_aliases():
    with pytest.raises(ScalingLabError, match="missing column for D: expected one of D, n_tokens, tokens"):
        runs_table.canonical_columns(pd.DataFrame({"N": [1], "loss": [2]}))


@pytest.mark.parametrize("value,message", [("abc",
                                            r"column loss, row 2: value is not a finite number \('abc'\)"),
                                           (None, r"column loss, row 2: value is missing \(NaN\)"),
                                           ("-1", "column loss, row 2: value -1 must be positive"),
                                           ("0", "column loss, row 2: value 0 must be positive")])
def test_bad_values_name_column_and_row(value, message):
    table = pd.DataFrame({"N": [1e8, 2e8], "D": [1e9, 1e9], "loss": ["3.0", value]})
    with pytest.raises(ScalingLabError, match=message):
        runs_table.validate_numbers(table)


def test_curves_reduce_to_the_last_step():
    table = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "step": [10, 20, 20, 10], "N": [1, 1, 2, 2],
                          "D": [1, 2, 2, 1], "loss": [5.0, 4.0, 3.0, 3.5]})
    final = runs_table.final_rows(table)
    assert sorted(final["loss"]) == [3.0, 4.0]


def test_parquet_and_csv_read_the_same(tmp_path):
    table = pd.DataFrame({"params": [1e8, 2e8], "n_tokens": [1e9, 2e9], "loss": [3.0, 2.9]})
    table.to_csv(tmp_path / "r.csv", index=False)
    table.to_parquet(tmp_path / "r.parquet")
    a, _ = runs_table.load_runs(tmp_path / "r.csv")
    b, _ = runs_table.load_runs(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_chinchilla_rounded_and_unrounded_plans_differ():
    rounded = plan_budget(resolve_law("chinchilla"), 5.76e23)
    unrounded = plan_budget(resolve_law("chinchilla-unrounded"), 5.76e23)
    assert rounded["n_params"] != unrounded["n_params"]
    assert 3e10 < rounded["n_params"] < 5e10 and 3e10 < unrounded["n_params"] < 5e10
    p = CHINCHILLA_UNROUNDED
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    assert unrounded["n_params"] == pytest.approx(G * (5.76e23 / 6) ** (p["beta"] / (p["alpha"] + p["beta"])),
                                                  rel=1e-12)
    assert set(rounded.to_dict()) >= {"n_params", "n_tokens", "loss", "tokens_per_param", "shape"}


def test_kaplan_plan_point_is_the_table2_value():
    assert round(plan_point(resolve_law("kaplan"), 1e8, 1e9)["loss"], 4) == 2.9567
    plan = plan_budget(resolve_law("kaplan"), 8.64e19 * 10)  # 10 PF-days
    assert plan["n_params"] == pytest.approx(1.3e9 * 10 ** 0.73)
    assert plan["shape"]["n_params_kind"] == "nonembed"


def test_bad_budget_and_unknown_law_are_named():
    with pytest.raises(ScalingLabError, match="must be a positive number, got -1"):
        plan_budget(LAWS["chinchilla"], -1.0)
    with pytest.raises(ScalingLabError, match="unknown law 'gopher'"):
        resolve_law("gopher")


def test_shape_for_params_hits_the_target():
    for target in (1e7, 1e8, 7e10):
        shape = shape_for_params(target, kind="total", vocab_size=32000)
        assert abs(np.log(param_breakdown(shape)["total"] / target)) < 0.2
    s = ModelShape(n_layer=12, d_model=768, n_head=12, d_head=64, d_ff=3072, vocab_size=50257, n_ctx=1024)
    bd = param_breakdown(s)
    # Kaplan 2020 Table 1: N ~ 12 n_layer d_model^2 (plus the small LayerNorm terms)
    assert bd["nonembed"] == pytest.approx(12 * 12 * 768 ** 2, rel=0.01)
    assert bd["total"] == bd["nonembed"] + 50257 * 768 + 1024 * 768
    untied = param_breakdown(ModelShape(**(s.to_dict() | {"tied": False})))
    assert untied["nonembed"] - bd["nonembed"] == 50257 * 768
