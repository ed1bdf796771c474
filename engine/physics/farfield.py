"""Fraunhofer (far-field) propagation from the exit plane to the detector.

A unitary FFT over the last two axes. ``centred=True`` puts the zero frequency at pixel
``(ny//2, nx//2)`` as on a detector; the reconstruction keeps ``centred=False`` and shifts the
measured frames once when they are read (see ``Dataset.frames``), which saves two array copies per
iteration.
"""

from __future__ import annotations

from ..autodiff import data, record
from ..backend import Backend
from ..ops import abs2


class FarField:
    """``psi (..., ny, nx) -> fft2_ortho(psi)``, optionally centred; one AD primitive."""

    def __init__(self, backend: Backend, centred: bool = False):
        self.backend = backend
        self.centred = centred

    def fwd(self, psi):
        out = self.backend.fft2(psi)
        if self.centred:
            out = self.backend.xp.fft.fftshift(out, axes=(-2, -1))
        return out

    def adj(self, g):
        if self.centred:
            g = self.backend.xp.fft.ifftshift(g, axes=(-2, -1))
        return self.backend.ifft2(g)

    def __call__(self, psi):
        return record(self.fwd(data(psi)), (psi,), lambda g: (self.adj(g),), "farfield")


def intensity(psi):
    """Detector intensity ``|psi|^2`` (photons per pixel when psi is in sqrt(photons))."""

    return abs2(psi)
