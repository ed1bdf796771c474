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
    the same factors.

    The pieces of its normal equations ``(A^T A + reg) x = A^T g`` are public for solvers that
    weight the detector pixels (:mod:`.masked`); all act on FFTs (unshifted grid): ``x`` is
    ``(K, ny, nx)`` with ``K = 2`` unknowns ``(phi, B)``, or ``K = 1`` (``phi``) with a ratio;
    ``g`` is ``(D, ny, nx)``, the holograms minus 1."""

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
            # one unknown phi, B = -ratio phi: g = 2 (s + ratio c) phi
            self.a = 2 * (s + ratio * c)
            aa = (self.a * self.a).sum(0)
            self.reg = alpha * float(aa.max())
            self.den = aa + self.reg
            return
        # phi and B: g = 2 s phi - 2 c B, per frequency a 2x2 system with Tikhonov
        ss, cc, sc = 4 * (s * s).sum(0), 4 * (c * c).sum(0), -4 * (s * c).sum(0)
        self.reg = alpha * float(xp.maximum(ss, cc).max())
        self.s, self.c, self.sc = s, c, sc
        self.m11, self.m22 = ss + self.reg, cc + self.reg
        self.det = self.m11 * self.m22 - sc * sc

    @property
    def n_unknowns(self) -> int:
        return 1 if self.ratio is not None else 2

    def forward(self, x_f):
        """``A x``: the holograms minus 1 ``(D, ny, nx)`` of the unknowns ``x_f``."""
        if self.ratio is not None:
            return self.a * x_f[0]
        return 2 * self.s * x_f[0] - 2 * self.c * x_f[1]

    def adjoint(self, g_f):
        """``A^T g``: ``(K, ny, nx)`` from the holograms minus 1 ``g_f`` ``(D, ny, nx)``."""
        if self.ratio is not None:
            return (self.a * g_f).sum(0)[None]
        return self.xp.stack([2 * (self.s * g_f).sum(0), -2 * (self.c * g_f).sum(0)])

    def solve(self, rhs_f, extra=0.0):
        """``(A^T A + reg + extra)^-1 rhs`` per frequency, ``(K, ny, nx)``; ``extra``: a further
        per-frequency penalty on every unknown (``(ny, nx)`` or a number)."""
        if self.ratio is not None:
            return rhs_f / (self.den + extra)
        bs, bc = rhs_f
        m11, m22 = self.m11 + extra, self.m22 + extra
        det = m11 * m22 - self.sc * self.sc
        return self.xp.stack([(m22 * bs - self.sc * bc) / det, (m11 * bc - self.sc * bs) / det])

    def maps(self, x_f):
        """``(phi, B)`` real ``(ny, nx)`` from the unknowns' FFTs."""
        xp = self.xp
        phi = xp.fft.ifft2(x_f[0]).real
        if self.ratio is not None:
            return phi, -self.ratio * phi
        return phi, xp.fft.ifft2(x_f[1]).real

    def __call__(self, intensities):
        xp = self.xp
        inten = xp.asarray(intensities, dtype=xp.float64)
        g = xp.fft.fft2(inten - 1.0 if inten.ndim == 3 else inten[None] - 1.0)
        return self.maps(self.solve(self.adjoint(g)))


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
