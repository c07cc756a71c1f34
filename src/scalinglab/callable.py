"""`scalinglab.fit(...)`, `scalinglab.plan(...)`, `scalinglab.compare(...)`: the Python API has the CLI's
command names, and so do three of the package's own modules (fit/, plan/, compare.py). A module cannot be
both a namespace and a function, so those three modules are made callable: calling one calls its command in
api.py, and ``from scalinglab.fit import ChinchillaFit`` keeps working. One mechanism, in one place."""
from __future__ import annotations

import sys
import types


class CommandModule(types.ModuleType):
    """A module that, called, runs ``scalinglab.api.<its command>``."""

    def __call__(self, *args, **kwargs):
        from . import api
        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


def make_callable(module_name: str) -> None:
    sys.modules[module_name].__class__ = CommandModule
