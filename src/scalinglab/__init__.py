"""scalinglab: scaling-law studies on your own compute (Kaplan et al. 2020, Hoffmann et al. 2022)."""
from .errors import ScalingLabError

__version__ = "0.1.0"
__all__ = ["ScalingLabError", "__version__"]
