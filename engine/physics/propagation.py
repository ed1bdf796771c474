"""Free-space propagation (Fresnel transfer function or exact angular spectrum).

``psi'(x, y) = ifft2(fft2(psi) * H(u, v))`` on the unshifted ``fftfreq`` grid, periodic boundaries:

* Fresnel (paraxial): ``H = exp(-i pi lambda d (u^2 + v^2))``
* angular spectrum:   ``H = exp(i 2 pi d (sqrt(1/lambda^2 - u^2 - v^2) - 1/lambda))`` for propagating
  waves, 0 for evanescent ones (the common ``exp(ikd)`` phase is dropped in both).

Kernels are cached per (shape, pixel size, distance, wavelength, method, backend, dtype): building
one costs as much as an FFT, so the iteration loop must never do it.
"""

from __future__ import annotations

import functools

import numpy as np

from ..autodiff import data, is_traced, primitive, record
from ..backend import Backend, to_host
from ..ops import _unbroadcast

METHODS = ("fresnel", "angular_spectrum")


def _freq2(shape: tuple[int, int], pixel_m: float) -> np.ndarray:
    """``u^2 + v^2`` (1/m^2) on the unshifted FFT grid, float64 ``(ny, nx)``."""
    v = np.fft.fftfreq(shape[0], d=pixel_m)
    u = np.fft.fftfreq(shape[1], d=pixel_m)
    return v[:, None] ** 2 + u[None, :] ** 2


def _phase_and_rate(shape, pixel_m, distance_m, wavelength_m, method):
    """Kernel H (complex128) and dH/dd / H (complex128) for the derivative w.r.t. distance."""
    q2 = _freq2(shape, pixel_m)
    if method == "fresnel":
        rate = -1j * np.pi * wavelength_m * q2
        return np.exp(rate * distance_m), rate
    if method == "angular_spectrum":
        arg = 1.0 / wavelength_m ** 2 - q2
        prop = arg > 0
        kz = np.sqrt(np.where(prop, arg, 0.0))
        rate = np.where(prop, 2j * np.pi * (kz - 1.0 / wavelength_m), 0.0)
        return np.where(prop, np.exp(rate * distance_m), 0.0), rate
    raise ValueError(f"propagation method must be one of {METHODS}, got {method!r}")


def transfer_function(shape, pixel_m: float, distance_m: float, wavelength_m: float,
                      method: str = "fresnel") -> np.ndarray:
    """The propagation kernel ``H`` (complex128 ``(ny, nx)``, unshifted FFT grid) of the module
    docstring, for code outside the tape (closed-form and iterative phase retrieval)."""
    return _phase_and_rate(tuple(shape), float(pixel_m), float(distance_m), float(wavelength_m),
                           method)[0]


@functools.lru_cache(maxsize=64)
def _cached_kernel(shape, pixel_m, distance_m, wavelength_m, method, backend: Backend):
    h, rate = _phase_and_rate(shape, pixel_m, distance_m, wavelength_m, method)
    return backend.to_complex(h), backend.to_complex(rate)


class Propagator:
    """Propagation of ``(..., ny, nx)`` complex fields over a fixed distance (one AD primitive).

    Parameters: ``shape`` (ny, nx) pixels; ``pixel_m`` sampling (m); ``distance_m`` (m, may be
    negative: back-propagation); ``wavelength_m`` (m); ``method`` ``"fresnel"`` or
    ``"angular_spectrum"``; ``backend``. ``fwd`` and ``adj`` act on plain arrays; calling the object
    records one node whose backward is ``adj``.
    """

    def __init__(self, shape, pixel_m: float, distance_m: float, wavelength_m: float,
                 backend: Backend, method: str = "fresnel"):
        if method not in METHODS:
            raise ValueError(f"propagation method must be one of {METHODS}, got {method!r}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.backend = backend
        self.kernel, _ = _cached_kernel(self.shape, float(pixel_m), float(distance_m),
                                        float(wavelength_m), method, backend)
        self.kernel_conj = self.kernel.conj()  # the adjoint's kernel, not rebuilt per call

    def _check(self, psi):
        if tuple(psi.shape[-2:]) != self.shape:
            raise ValueError(f"field must have shape (..., {self.shape[0]}, {self.shape[1]}), "
                             f"got {tuple(psi.shape)}")

    def fwd(self, psi):
        self._check(psi)
        return self._apply(psi, self.kernel)

    def adj(self, psi):
        return self._apply(psi, self.kernel_conj)

    def _apply(self, psi, kernel):
        # the spectrum is our own array: multiply in place and transform back in place, so one
        # field-sized buffer is allocated per call instead of three
        be = self.backend
        spec = be.fft2(psi)
        spec *= kernel  # (ny, nx) kernel broadcast over the field's leading axes
        return be.ifft2(spec, overwrite_x=True)

    def __call__(self, psi):
        return record(self.fwd(data(psi)), (psi,), lambda g: (self.adj(g),), "propagate")


@primitive
def propagate(psi, distance_m, *, pixel_m: float, wavelength_m: float, backend: Backend,
              method: str = "fresnel"):
    """Propagate ``psi`` ``(..., ny, nx)`` by a distance that may itself be differentiated.

    ``distance_m``: a float, a 0-d tensor, or a tensor/array of shape ``(D,)`` broadcast against the
    leading axis ``-3`` of ``psi`` (``psi`` shaped ``(..., D, ny, nx)``): one distance per plane, as
    in multi-distance holography. Gradients flow to ``psi`` and to ``distance_m``.
    """
    pd = data(psi)
    dd = data(distance_m)
    be = backend
    xp = be.xp
    shape = tuple(pd.shape[-2:])
    _, rate = _cached_kernel(shape, float(pixel_m), 0.0, float(wavelength_m), method, backend)
    d_host = np.atleast_1d(to_host(dd).astype(float))
    kernels = xp.stack([_cached_kernel(shape, float(pixel_m), float(d), float(wavelength_m),
                                       method, backend)[0] for d in d_host])
    scalar = np.ndim(dd) == 0
    if scalar:
        kernels = kernels[0]  # else (D, ny, nx), broadcasting against axis -3 of psi
    spec = be.fft2(pd)
    out = be.ifft2(spec * kernels, overwrite_x=True)

    def vjp(g):
        gspec = be.fft2(g)
        g_psi = None
        if is_traced(psi):
            g_psi = _unbroadcast(be.ifft2(gspec * kernels.conj(), overwrite_x=True), pd.shape)
        g_d = None
        if is_traced(distance_m):
            # d out / d d = ifft2(spec * H * rate);  dL/dd = Re <d out/dd, g> = Re <spec*H*rate, fft2(g)>
            prod = (spec * kernels * rate).conj() * gspec
            if scalar:
                g_d = xp.asarray(prod.real.sum(), dtype=be.real_dtype)
            else:
                axes = tuple(i for i in range(prod.ndim) if i != prod.ndim - 3)
                g_d = prod.real.sum(axis=axes).astype(be.real_dtype)
        return g_psi, g_d

    return record(out, (psi, distance_m), vjp, "propagate_distance")


def propagate_and_shift(psi, shifts, propagator: Propagator):
    """Propagate ``psi`` ``(S, ..., ny, nx)`` with ``propagator`` and move field ``j`` by
    ``shifts[j]`` pixels ``(y, x)`` (a Fourier shift, periodic), as one primitive.

    ``out_j = ifft2(fft2(psi_j) * H * exp(-2 pi i (fy sy_j + fx sx_j)))``. Near-field ptychography
    uses it to undo the sub-pixel probe move at the detector, which is fixed to the beam: both
    operators are Fourier multipliers, so the shift costs no extra FFT. Gradients flow to ``psi``
    and to ``shifts`` (pixels).
    """
    pd, sd = data(psi), data(shifts)
    be = propagator.backend
    xp = be.xp
    ny, nx = pd.shape[-2:]
    fy = xp.asarray(np.fft.fftfreq(ny)[:, None], dtype=be.real_dtype)
    fx = xp.asarray(np.fft.fftfreq(nx)[None, :], dtype=be.real_dtype)
    lead = (len(sd),) + (1,) * (pd.ndim - 3)
    sy = sd[:, 0].astype(be.real_dtype).reshape(lead + (1, 1))
    sx = sd[:, 1].astype(be.real_dtype).reshape(lead + (1, 1))
    # the shift ramp is separable: small exponentials along y and x, not a full-size exp
    mult = propagator.kernel * xp.exp((-2j * np.pi) * (fy * sy))
    mult *= xp.exp((-2j * np.pi) * (fx * sx))
    out_spec = be.fft2(pd) * mult
    out = be.ifft2(out_spec)

    def vjp(g):
        gspec = be.fft2(g)
        g_psi = be.ifft2(gspec * mult.conj(), overwrite_x=True) if is_traced(psi) else None
        g_shift = None
        if is_traced(shifts):
            # d out / d sy = ifft2(out_spec * (-2 pi i fy)); Re <that, g> by Parseval
            # = -2 pi sum fy Im(conj(out_spec) gspec), reduced along the other axes first
            im = (out_spec.conj() * gspec).imag
            rest = tuple(range(1, im.ndim - 2))
            cy = (-2 * np.pi) * (im.sum(axis=rest + (im.ndim - 1,)) @ fy[:, 0])
            cx = (-2 * np.pi) * (im.sum(axis=rest + (im.ndim - 2,)) @ fx[0])
            g_shift = xp.stack([cy, cx], axis=1).astype(sd.dtype)
        return g_psi, g_shift

    return record(out, (psi, shifts), vjp, "propagate_and_shift")
