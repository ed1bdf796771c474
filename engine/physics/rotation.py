"""Tomographic rotation of a volume about the vertical axis (y), as a sparse linear operator.

Volumes are ``(nz, ny, nx)`` with the beam along z. For a view angle ``t`` the rotated volume at
``(z', y, x')`` samples the original at (Adorym's convention, centres ``c = (n - 1) / 2``)::

    x = cx + cos(t) (x' - cx) - sin(t) (z' - cz)
    z = cz + sin(t) (x' - cx) + cos(t) (z' - cz)

with bilinear interpolation in (z, x) and coordinates clamped to the grid edges. Because y is
untouched, one ``(nz*nx) x (nz*nx)`` sparse matrix with four entries per row serves every y row;
the adjoint is its transpose. Matrices are built once per (shape, angles) and cached.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from ..autodiff import data, record
from ..backend import Backend


def _bilinear_matrix(nz: int, nx: int, angle: float) -> sp.csr_matrix:
    cz, cx = (nz - 1) / 2.0, (nx - 1) / 2.0
    zp, xp_ = np.meshgrid(np.arange(nz, dtype=float), np.arange(nx, dtype=float), indexing="ij")
    c, s = np.cos(angle), np.sin(angle)
    x = np.clip(cx + c * (xp_ - cx) - s * (zp - cz), 0, nx - 1)
    z = np.clip(cz + s * (xp_ - cx) + c * (zp - cz), 0, nz - 1)
    z0 = np.minimum(np.floor(z).astype(np.int64), nz - 2) if nz > 1 else np.zeros_like(z, np.int64)
    x0 = np.minimum(np.floor(x).astype(np.int64), nx - 2) if nx > 1 else np.zeros_like(x, np.int64)
    wz, wx = z - z0, x - x0
    rows = np.arange(nz * nx)
    cols, vals = [], []
    for dz_, dx_, w in ((0, 0, (1 - wz) * (1 - wx)), (0, 1, (1 - wz) * wx),
                        (1, 0, wz * (1 - wx)), (1, 1, wz * wx)):
        zz = np.minimum(z0 + dz_, nz - 1)
        xx = np.minimum(x0 + dx_, nx - 1)
        cols.append((zz * nx + xx).ravel())
        vals.append(w.ravel())
    r = np.concatenate([rows] * 4)
    return sp.csr_matrix((np.concatenate(vals), (r, np.concatenate(cols))), shape=(nz * nx, nz * nx))


@functools.lru_cache(maxsize=16)
def _stacked(nz: int, nx: int, angles: tuple, dtype) -> sp.csr_matrix:
    return sp.vstack([_bilinear_matrix(nz, nx, a) for a in angles], format="csr").astype(dtype)


class Rotation:
    """Rotate ``(nz, ny, nx)`` volumes to a set of angles: output ``(A, nz, ny, nx)``.

    ``angles_rad``: the view angles (radians) of this operator (build one per minibatch of angles;
    matrices are cached). Works on real or complex volumes (a complex volume ``delta + i beta``
    rotates both parts in one pass). One AD primitive; the adjoint sums the back-rotated views.
    """

    def __init__(self, shape, angles_rad, backend: Backend):
        self.shape = tuple(int(n) for n in shape)
        nz, _, nx = self.shape
        self.angles = tuple(float(a) for a in np.atleast_1d(angles_rad))
        self.backend = backend
        mat = _stacked(nz, nx, self.angles, np.dtype(np.float64 if backend.precision == "double"
                                                      else np.float32))
        if backend.is_gpu:  # pragma: no cover - GPU
            import cupyx.scipy.sparse as csp  # noqa: PLC0415

            mat = csp.csr_matrix(mat)
        self.matrix = mat
        self.matrix_t = mat.T.tocsr()

    def fwd(self, vol):
        nz, ny, nx = self.shape
        a = len(self.angles)
        v2 = vol.transpose(0, 2, 1).reshape(nz * nx, ny)      # (z x) rows, y columns
        out = self.matrix @ v2                                  # (A z x, y)
        return out.reshape(a, nz, nx, ny).transpose(0, 1, 3, 2)

    def adj(self, g):
        nz, ny, nx = self.shape
        a = len(self.angles)
        g2 = g.transpose(0, 1, 3, 2).reshape(a * nz * nx, ny)
        back = self.matrix_t @ g2                              # (z x, y)
        return back.reshape(nz, nx, ny).transpose(0, 2, 1)

    def __call__(self, vol):
        return record(self.fwd(data(vol)), (vol,), lambda g: (self.adj(g),), "rotate")
