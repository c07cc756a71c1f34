"""Planning runs: the frozen RunSpec and (later) the grids of a study."""

from ..callable import make_callable  # noqa: E402


def __command__(*args, **kwargs):
    """``scalinglab.plan(...)``: the `plan` command as a function (plan/command.py)."""
    from .command import plan
    return plan(*args, **kwargs)


make_callable(__name__)
