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
import threading

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


class _AngleCache:
    """Per-angle bilinear matrices, kept up to a byte budget (least recently used dropped first).

    Keyed by single angles rather than by minibatches: with one angle per minibatch (the default)
    a cache of minibatch tuples would rebuild every matrix every epoch once there are more angles
    than entries.
    """

    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.items: dict = {}
        self.nbytes = 0
        self.lock = threading.Lock()

    def get(self, nz: int, nx: int, angle: float, dtype) -> sp.csr_matrix:
        key = (nz, nx, angle, np.dtype(dtype).str)
        with self.lock:
            m = self.items.pop(key, None)
            if m is not None:
                self.items[key] = m  # most recently used last
                return m
        m = _bilinear_matrix(nz, nx, angle).astype(dtype)
        size = m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
        with self.lock:
            self.items[key] = m
            self.nbytes += size
            while self.nbytes > self.budget and len(self.items) > 1:
                old = self.items.pop(next(iter(self.items)))
                self.nbytes -= old.data.nbytes + old.indices.nbytes + old.indptr.nbytes
        return m


#: 256 MiB of matrices: every angle of a 256^3, 180-angle data set (~1 MiB per angle at 256^2).
_ANGLES = _AngleCache(256 * 2 ** 20)


@functools.lru_cache(maxsize=2)  # shuffled minibatches rarely repeat; all angles at once do
def _stacked(nz: int, nx: int, angles: tuple, dtype, angle_axis: int = 0) -> sp.csr_matrix:
    """The operator of a minibatch of angles: rows ``(angle, z', x')`` (``angle_axis=0``) or
    ``(z', angle, x')`` (``angle_axis=1``), columns ``(z, x)``."""
    mats = [_ANGLES.get(nz, nx, a, dtype) for a in angles]
    m = mats[0] if len(mats) == 1 else sp.vstack(mats, format="csr")
    if angle_axis == 1 and len(mats) > 1:
        perm = np.arange(len(mats) * nz * nx).reshape(len(mats), nz, nx).transpose(1, 0, 2).ravel()
        m = m[perm]
    return m


def _real_view(a):
    """A complex C-contiguous ``(rows, cols)`` array as real ``(rows, 2 cols)`` (re, im interleaved):
    the rotation matrix is real, so it acts on both parts at once at real-arithmetic cost."""
    if np.iscomplexobj(a):
        return a.view(a.real.dtype), True
    return a, False


class Rotation:
    """Rotate ``(nz, ny, nx)`` volumes to a set of angles: output ``(A, nz, ny, nx)``, or
    ``(nz, A, ny, nx)`` with ``angle_axis=1`` (slice-major, what multislice over a batch of angles
    consumes: one ``(A, ny, nx)`` block per slice).

    ``angles_rad``: the view angles (radians) of this operator (build one per minibatch of angles;
    matrices are cached). Works on real or complex volumes (a complex volume ``delta + i beta``
    rotates both parts in one pass). One AD primitive; the adjoint sums the back-rotated views.
    """

    def __init__(self, shape, angles_rad, backend: Backend, angle_axis: int = 0):
        self.shape = tuple(int(n) for n in shape)
        nz, _, nx = self.shape
        if angle_axis not in (0, 1):
            raise ValueError(f"angle_axis must be 0 or 1, got {angle_axis!r}")
        self.angle_axis = angle_axis
        self.angles = tuple(float(a) for a in np.atleast_1d(angles_rad))
        self.backend = backend
        mat = _stacked(nz, nx, self.angles, np.dtype(np.float64 if backend.precision == "double"
                                                      else np.float32), angle_axis)
        if backend.is_gpu:  # pragma: no cover - GPU
            import cupyx.scipy.sparse as csp  # noqa: PLC0415 - optional dependency (gpu extra)

            mat = csp.csr_matrix(mat)
            self.matrix_t = mat.T.tocsr()
        else:
            self.matrix_t = mat.T  # CSC: its product with a dense block is as fast, no transpose built
        self.matrix = mat

    def _rows(self):
        nz, ny, nx = self.shape
        a = len(self.angles)
        return (a, nz) if self.angle_axis == 0 else (nz, a)

    def _matmul(self, mat, block):
        """``mat @ block`` for a C-contiguous block, complex blocks as interleaved real columns."""
        xp = self.backend.xp
        block = xp.ascontiguousarray(block)
        if self.backend.is_gpu:  # pragma: no cover - GPU
            return mat @ block
        real, was_complex = _real_view(block)
        out = mat @ real
        return out.view(block.dtype) if was_complex else out

    def fwd(self, vol):
        nz, ny, nx = self.shape
        v2 = vol.transpose(0, 2, 1).reshape(nz * nx, ny)      # (z x) rows, y columns
        out = self._matmul(self.matrix, v2)                     # (rows, y)
        return out.reshape(self._rows() + (nx, ny)).swapaxes(-1, -2)

    def adj(self, g):
        nz, ny, nx = self.shape
        lead = self._rows()
        g2 = g.swapaxes(-1, -2).reshape(lead[0] * lead[1] * nx, ny)
        back = self._matmul(self.matrix_t, g2)                  # (z x, y)
        return back.reshape(nz, nx, ny).transpose(0, 2, 1)

    def __call__(self, vol):
        return record(self.fwd(data(vol)), (vol,), lambda g: (self.adj(g),), "rotate")
