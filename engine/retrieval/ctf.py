"""Near-field phase retrieval in the engine's conventions (weak-object and homogeneous-object).

A thin object transmits ``T = exp(i phi - B)`` with the projected phase ``phi = -k sum(delta dz)``
(negative for delta > 0) and the projected absorption ``B = k sum(beta dz)``. Propagated over a
distance ``d`` with the Fresnel kernel ``exp(-i chi)``, ``chi(u) = pi lambda d |u|^2``, the
intensity relative to the incident one is, to first order in ``phi`` and ``B``::

    FT(I_d - 1)(u) = 2 sin(chi_d) FT(phi)(u) - 2 cos(chi_d) FT(B)(u)          (CTF)

* :func:`ctf_retrieve` -- least squares over distances with a Tikhonov term, either for ``phi``
  and ``B`` jointly (two or more distances) or for ``phi`` alone with ``B = -ratio * phi``
  (a homogeneous object, ``ratio = beta / delta``); :class:`CTFInverse` keeps its factors for
  repeated solves.
* :func:`paganin_retrieve` -- the homogeneous transport-of-intensity solution for one distance,
  valid beyond weak absorption: ``exp(-2B) = IFT( FT(I) / (1 + chi / ratio) )``, ``phi = -B / ratio``.

Arrays: intensities ``(D, ny, nx)`` (or ``(ny, nx)``) normalised so that vacuum gives 1; results
``(ny, nx)`` float64 radians. ``xp`` is the array module (NumPy or CuPy).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fresnel_phase", "CTFInverse", "ctf_retrieve", "paganin_retrieve"]


def fresnel_phase(shape, pixel_m: float, wavelength_m: float, distance_m: float, xp=np):
    """``chi(u) = pi lambda d |u|^2`` on the unshifted FFT grid, ``(ny, nx)``."""
    v = xp.fft.fftfreq(shape[0], d=pixel_m)
    u = xp.fft.fftfreq(shape[1], d=pixel_m)
    return np.pi * wavelength_m * distance_m * (v[:, None] ** 2 + u[None, :] ** 2)


class CTFInverse:
    """The CTF's regularised least-squares inverse for fixed distances, ``ratio`` and ``alpha``
    (see :func:`ctf_retrieve`), its per-frequency factors computed once: calling it on
    intensities ``(D, ny, nx)`` returns ``(phi, B)``. Iterative retrievals solve many times with
    the same factors."""

    def __init__(self, shape, distances_m, wavelength_m: float, pixel_m: float, *,
                 ratio: float | None = None, alpha: float = 1e-2, xp=np):
        self.xp = xp
        dist = [float(d) for d in np.atleast_1d(distances_m)]
        chis = [fresnel_phase(tuple(shape)[-2:], pixel_m, wavelength_m, d, xp) for d in dist]
        s = xp.stack([xp.sin(c) for c in chis])
        c = xp.stack([xp.cos(c) for c in chis])
        if ratio is None and len(dist) == 1:
            ratio = 0.0
        self.ratio = ratio
        if ratio is not None:
            a = s + ratio * c
            den = 2 * (a * a).sum(0)
            self.a, self.den = a, den + alpha * float(den.max())
            return
        # joint least squares per frequency: [2s, -2c] [phi, B]^T = g, with Tikhonov
        ss, cc, sc = 4 * (s * s).sum(0), 4 * (c * c).sum(0), -4 * (s * c).sum(0)
        reg = alpha * float(xp.maximum(ss, cc).max())
        self.s, self.c, self.sc = s, c, sc
        self.m11, self.m22 = ss + reg, cc + reg
        self.det = self.m11 * self.m22 - sc * sc

    def __call__(self, intensities):
        xp = self.xp
        inten = xp.asarray(intensities, dtype=xp.float64)
        g = xp.fft.fft2(inten - 1.0 if inten.ndim == 3 else inten[None] - 1.0)
        if self.ratio is not None:
            phi = xp.fft.ifft2((self.a * g).sum(0) / self.den).real
            return phi, -self.ratio * phi
        bs, bc = 2 * (self.s * g).sum(0), -2 * (self.c * g).sum(0)
        phi_f = (self.m22 * bs - self.sc * bc) / self.det
        b_f = (self.m11 * bc - self.sc * bs) / self.det
        return xp.fft.ifft2(phi_f).real, xp.fft.ifft2(b_f).real


def ctf_retrieve(intensities, distances_m, wavelength_m: float, pixel_m: float, *,
                 ratio: float | None = None, alpha: float = 1e-2, xp=np):
    """``(phi, B)`` from near-field intensities at ``distances_m`` by the CTF.

    ``ratio``: ``beta / delta`` of a homogeneous object (then ``B = -ratio phi``); None solves for
    ``phi`` and ``B`` independently (needs two distances or more; with one, a pure phase object is
    assumed). ``alpha``: Tikhonov weight relative to the largest transfer (dimensionless).
    """
    inten = xp.asarray(intensities, dtype=xp.float64)
    return CTFInverse(inten.shape, distances_m, wavelength_m, pixel_m, ratio=ratio, alpha=alpha,
                      xp=xp)(inten)


def paganin_retrieve(intensity, distance_m: float, wavelength_m: float, pixel_m: float,
                     ratio: float, xp=np):
    """``(phi, B)`` of a homogeneous object (``beta / delta = ratio > 0``) from one distance."""
    if not ratio > 0:
        raise ValueError(f"Paganin retrieval needs beta/delta > 0, got {ratio}")
    inten = xp.asarray(intensity, dtype=xp.float64)
    chi = fresnel_phase(inten.shape[-2:], pixel_m, wavelength_m, distance_m, xp)
    filtered = xp.fft.ifft2(xp.fft.fft2(inten) / (1.0 + chi / ratio)).real
    b = -0.5 * xp.log(xp.maximum(filtered, 1e-6))
    return -b / ratio, b
