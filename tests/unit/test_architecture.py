"""The house rules of docs/architecture.md, checked: no import cycle, the analysis half torch-free, the
trainer free of fit/, no long functions (tools/arch.py measures them)."""
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import arch  # noqa: E402

TORCH_HALF = ("scalinglab.train", "scalinglab.model.gpt", "scalinglab.__main__")  # __main__: runs the CLI
ANALYSIS = [m for m in arch.modules() if not m.startswith(TORCH_HALF)]


def test_no_import_cycle_anywhere_in_src():
    assert arch.cycles(arch.import_graph()) == []


def test_every_import_of_the_package_names_a_module():
    """A relative import inside a function, left pointing one level off after a move, fails only when that
    function runs (fit/curvelaws curves_of_runs did, at the end of a 15-minute study)."""
    broken = []
    arch.import_graph(broken)
    assert broken == []


def test_every_analysis_module_imports_without_torch():
    """DESIGN.md §1: study, plan, store, report, notebook, compare, fit, predict and the CLI work without
    the train extra: importing every one of them loads no torch."""
    assert len(ANALYSIS) > 60
    code = (f"import sys, {', '.join(ANALYSIS)}; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_trainer_imports_nothing_from_fit():
    graph = arch.import_graph()
    train = {m for m in graph if m.startswith("scalinglab.train")}
    reached, todo = set(), list(train)
    while todo:  # everything the trainer's modules import, directly or not
        for dep in graph[todo.pop()]:
            if dep not in reached:
                reached.add(dep)
                todo.append(dep)
    assert not {m for m in reached if m.startswith("scalinglab.fit")}


def test_no_function_is_longer_than_80_lines():
    long = [(n, name) for n, name in arch.functions() if n > 80]
    assert long == []
