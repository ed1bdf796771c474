"""Filtered back-projection through the engine's own rotation operator (runs wherever the
rotation runs, NumPy or CuPy).

The forward projection of a volume ``v`` ``(nz, ny, nx)`` at angle ``t`` is the sum along the beam
of the rotated volume, ``p_t = sum_z (R_t v)[z]`` ``(ny, nx)`` (see :mod:`..physics.rotation`);
its adjoint spreads ``p_t`` evenly along z and rotates back (``R_t^T``). Filtered back-projection
ramp-filters each projection along x, back-projects, and -- instead of trusting the textbook
constant for the angular range at hand -- scales the result by least squares so that its
projections match the data.
"""

from __future__ import annotations

import numpy as np

from ..backend import Backend
from ..physics.rotation import Rotation

__all__ = ["project", "back_project", "filtered_back_projection"]

#: Angles processed together (bounds the (A, nz, ny, nx) temporary).
_CHUNK = 8


def project(vol, angles_rad, backend: Backend):
    """Projections ``(A, ny, nx)`` of ``vol`` ``(nz, ny, nx)`` along the beam at ``angles_rad``."""
    xp = backend.xp
    out = []
    for i in range(0, len(angles_rad), _CHUNK):
        rot = Rotation(vol.shape, angles_rad[i:i + _CHUNK], backend)
        out.append(rot.fwd(vol).sum(axis=1))
    return xp.concatenate(out, axis=0)


def back_project(proj, angles_rad, shape, backend: Backend):
    """Adjoint of :func:`project`: ``(A, ny, nx)`` -> ``(nz, ny, nx)``."""
    xp = backend.xp
    nz = shape[0]
    vol = xp.zeros(shape, dtype=proj.dtype)
    for i in range(0, len(angles_rad), _CHUNK):
        block = proj[i:i + _CHUNK]
        rot = Rotation(shape, angles_rad[i:i + _CHUNK], backend)
        spread = xp.ascontiguousarray(xp.broadcast_to(block[:, None], (block.shape[0], nz) + block.shape[1:]))
        vol += rot.adj(spread)
    return vol


def _ramp(proj, xp):
    """Ramp filter |u| along x, zero-padded to twice the width (no wrap-around)."""
    nx = proj.shape[-1]
    n = 2 * nx
    freq = xp.abs(xp.fft.fftfreq(n)).astype(proj.dtype)
    f = xp.fft.fft(proj, n=n, axis=-1) * freq
    return xp.fft.ifft(f, axis=-1).real[..., :nx].astype(proj.dtype)


def filtered_back_projection(proj, angles_rad, shape, backend: Backend):
    """Volume ``shape`` whose projections at ``angles_rad`` best match ``proj`` ``(A, ny, nx)``
    (ramp-filtered back-projection, then one least-squares scale)."""
    xp = backend.xp
    proj = xp.asarray(proj, dtype=backend.real_dtype)
    angles = np.asarray(angles_rad, float)
    vol = back_project(_ramp(proj, xp), angles, tuple(shape), backend)
    model = project(vol, angles, backend)
    den = float((model * model).sum())
    if den > 0:
        vol *= float((model * proj).sum()) / den
    return vol
