"""The one exception type for mistakes a user can make; the CLI prints it as a single `error:` line."""


class ScalingLabError(Exception):
    """A problem with the user's input, named with how to fix it. Tracebacks are reserved for bugs.

    The message names the caller's parameters in library terms, each as `name` in backticks, and lists
    them in ``params``; a front end says them its own way (the CLI: `data` -> --data; cli.in_cli_terms).
    """

    def __init__(self, message: str = "", *, params: tuple[str, ...] = ()):
        super().__init__(message)
        self.params = tuple(params)

    def __reduce__(self):  # crosses process boundaries (worker pools, Ray) with its params
        return _rebuild, (type(self), str(self), self.params)


def _rebuild(cls, message, params):
    return cls(message, params=params)


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
