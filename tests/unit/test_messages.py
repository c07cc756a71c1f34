"""Library errors speak in library terms (`data`, `out`, `n_params`); the CLI says them with its flags."""
import ast
import pickle
import re
from pathlib import Path

import pytest

import scalinglab
from scalinglab.cli import main
from scalinglab.cli.common import in_cli_terms
from scalinglab.data.corpus import load_corpus
from scalinglab.errors import NotFittable, ScalingLabError
from scalinglab.predict import plan_point, resolve_law

SRC = Path(scalinglab.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def _library_messages():
    """Every string literal written inside a raise, warning or note outside cli/ (f-string parts included)."""
    for path in sorted(SRC.rglob("*.py")):
        if "cli" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for sub in ast.walk(node.exc):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        yield path.relative_to(SRC), sub.lineno, sub.value


def test_no_library_error_names_a_command_line_flag():
    found = [f"{p}:{line}: {text!r}" for p, line, text in _library_messages() if FLAG.search(text)]
    assert not found, "\n".join(found)


def test_the_library_names_its_parameter_and_the_cli_names_the_flag(tmp_path, capsys):
    with pytest.raises(ScalingLabError) as err:
        load_corpus(tmp_path / "missing.txt")
    assert str(err.value).startswith("`data` ") and err.value.params == ("data",)
    assert in_cli_terms(str(err.value), err.value.params).startswith("--data ")
    with pytest.raises(ScalingLabError) as err:
        plan_point(resolve_law("chinchilla"), -1.0, 1e9)
    assert "`n_params` must be a positive number" in str(err.value)
    assert in_cli_terms(str(err.value), err.value.params).startswith("--params must be")
    assert main(["train", "--size", "debug", "--tokens", "1e4", "--data", str(tmp_path / "missing.txt"),
                 "--out", str(tmp_path / "run")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: --data ") and "no such file" in line and "`" not in line


def test_an_error_keeps_its_parameters_across_processes():
    for cls in (ScalingLabError, NotFittable):
        back = pickle.loads(pickle.dumps(cls("`out` x is not writable", params=("out",))))
        assert type(back) is cls and str(back) == "`out` x is not writable" and back.params == ("out",)
