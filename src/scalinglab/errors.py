"""The one exception type for mistakes a user can make; the CLI prints it as a single `error:` line."""


class ScalingLabError(Exception):
    """A problem with the user's input, named with how to fix it. Tracebacks are reserved for bugs."""


class NotFittable(ScalingLabError):
    """These data cannot support this law (no curves for an envelope law, too few sizes per budget, no
    noise scale): `fit --law all` skips the law and says why; asked for alone, it is the user's error line.
    A bad table (a missing column, a non-number) stays a ScalingLabError and is never skipped."""


def plain(value) -> str:
    """A value as a person writes it in a message: 1e+20, inf, 'abc' (never np.float64(inf))."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)
