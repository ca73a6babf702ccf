"""Modules loaded at first use, so a command pays only for what it runs.

``suyuan --help`` and the first moments of ``suyuan import`` need neither SQLAlchemy nor the
ledger: the command-line modules name them through :func:`module`, which is the standard
library's recipe (:class:`importlib.util.LazyLoader`): the module object exists at once and
runs its code on the first attribute looked up.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def module(name: str) -> ModuleType:
    """``name``, imported now if it already is, else on first attribute access."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    lazy = importlib.util.module_from_spec(spec)
    sys.modules[name] = lazy
    loader.exec_module(lazy)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, lazy)  # as an import does: ``suyuan.ledger`` works
    return lazy
