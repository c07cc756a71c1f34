"""report/tables.py: a law's parameters and a study's allocations as Markdown and LaTeX (issue 29 §4)."""
import re

from scalinglab.fit import ChinchillaFit
from scalinglab.plan.answer import Plan
from scalinglab.report.tables import allocation_table, law_table
from scalinglab.simulate import DEMO_TRUE, isoflop_runs
from tests.cli_helpers import call


def _fit():
    runs = isoflop_runs(DEMO_TRUE, budgets=[1e18, 1e19, 1e20], sizes_per_budget=6, noise=0.005, seed=3)
    return runs, ChinchillaFit(bootstrap=40).fit(runs).result_


def test_markdown_and_latex_tables_hold_the_fit_s_numbers(tmp_path):
    runs, fit = _fit()
    md = law_table(fit, "md").splitlines()
    assert md[2] == "| parameter | value [95% CI] |" and md[3] == "|---|---|"
    lo, hi = fit.ci["alpha"]
    assert f"| `alpha` | {fit.params['alpha']:.4g} [{lo:.4g}, {hi:.4g}] |" in md
    tex = law_table(fit, "tex")
    assert tex.count(r"\begin{") == tex.count(r"\end{") == 2 and r"\toprule" in tex
    rows = [line for line in tex.splitlines() if line.endswith(r"\\") and "&" in line][1:]
    assert len(rows) == len(fit.params) and all(line.count("$") % 2 == 0 for line in rows)
    assert re.search(r"\$\\alpha\$ & \$" + re.escape(f"{fit.params['alpha']:.4g}"), tex)
    assert "%" not in tex.replace(r"\%", "")  # every percent sign escaped
    plans = [Plan("family", "fit", 2e8, 4e9, flops=4.8e18, loss=2.5,
                  prediction_interval={"loss": [2.4, 2.6]})]
    alloc = allocation_table(plans, "md").splitlines()
    assert alloc[-1] == "| 4.8e+18 | 2e+08 | 4e+09 | 20 | 2.5 [2.4, 2.6] |"
    assert r"4.8 \times 10^{18}" in allocation_table(plans, "tex")
    # through the CLI
    runs.to_csv(tmp_path / "runs.csv", index=False)
    r = call("fit", tmp_path / "runs.csv", "--bootstrap", "40", "--format", "md")
    assert r.returncode == 0 and r.stdout.strip() == law_table(fit, "md")
    r = call("fit", tmp_path / "runs.csv", "--format", "tex", "--json")
    assert r.returncode == 2 and "not both" in r.stderr
