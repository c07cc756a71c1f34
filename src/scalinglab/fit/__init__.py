"""Fitting scaling laws: pure law functions, robust objectives, estimators, immutable results."""
from .estimators import ChinchillaFit
from .result import FitResult

__all__ = ["ChinchillaFit", "FitResult"]
