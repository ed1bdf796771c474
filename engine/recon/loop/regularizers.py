"""Differentiable penalties on the object (weights are applied by the caller).

Both are means over elements, so a weight does not depend on the volume size, and both are single
primitives with a hand-written VJP (one node, no chain of temporaries on large volumes). They take
real (``delta``, ``beta``) or complex (transmission) arrays, Tensor or plain.

* :func:`l1` -- ``mean |x|``; gradient ``sign(x)`` (``x/|x|`` for complex), 0 at 0.
* :func:`total_variation_3d` -- isotropic smoothed TV over the last three axes ``(z, y, x)``::

      TV(x) = mean_i ( sqrt(|Dz x|_i^2 + |Dy x|_i^2 + |Dx x|_i^2 + eps^2) - eps )

  with forward differences ``(Da x)_i = x_{i+1} - x_i``. Boundary ``"neumann"`` (default): the
  difference across the last plane is 0 (the volume is continued by its edge values, so edges are
  not penalised, right for a sample inside a field of view); ``"periodic"``: the last plane is
  compared with the first (matches the FFT-periodic propagation grid). ``eps`` is in the units of
  ``x``; subtracting it makes a constant volume cost exactly 0.
"""

from __future__ import annotations

from ...autodiff import data, primitive, record
from ...backend import array_module

__all__ = ["l1", "total_variation_3d"]


@primitive
def l1(x, reduction: str = "mean"):
    """``mean |x|`` (or ``sum`` with ``reduction="sum"``) as a real scalar."""
    xd = data(x)
    xp = array_module(xd)
    mag = xp.abs(xd)
    norm = _norm(xd.size, reduction)
    out = xp.asarray(mag.sum() * norm, dtype=mag.dtype)

    def vjp(g):
        if xp.iscomplexobj(xd):
            return ((g * norm) * xd / xp.where(mag > 0, mag, 1),)
        return ((g * norm) * xp.sign(xd),)

    return record(out, (x,), vjp, "l1")


def _norm(size: int, reduction: str) -> float:
    if reduction == "mean":
        return 1.0 / size
    if reduction == "sum":
        return 1.0
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _diff(xp, a, axis: int, periodic: bool):
    """Forward difference along ``axis``; the last entry is the wrap-around or 0 (Neumann)."""
    if periodic:
        return xp.roll(a, -1, axis=axis) - a
    d = xp.zeros_like(a)
    n = a.shape[axis]
    hi = [slice(None)] * a.ndim
    lo = [slice(None)] * a.ndim
    hi[axis], lo[axis] = slice(1, n), slice(0, n - 1)
    d[tuple(lo)] = a[tuple(hi)] - a[tuple(lo)]
    return d


def _diff_adjoint(xp, q, axis: int, periodic: bool):
    """``D^T q`` for :func:`_diff`: ``q_{i-1} - q_i`` (with ``q_{-1} = 0``, ``q_{n-1}`` unused for
    Neumann since that difference is identically 0)."""
    if periodic:
        return xp.roll(q, 1, axis=axis) - q
    n = q.shape[axis]
    out = xp.zeros_like(q)
    head = [slice(None)] * q.ndim
    tail = [slice(None)] * q.ndim
    head[axis], tail[axis] = slice(0, n - 1), slice(1, n)
    out[tuple(head)] -= q[tuple(head)]
    out[tuple(tail)] += q[tuple(head)]
    return out


@primitive
def total_variation_3d(x, eps: float = 1e-9, boundary: str = "neumann", reduction: str = "mean"):
    """Isotropic smoothed total variation over the last three axes of ``x`` (``ndim >= 3``;
    leading axes, e.g. a stack of volumes, are summed/averaged over too). See the module docstring
    for the formula and the boundary conditions. Returns a real scalar."""
    xd = data(x)
    if xd.ndim < 3:
        raise ValueError(f"total_variation_3d needs a volume (..., nz, ny, nx), got shape {xd.shape}")
    if boundary not in ("neumann", "periodic"):
        raise ValueError(f"boundary must be 'neumann' or 'periodic', got {boundary!r}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (it keeps the gradient finite), got {eps}")
    xp = array_module(xd)
    periodic = boundary == "periodic"
    axes = (-3, -2, -1)
    diffs = [_diff(xp, xd, ax, periodic) for ax in axes]
    mag2 = sum((d.real ** 2 + d.imag ** 2) if xp.iscomplexobj(d) else d * d for d in diffs)
    phi = xp.sqrt(mag2 + eps * eps)
    norm = _norm(xd.size, reduction)
    out = xp.asarray((phi - eps).sum() * norm, dtype=phi.dtype)
    del mag2

    def vjp(g):
        # d phi / d(Da x) = Da x / phi (complex convention included); then the adjoint of each Da
        gx = None
        for d, ax in zip(diffs, axes):
            term = _diff_adjoint(xp, d / phi, ax, periodic)
            gx = term if gx is None else gx + term
        return ((g * norm) * gx,)

    return record(out, (x,), vjp, "total_variation_3d")
