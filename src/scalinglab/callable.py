"""`scalinglab.fit(...)`, `scalinglab.plan(...)`, `scalinglab.compare(...)`: the Python API has the CLI's
command names, and so do three of the package's own modules (fit/, plan/, compare.py). A module cannot be
both a namespace and a function, so those three modules are made callable: calling one runs its
``__command__`` (fit/command.py, plan/command.py, compare.command), and ``from scalinglab.fit import
ChinchillaFit`` keeps working. One mechanism, in one place; it imports nothing of the package."""
from __future__ import annotations

import sys
import types


class CommandModule(types.ModuleType):
    """A module that, called, runs its ``__command__``."""

    def __call__(self, *args, **kwargs):
        return self.__command__(*args, **kwargs)


def make_callable(module_name: str) -> None:
    sys.modules[module_name].__class__ = CommandModule
