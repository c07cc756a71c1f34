"""The one exception type for mistakes a user can make; the CLI prints it as a single `error:` line."""


class ScalingLabError(Exception):
    """A problem with the user's input, named with how to fix it. Tracebacks are reserved for bugs."""
