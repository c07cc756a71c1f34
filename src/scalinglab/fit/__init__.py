"""Fitting scaling laws (docs/architecture.md: where each part lives).

core/        the fit contract: FitBase (one result shape), the robust statistics, the declared-law fitter
             (LawFit), run tables, verdicts
chinchilla/  Hoffmann et al. 2022: Approach 3 (ChinchillaFit -> FitResult) with its solver, objectives and
             bootstrap; Approaches 1 and 2
curvelaws/   whole-curve laws under an LR schedule (Multi-Power Law, LR-annealing law)
kaplan.py, data_constrained.py, forms.py   the other laws, declared on core/
registry.py  every family: result type, law function, how `fit --law all` fits it
fitfile.py   fit files: write_fits, read_fits, load_fits, load_fit
every.py     every law the data allow in one pass (fit --law all, a study's fits.json)
backtest.py  candidate forms backtested; `--law auto`
"""
from .chinchilla.approach3 import ChinchillaFit
from .chinchilla.result import FitResult
from .fitfile import load_fit, load_fits, read_fits, write_fits

__all__ = ["ChinchillaFit", "FitResult", "load_fit", "load_fits", "read_fits", "write_fits"]

from ..callable import make_callable  # noqa: E402


def __command__(*args, **kwargs):
    """``scalinglab.fit(...)``: the `fit` command as a function (fit/command.py)."""
    from .command import fit
    return fit(*args, **kwargs)


make_callable(__name__)
