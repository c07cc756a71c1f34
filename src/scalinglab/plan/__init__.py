"""Planning runs: the frozen RunSpec and (later) the grids of a study."""

from ..callable import make_callable  # noqa: E402

make_callable(__name__)  # scalinglab.plan(...) is `scalinglab plan` (api.py)
