"""Choice of array module (NumPy or CuPy) and precision, made once and passed explicitly.

A :class:`Backend` bundles the array module ``xp``, its FFT functions and the working dtypes.
Every operator, model and solver receives one; nothing in the engine reads a global backend.

Selection (``get_backend``):

* ``"auto"`` -- CuPy when a GPU really works, else NumPy. ``import cupy`` succeeds on machines
  without a GPU, so we probe a tiny allocation *and* an FFT before trusting it.
* ``"cupy"`` -- CuPy or a :class:`BackendError` that says why it cannot work.
* ``"numpy"`` -- NumPy with ``scipy.fft`` on all cores.

The environment variable ``SLICEWISE_BACKEND`` (``numpy`` | ``cupy`` | ``auto``) overrides the
value ``"auto"`` only; an explicit choice in a configuration always wins.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import SlicewiseError

log = logging.getLogger(__name__)

BACKEND_NAMES = ("auto", "numpy", "cupy")

#: NumPy backend: transforms with fewer points run on one thread. Waking scipy.fft's workers costs
#: more than a small transform: on 2 cores (1, 64, 64) takes 21 us on one thread and 40-130 us on
#: two, while (36, 64, 64) (147k points) is 1.6x faster on two (benchmarks/, 2026-11-25).
SMALL_FFT_POINTS = 1 << 17


def fft_workers(n_points: int, workers: int = -1) -> int:
    """scipy.fft ``workers`` for a transform of ``n_points`` points (see SMALL_FFT_POINTS)."""
    return 1 if n_points < SMALL_FFT_POINTS else workers
PRECISIONS = ("single", "double")


class BackendError(SlicewiseError, RuntimeError):
    """The requested array backend cannot be used on this machine."""


def _probe_cupy() -> tuple[Any | None, str]:
    """Return (cupy module, "") when a GPU works, else (None, reason)."""
    try:
        import cupy  # noqa: PLC0415 - optional dependency
    except Exception as exc:  # ImportError, or CUDA libraries missing at import
        return None, f"cupy is not importable ({exc}); install the 'gpu' extra: pip install slicewise[gpu]"
    try:
        a = cupy.arange(16, dtype=cupy.complex64).reshape(4, 4)
        cupy.fft.fft2(a).sum().item()
    except Exception as exc:
        return None, f"cupy is installed but no working CUDA GPU was found ({type(exc).__name__}: {exc})"
    return cupy, ""


@dataclass(frozen=True)
class Backend:
    """Array module plus FFTs and dtypes.

    Attributes
    ----------
    name: ``"numpy"`` or ``"cupy"``.
    xp: the array module.
    precision: ``"single"`` (complex64/float32, default) or ``"double"`` (complex128/float64).
    """

    name: str
    xp: Any
    precision: str = "single"
    _fft: Any = field(default=None, repr=False, compare=False)
    workers: int = field(default=-1, compare=False)

    @property
    def real_dtype(self):
        return self.xp.float32 if self.precision == "single" else self.xp.float64

    @property
    def complex_dtype(self):
        return self.xp.complex64 if self.precision == "single" else self.xp.complex128

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    # ---- FFTs over the last two axes, unitary ("ortho") normalisation -------------------
    def fft2(self, a, overwrite_x: bool = False):
        if self.name == "numpy":
            return self._fft.fft2(a, norm="ortho", workers=fft_workers(a.size, self.workers),
                                  overwrite_x=overwrite_x)
        return self._fft.fft2(a, norm="ortho")

    def ifft2(self, a, overwrite_x: bool = False):
        if self.name == "numpy":
            return self._fft.ifft2(a, norm="ortho", workers=fft_workers(a.size, self.workers),
                                   overwrite_x=overwrite_x)
        return self._fft.ifft2(a, norm="ortho")

    def fftfreq(self, n: int, d: float):
        return self.xp.fft.fftfreq(n, d=d)

    # ---- host/device transfer ------------------------------------------------------------
    def asarray(self, a, dtype=None):
        """Put ``a`` (NumPy array, list or device array) on this backend."""
        return self.xp.asarray(a, dtype=dtype)

    def to_complex(self, a):
        return self.xp.asarray(a, dtype=self.complex_dtype)

    def to_real(self, a):
        return self.xp.asarray(a, dtype=self.real_dtype)

    def describe(self) -> str:
        """One line for logs and the GUI: backend, device and precision."""
        if self.name == "cupy":
            try:
                dev = self.xp.cuda.runtime.getDeviceProperties(self.xp.cuda.Device().id)
                gpu = dev["name"].decode() if isinstance(dev["name"], bytes) else str(dev["name"])
            except Exception:  # pragma: no cover - depends on the driver
                gpu = "CUDA GPU"
            return f"CuPy on {gpu} ({self.precision} precision)"
        threads = f", {self.workers} FFT thread(s) (OMP_NUM_THREADS)" if self.workers > 0 else ""
        return f"NumPy/SciPy on {os.cpu_count()} CPU cores{threads} ({self.precision} precision)"


def to_host(a) -> np.ndarray:
    """Return a NumPy copy/view of a NumPy or CuPy array (or a scalar), whatever the backend."""
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def array_module(a):
    """The array module (numpy or cupy) an array belongs to, without importing cupy needlessly."""
    if type(a).__module__.startswith("cupy"):
        import cupy  # noqa: PLC0415 - optional dependency (the gpu extra)

        return cupy
    return np


@functools.lru_cache(maxsize=None)
def _make_backend(name: str, precision: str) -> Backend:
    if name == "cupy":
        cupy, why = _probe_cupy()
        if cupy is None:
            why = " ".join(str(why).split())
            raise BackendError(f"run.backend (--backend) = 'cupy' was requested but cannot be used: "
                               f"{why}. Use backend 'numpy' (or 'auto') to run on the CPU.")
        import cupy.fft as cfft  # noqa: PLC0415 - optional dependency (the gpu extra)

        return Backend("cupy", cupy, precision, cfft, workers=1)
    import scipy.fft as sfft  # noqa: PLC0415 - loaded with the backend that uses it

    return Backend("numpy", np, precision, sfft, workers=cpu_threads())


def cpu_threads() -> int:
    """FFT threads of the NumPy backend: ``OMP_NUM_THREADS`` when set (the usual cap per process,
    e.g. one per MPI rank: ``OMP_NUM_THREADS=1 mpiexec -n 4 ...``), else every core (-1)."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return -1
    return n if n >= 1 else -1


def get_backend(name: str = "auto", precision: str = "single") -> Backend:
    """Return the backend called ``name`` (``auto`` | ``numpy`` | ``cupy``).

    ``auto`` honours ``SLICEWISE_BACKEND`` and otherwise tries CuPy, falling back to NumPy with
    one log line giving the reason.
    """
    if name not in BACKEND_NAMES:
        raise BackendError(f"backend must be one of {BACKEND_NAMES}, got {name!r}")
    if precision not in PRECISIONS:
        raise BackendError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if name == "auto":
        env = os.environ.get("SLICEWISE_BACKEND", "auto").strip().lower() or "auto"
        if env not in BACKEND_NAMES:
            raise BackendError(f"environment variable SLICEWISE_BACKEND must be one of "
                               f"{BACKEND_NAMES}, got {env!r}")
        name = env
    if name == "auto":
        name = _auto_choice()
    return _make_backend(name, precision)


@functools.lru_cache(maxsize=None)
def _auto_choice() -> str:
    """Probe the GPU once per process; say once why it is not used."""
    cupy, why = _probe_cupy()
    if cupy is not None:
        return "cupy"
    log.info("GPU not used, running on NumPy/SciPy: %s", why)
    return "numpy"
