"""Whole-curve laws (Multi-Power Law, LR-annealing law): the loss at every step from the LR schedule.

curve.py declares the laws and a run's curve, result.py the fit (CurveFit), fitter.py fits them, estimates.py
uses them (final-loss estimates, leave-one-out, curves from tables and study stores)."""
from .curve import ANNEALING_MOMENTUM, LAWS, LR_ANNEALING, MULTI_POWER, Curve, lr_annealing, multi_power
from .estimates import (
                        STUDY_POINTS,
                        RunEstimator,
                        curves_from_table,
                        curves_of_runs,
                        estimate_final,
                        estimate_summary,
                        leave_one_out_estimates,
                        relative_errors,
)
from .fitter import fit_curves, objective
from .result import CurveFit

__all__ = ["ANNEALING_MOMENTUM", "LAWS", "LR_ANNEALING", "MULTI_POWER", "RunEstimator", "STUDY_POINTS",
           "Curve", "CurveFit", "curves_from_table", "curves_of_runs", "estimate_final", "estimate_summary",
           "fit_curves", "leave_one_out_estimates", "lr_annealing", "multi_power", "objective",
           "relative_errors"]
