"""Wavelength, wavenumber and the transmission of one slice of refractive material.

Convention (Adorym's, with an ``exp(+ikz)`` plane wave): ``n = 1 - delta + i beta`` and a slice of
thickness ``dz`` (metres) transmits ``T = exp(-k dz beta) * exp(-i k dz delta)``.
"""

from __future__ import annotations

import numpy as np

from ..autodiff import data, is_traced, primitive, record
from ..backend import array_module
from .constants import wavelength_m


def wavenumber(energy_ev: float) -> float:
    """``k = 2 pi / lambda`` in 1/m."""
    return 2 * np.pi / wavelength_m(energy_ev)


@primitive
def transmission(delta, beta, k: float, dz: float):
    """Slice transmission ``exp(-k dz (beta + i delta))`` (one AD primitive).

    ``delta``, ``beta``: real arrays of equal shape (any, e.g. ``(ny, nx)`` or ``(nz, ny, nx)``);
    ``k`` in 1/m, ``dz`` in metres. Returns a complex array of the same shape.
    """
    dd, bd = data(delta), data(beta)
    xp = array_module(dd)
    kdz = k * dz
    t = _exp_transmission(dd, bd, kdz, xp, _complex_of(dd))

    def vjp(g):
        # dT/d(delta) = -i kdz T, dT/d(beta) = -kdz T; real inputs keep Re(conj(dT) g)
        tg = xp.conj(t) * g
        gd = (-kdz * tg.imag) if is_traced(delta) else None  # Re(conj(-i kdz T) g) = -kdz Im(conj(T) g)
        gb = (-kdz * tg.real) if is_traced(beta) else None
        return gd, gb

    return record(t, (delta, beta), vjp, "transmission")


@primitive
def transmission_of_index(vol, k: float, dz: float):
    """Slice transmission from the complex array ``vol = delta + i beta`` (one AD primitive).

    Same values as :func:`transmission` of ``(vol.real, vol.imag)``, without the real/imag split on
    the tape: the cotangent of ``vol`` (``dL/d delta + i dL/d beta``) is ``-i k dz T conj(g)`` in one
    complex pass. ``vol`` may be a strided view (e.g. a rotated volume); the output is C-contiguous.
    """
    vd = data(vol)
    xp = array_module(vd)
    kdz = k * dz
    t = _exp_transmission(vd.real, vd.imag, kdz, xp, vd.dtype)

    def vjp(g):
        # d/d delta: Re(conj(-i kdz T) g) = -kdz Im(conj(T) g); d/d beta: -kdz Re(conj(T) g);
        # together -kdz (Im(c) + i Re(c)) = -i kdz conj(c), c = conj(T) g
        out = xp.conj(g) if xp.iscomplexobj(g) else g.astype(t.dtype)
        out *= t
        out *= -1j * kdz
        return (out,)

    return record(t, (vol,), vjp, "transmission")


def _exp_transmission(dd, bd, kdz: float, xp, dtype):
    """``exp(-kdz bd) (cos(-kdz dd) + i sin(-kdz dd))`` into a new C-contiguous complex array.

    Real exp/cos/sin are vectorised where complex exp is not (~3x faster on CPUs); the products
    are written straight into the real and imaginary parts, and the three temporaries are reused
    (7 passes, no copies: this runs on every rotated volume of every minibatch).
    """
    t = xp.empty(dd.shape, dtype=dtype)
    c_order = {"order": "C"} if xp is np else {}  # C order even for a strided (rotated) input
    amp = xp.multiply(bd, -kdz, **c_order)
    xp.exp(amp, out=amp)
    phase = xp.multiply(dd, -kdz, **c_order)
    trig = xp.cos(phase)
    xp.multiply(amp, trig, out=t.real)
    xp.sin(phase, out=trig)
    xp.multiply(amp, trig, out=t.imag)
    return t


def _complex_of(real_array):
    return np.complex128 if real_array.dtype == np.float64 else np.complex64
