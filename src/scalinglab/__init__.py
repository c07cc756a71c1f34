"""scalinglab: scaling-law studies on your own compute (Kaplan et al. 2020, Hoffmann et al. 2022)."""
from .errors import ScalingLabError

__version__ = "0.1.0"
__all__ = ["ScalingLabError", "__version__", "compare", "fit", "open_study", "plan"]


def __getattr__(name: str):
    """``scalinglab.fit``, ``.plan``, ``.compare``: the modules of those names, callable as the CLI's commands
    (callable.py), imported on first use so that ``import scalinglab`` stays light."""
    if name in ("fit", "plan", "compare"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'scalinglab' has no attribute {name!r}")


def open_study(path):
    """A study directory as a Python object: .runs, .curves, .fits, .holdout, .plot_*() (notebook.py)."""
    from .notebook import open_study as _open
    return _open(path)
