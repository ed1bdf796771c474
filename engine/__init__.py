"""Slicewise engine: multislice forward models, a reverse-mode AD tape and solvers. No Qt here."""

from .autodiff import Tape, Tensor, checkpoint, no_grad, stop_gradient, value_and_grad
from .backend import Backend, BackendError, get_backend, to_host

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendError",
    "Tape",
    "Tensor",
    "checkpoint",
    "get_backend",
    "no_grad",
    "stop_gradient",
    "to_host",
    "value_and_grad",
    "__version__",
]
