"""scalinglab: scaling-law studies on your own compute (Kaplan et al. 2020, Hoffmann et al. 2022)."""
from .errors import ScalingLabError

__version__ = "0.1.0"
__all__ = ["ScalingLabError", "__version__", "open_study"]


def open_study(path):
    """A study directory as a Python object: .runs, .curves, .fits, .holdout, .plot_*() (notebook.py)."""
    from .notebook import open_study as _open
    return _open(path)
