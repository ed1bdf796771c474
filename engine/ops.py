"""NumPy-like differentiable primitives for :mod:`slicewise.engine.autodiff`.

Each function accepts tensors or plain arrays (and Python scalars), computes with the array's own
module (NumPy or CuPy) and records one node with a hand-written vector-Jacobian product. The
cotangent convention (``grad = dL/dRe + i dL/dIm``) is explained in :mod:`.autodiff`.

FFTs are unitary (``norm="ortho"``) over the last two axes, so their adjoint is their inverse.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .autodiff import IndexedGrad, data, is_traced, primitive, record
from .backend import array_module, fft_workers


def _unbroadcast(g, shape: tuple):
    """Sum ``g`` over the axes that broadcasting added or stretched to reach its shape."""
    if tuple(g.shape) == tuple(shape):
        return g
    nlead = g.ndim - len(shape)
    if nlead > 0:
        g = g.sum(axis=tuple(range(nlead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _shape(x) -> tuple:
    return tuple(np.shape(x)) if not hasattr(x, "shape") else tuple(x.shape)


def _conj(x):
    """Complex conjugate keeping ``x``'s kind: a Python scalar stays a Python scalar. (NumPy >= 2
    lets a NumPy scalar set the result's precision: ``np.conj(1j)`` is a complex128 that would
    turn a single-precision cotangent into double precision.)"""
    if isinstance(x, (bool, int, float, complex)):
        return x.conjugate()
    return np.conj(x) if isinstance(x, np.generic) else (x.conj() if np.iscomplexobj(x) else x)


# ---- elementwise arithmetic -------------------------------------------------------------------

@primitive
def add(a, b):
    ad, bd = data(a), data(b)
    sa, sb = _shape(ad), _shape(bd)
    return record(ad + bd, (a, b), lambda g: (_unbroadcast(g, sa) if is_traced(a) else None,
                                              _unbroadcast(g, sb) if is_traced(b) else None), "add")


@primitive
def sub(a, b):
    ad, bd = data(a), data(b)
    sa, sb = _shape(ad), _shape(bd)
    return record(ad - bd, (a, b), lambda g: (_unbroadcast(g, sa) if is_traced(a) else None,
                                              _unbroadcast(-g, sb) if is_traced(b) else None), "sub")


@primitive
def mul(a, b):
    """Elementwise product; also the multiplication by a constant kernel array (``b`` untraced)."""
    ad, bd = data(a), data(b)
    sa, sb = _shape(ad), _shape(bd)

    def vjp(g):
        ga = _unbroadcast(_mul_conj(g, bd), sa) if is_traced(a) else None
        gb = _unbroadcast(_mul_conj(g, ad), sb) if is_traced(b) else None
        return ga, gb

    return record(ad * bd, (a, b), vjp, "mul")


def _mul_conj(g, x):
    """``g * conj(x)``, allocating one array instead of two when ``x`` is a full-size complex array
    (``conj(x)`` is a fresh array we may multiply into)."""
    if np.iscomplexobj(x) and hasattr(x, "shape") and tuple(x.shape) == tuple(np.broadcast_shapes(
            _shape(g), tuple(x.shape))) and np.result_type(getattr(g, "dtype", g), x.dtype) == x.dtype:
        out = x.conj()
        out *= g
        return out
    return g * _conj(x)


@primitive
def div(a, b):
    ad, bd = data(a), data(b)
    out = ad / bd
    sa, sb = _shape(ad), _shape(bd)

    def vjp(g):
        ga = _unbroadcast(g / _conj(bd), sa) if is_traced(a) else None
        gb = _unbroadcast(-g * _conj(out / bd), sb) if is_traced(b) else None
        return ga, gb

    return record(out, (a, b), vjp, "div")


@primitive
def neg(a):
    return record(-data(a), (a,), lambda g: (-g,), "neg")


@primitive
def exp(a):
    out = array_module(data(a)).exp(data(a))
    return record(out, (a,), lambda g: (g * _conj(out),), "exp")


@primitive
def log(a):
    ad = data(a)
    return record(array_module(ad).log(ad), (a,), lambda g: (g / _conj(ad),), "log")


@primitive
def sqrt(a):
    ad = data(a)
    out = array_module(ad).sqrt(ad)
    return record(out, (a,), lambda g: (g / (2 * _conj(out)),), "sqrt")


@primitive
def abs(a):  # noqa: A001 - NumPy name on purpose
    """``|a|``; the gradient at 0 is taken as 0."""
    ad = data(a)
    xp = array_module(ad)
    out = xp.abs(ad)

    def vjp(g):
        if np.iscomplexobj(ad):
            safe = xp.where(out > 0, out, 1)
            return (g * ad / safe,)
        return (g * xp.sign(ad),)

    return record(out, (a,), vjp, "abs")


@primitive
def abs2(a):
    """``|a|^2`` (real), without the square root."""
    ad = data(a)
    out = ad.real ** 2 + ad.imag ** 2 if np.iscomplexobj(ad) else ad * ad
    return record(out, (a,), lambda g: (2 * g * ad,), "abs2")


@primitive
def real(a):
    ad = data(a)
    return record(ad.real, (a,), lambda g: (g,), "real")


@primitive
def imag(a):
    ad = data(a)
    return record(ad.imag, (a,), lambda g: (1j * g if np.iscomplexobj(ad) else None,), "imag")


@primitive
def conj(a):
    return record(_conj(data(a)), (a,), lambda g: (_conj(g),), "conj")


@primitive
def power(a, p: float):
    """``a ** p`` for a real constant exponent."""
    ad = data(a)
    out = ad ** p
    return record(out, (a,), lambda g: (g * _conj(p * ad ** (p - 1)),), "power")


# ---- reductions and shape ---------------------------------------------------------------------

@primitive
def sum(a, axis=None):  # noqa: A001
    ad = data(a)
    shape = ad.shape
    xp = array_module(ad)

    def vjp(g):
        if axis is not None:
            g = xp.expand_dims(g, axis)
        return (xp.broadcast_to(g, shape),)

    return record(ad.sum(axis=axis), (a,), vjp, "sum")


@primitive
def mean(a, axis=None):
    ad = data(a)
    n = ad.size if axis is None else int(np.prod([ad.shape[i] for i in np.atleast_1d(axis)]))
    return mul(sum(a, axis=axis), 1.0 / n)


@primitive
def reshape(a, shape):
    ad = data(a)
    old = ad.shape
    return record(ad.reshape(shape), (a,), lambda g: (g.reshape(old),), "reshape")


@primitive
def transpose(a, axes: Sequence[int]):
    ad = data(a)
    inv = tuple(np.argsort(axes))
    return record(ad.transpose(axes), (a,), lambda g: (g.transpose(inv),), "transpose")


@primitive
def getitem(a, index):
    """Slicing and (fancy) indexing; the adjoint scatters (adds) back into zeros."""
    ad = data(a)
    xp = array_module(ad)
    index = tuple(data(i) for i in index) if isinstance(index, tuple) else data(index)

    fancy = _has_fancy(index)

    def vjp(g):
        if not fancy:
            return (IndexedGrad(index, g, ad.shape),)
        out = xp.zeros(ad.shape, dtype=g.dtype if np.iscomplexobj(g) else ad.dtype)
        _scatter_add(xp, out, index, g)
        return (out,)

    return record(ad[index], (a,), vjp, "getitem")


def _has_fancy(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "shape") and getattr(i, "ndim", 0) > 0 or isinstance(i, list) for i in items)


def _scatter_add(xp, out, index, g):
    if xp is np:
        np.add.at(out, index, g)
    else:  # pragma: no cover - GPU
        import cupyx  # noqa: PLC0415 - optional dependency (the gpu extra)

        cupyx.scatter_add(out, index, g)


@primitive
def stack(arrays: Sequence, axis: int = 0):
    raw = [data(x) for x in arrays]
    xp = array_module(raw[0])
    n = len(raw)
    # one array (e.g. a single view angle): a view with a new axis, no copy; primitives never write
    # into their inputs or outputs, so sharing memory is safe
    out = xp.expand_dims(raw[0], axis) if n == 1 else xp.stack(raw, axis=axis)
    ax = axis % out.ndim

    def vjp(g):  # basic indexing: views of the cotangent, not copies
        return tuple(g[(slice(None),) * ax + (i,)] for i in range(n))

    return record(out, tuple(arrays), vjp, "stack")


@primitive
def concatenate(arrays: Sequence, axis: int = 0):
    raw = [data(x) for x in arrays]
    xp = array_module(raw[0])
    out = xp.concatenate(raw, axis=axis)
    bounds = np.cumsum([r.shape[axis] for r in raw])[:-1]

    def vjp(g):
        return tuple(xp.split(g, bounds, axis=axis))

    return record(out, tuple(arrays), vjp, "concatenate")


@primitive
def pad(a, pad_width: Sequence[tuple[int, int]], value: complex = 0):
    """Constant padding; ``pad_width`` lists (before, after) per axis, non-negative."""
    ad = data(a)
    xp = array_module(ad)
    out = xp.pad(ad, pad_width, mode="constant", constant_values=value)
    region = tuple(slice(b, b + n) for (b, _), n in zip(pad_width, ad.shape))
    return record(out, (a,), lambda g: (g[region],), "pad")


@primitive
def crop(a, region: Sequence[tuple[int, int]]):
    """Keep ``[start, stop)`` per axis (a contiguous slice); the adjoint zero-pads back."""
    ad = data(a)
    sl = tuple(slice(s, e) for s, e in region)
    return getitem(a, sl) if is_traced(a) else ad[sl]


# ---- FFTs ---------------------------------------------------------------------------------------

def _fft_pair(x):
    """(fft2, ifft2) for the array's backend, unitary over the last two axes."""
    if array_module(x) is np:
        import scipy.fft as sfft  # noqa: PLC0415 - loaded with the backend that uses it

        return (lambda a: sfft.fft2(a, norm="ortho", workers=fft_workers(a.size)),
                lambda a: sfft.ifft2(a, norm="ortho", workers=fft_workers(a.size)))
    import cupy.fft as cfft  # noqa: PLC0415  # pragma: no cover - GPU

    return (lambda a: cfft.fft2(a, norm="ortho"), lambda a: cfft.ifft2(a, norm="ortho"))


@primitive
def fft2(a):
    """Unitary 2D FFT over the last two axes; adjoint = ifft2."""
    f, fi = _fft_pair(data(a))
    return record(f(data(a)), (a,), lambda g: (fi(g),), "fft2")


@primitive
def ifft2(a):
    """Unitary inverse 2D FFT over the last two axes; adjoint = fft2."""
    f, fi = _fft_pair(data(a))
    return record(fi(data(a)), (a,), lambda g: (f(g),), "ifft2")


@primitive
def fftshift(a, axes=(-2, -1)):
    xp = array_module(data(a))
    return record(xp.fft.fftshift(data(a), axes=axes), (a,),
                  lambda g: (xp.fft.ifftshift(g, axes=axes),), "fftshift")


@primitive
def ifftshift(a, axes=(-2, -1)):
    xp = array_module(data(a))
    return record(xp.fft.ifftshift(data(a), axes=axes), (a,),
                  lambda g: (xp.fft.fftshift(g, axes=axes),), "ifftshift")


# ---- constraints --------------------------------------------------------------------------------

@primitive
def where(cond, a, b):
    """``a`` where ``cond`` (a constant boolean array) holds, else ``b``."""
    cd, ad, bd = data(cond), data(a), data(b)
    xp = array_module(cd)
    out = xp.where(cd, ad, bd)
    sa, sb = _shape(ad), _shape(bd)

    def vjp(g):
        ga = _unbroadcast(xp.where(cd, g, 0), sa) if is_traced(a) else None
        gb = _unbroadcast(xp.where(cd, 0, g), sb) if is_traced(b) else None
        return ga, gb

    return record(out, (a, b), vjp, "where")


@primitive
def clip(a, lo=None, hi=None):
    """Clamp a real array; the gradient passes only where the value was inside [lo, hi]."""
    ad = data(a)
    xp = array_module(ad)
    out = xp.clip(ad, lo, hi)
    inside = xp.ones(ad.shape, dtype=bool)
    if lo is not None:
        inside &= ad >= lo
    if hi is not None:
        inside &= ad <= hi
    return record(out, (a,), lambda g: (g * inside,), "clip")


@primitive
def maximum(a, value: float):
    """``max(a, value)`` against a constant; gradient flows where ``a`` wins."""
    return clip(a, lo=value)
