"""Unitary 2D FFTs over the last two axes for the physics operators, threaded only when it pays.

``Backend.fft2`` runs ``scipy.fft`` on all cores. For small transforms (one 64x64 view, a minibatch
of a few small frames) waking the worker threads costs more than the transform: measured on a
2-core machine, ``(1, 64, 64)`` takes 21 us on one thread and 40-130 us on two, ``(1, 256, 256)``
263 us vs 363 us, while ``(36, 64, 64)`` (147k points) is 1.6x faster on two. Below
``SMALL_FFT_POINTS`` points the NumPy backend therefore runs single-threaded; CuPy is unchanged.
"""

from __future__ import annotations

from ..backend import Backend

#: Transforms with fewer points than this run on one thread (NumPy backend).
SMALL_FFT_POINTS = 1 << 17


def _workers(be: Backend, a) -> int:
    return 1 if a.size < SMALL_FFT_POINTS else be.workers


def fft2(be: Backend, a, overwrite_x: bool = False):
    """``fft2_ortho(a)`` over the last two axes."""
    if be.name == "numpy":
        return be._fft.fft2(a, norm="ortho", workers=_workers(be, a), overwrite_x=overwrite_x)
    return be.fft2(a, overwrite_x=overwrite_x)


def ifft2(be: Backend, a, overwrite_x: bool = False):
    """``ifft2_ortho(a)`` over the last two axes."""
    if be.name == "numpy":
        return be._fft.ifft2(a, norm="ortho", workers=_workers(be, a), overwrite_x=overwrite_x)
    return be.ifft2(a, overwrite_x=overwrite_x)
