"""Slicewise engine: multislice forward models, a reverse-mode AD tape and solvers. No Qt here.

The public names below are imported on first use, so that ``import slicewise.cli`` is instant:
the command line installs its signal handlers before NumPy and friends load. Taking the AD names
(``Tensor``, ``value_and_grad`` ...) from here also loads :mod:`.ops`, whose primitives Tensor's
operators use (:data:`.autodiff.PRIMITIVES`).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "Tape": "autodiff", "Tensor": "autodiff", "checkpoint": "autodiff", "no_grad": "autodiff",
    "stop_gradient": "autodiff", "value_and_grad": "autodiff",
    "Backend": "backend", "BackendError": "backend", "get_backend": "backend", "to_host": "backend",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        if _LAZY[name] == "autodiff":
            importlib.import_module(".ops", __name__)
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
