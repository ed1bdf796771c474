"""Ptychography: object patches under the probe, and the sub-pixel probe shift.

A scan position is the ``(y, x)`` of the top-left corner of the probe window in object pixels. It is
split into an integer window corner (``round``) and a fractional remainder in ``[-0.5, 0.5]``: the
window is cut from the object at the integer corner (:class:`PatchExtractor`), the probe is moved by
the remainder with a Fourier shift (:func:`shift_probe`). Shifting the probe rather than the object
costs one batched FFT pair per minibatch however many slices the object has, and gives the gradient
with respect to the positions.
"""

from __future__ import annotations

import numpy as np

from ..autodiff import data, is_traced, primitive, record
from ..backend import Backend, to_host

#: NumPy >= 1.25 runs ``ufunc.at`` on 1-D contiguous operands in a fast loop (~0.3 ms for 64 patches
#: of 72^2); older versions are ~50x slower there, so they sort the indices once per extractor and
#: use a segmented ``add.reduceat`` instead.
_FAST_UFUNC_AT = tuple(int(v) for v in np.__version__.split(".")[:2]) >= (1, 25)


class PatchExtractor:
    """Gather ``(n, py, px)`` windows at integer corners from ``(..., ny, nx)`` arrays.

    ``corners``: int ``(n, 2)`` (y, x) top-left corners, each window fully inside the array
    (the models pad the object with vacuum so that this holds). Forward is a gather; the adjoint
    scatters (sums) patches back, vectorised as a 1-D ``np.add.at`` per leading slice (NumPy >=
    1.25; a segmented sum over the sorted pixel indices before) or an atomic scatter-add (CuPy) --
    no Python loop over positions, and no per-minibatch sort of the indices.
    """

    def __init__(self, corners, patch_shape, object_shape, backend: Backend):
        corners = np.asarray(to_host(corners), dtype=np.int64)
        py, px = (int(patch_shape[0]), int(patch_shape[1]))
        ny, nx = (int(object_shape[0]), int(object_shape[1]))
        if corners.ndim != 2 or corners.shape[1] != 2:
            raise ValueError(f"corners must have shape (n, 2), got {corners.shape}")
        if corners.size and (corners.min(axis=0) < 0).any() or \
                (corners[:, 0] + py > ny).any() or (corners[:, 1] + px > nx).any():
            raise ValueError(f"probe windows {py}x{px} at the given corners leave the object grid "
                             f"{ny}x{nx}; pad the object (the models do this) or fix the positions")
        self.patch_shape = (py, px)
        self.object_shape = (ny, nx)
        self.backend = backend
        self.n = len(corners)
        flat = ((corners[:, 0, None] + np.arange(py))[:, :, None] * nx
                + (corners[:, 1, None] + np.arange(px))[:, None, :])  # (n, py, px)
        self.flat_host = flat
        self.flat = backend.asarray(flat)
        self._segments = None  # sorted-segment plan, built on first use (old NumPy only)

    def fwd(self, obj):
        """``(..., ny, nx)`` -> ``(..., n, py, px)``."""
        lead = obj.shape[:-2]
        flat_obj = obj.reshape(lead + (-1,))
        return self.backend.xp.take(flat_obj, self.flat, axis=-1)  # ~2x faster than fancy indexing

    def adj(self, patches):
        """``(..., n, py, px)`` -> ``(..., ny, nx)``: sum of the patches at their windows."""
        xp = self.backend.xp
        lead = patches.shape[:-3]
        ny, nx = self.object_shape
        g = patches.reshape(lead + (-1,))
        out = xp.zeros(lead + (ny * nx,), dtype=patches.dtype)
        if self.backend.name == "numpy":
            if _FAST_UFUNC_AT:
                # 1-D ufunc.at per leading slice (not per position): no sort of the indices.
                # .view(): scipy.fft hands out non-canonical dtype descriptors, and NumPy's
                # ufunc.at takes its fast path only for the canonical one (~30x difference)
                dt = np.dtype(patches.dtype.char)
                o2, g2, idx = out.reshape(-1, ny * nx).view(dt), g.reshape(-1, g.shape[-1]).view(dt), \
                    self.flat_host.reshape(-1)
                for row in range(o2.shape[0]):
                    np.add.at(o2[row], idx, g2[row])
            else:
                order, starts, targets = self._sorted_segments()
                out[..., targets] = np.add.reduceat(g[..., order], starts, axis=-1)
        else:  # pragma: no cover - GPU: atomic adds, one call per leading slice (not per position)
            import cupyx  # noqa: PLC0415 - optional dependency (the gpu extra)

            o2, g2, idx = out.reshape(-1, ny * nx), g.reshape(-1, g.shape[-1]), self.flat.ravel()
            for row in range(o2.shape[0]):
                cupyx.scatter_add(o2[row], idx, g2[row])
        return out.reshape(lead + (ny, nx))

    def _sorted_segments(self):
        if self._segments is None:
            flat = self.flat_host.ravel()
            order = np.argsort(flat, kind="stable")
            sorted_idx = flat[order]
            starts = np.flatnonzero(np.r_[True, sorted_idx[1:] != sorted_idx[:-1]])
            self._segments = (order, starts, sorted_idx[starts])
        return self._segments

    def __call__(self, obj):
        return record(self.fwd(data(obj)), (obj,), lambda g: (self.adj(g),), "extract_patches")


def _ramps(shape, backend: Backend):
    """Frequency grids ``fy (py, 1)``, ``fx (1, px)`` in cycles per pixel (unshifted)."""
    fy = backend.xp.asarray(np.fft.fftfreq(shape[0])[:, None], dtype=backend.real_dtype)
    fx = backend.xp.asarray(np.fft.fftfreq(shape[1])[None, :], dtype=backend.real_dtype)
    return fy, fx


@primitive
def shift_probe(probe, shifts, backend: Backend):
    """Probe moved by sub-pixel ``shifts``: ``(m, py, px), (n, 2) -> (n, m, py, px)``.

    ``out[j] = ifft2(fft2(probe) * exp(-2 pi i (fy sy_j + fx sx_j)))`` -- a move by ``+s`` pixels.
    One AD primitive; gradients flow to the probe and to the shifts (pixels).
    """
    pd, sd = data(probe), data(shifts)
    xp = backend.xp
    fy, fx = _ramps(pd.shape[-2:], backend)
    sy = sd[:, 0, None, None].astype(backend.real_dtype)
    sx = sd[:, 1, None, None].astype(backend.real_dtype)
    # the ramp is separable: two small complex exponentials and one product, not a full-size exp
    ramp = (xp.exp((-2j * np.pi) * (fy * sy)) * xp.exp((-2j * np.pi) * (fx * sx)))[:, None]
    spec = backend.fft2(pd)[None]  # (1, m, py, px)
    shifted_spec = spec * ramp     # (n, m, py, px)
    out = backend.ifft2(shifted_spec)

    def vjp(g):
        gspec = backend.fft2(g)  # (n, m, py, px)
        g_probe = None
        if is_traced(probe):
            g_probe = backend.ifft2((gspec * ramp.conj()).sum(axis=0), overwrite_x=True)
        g_shift = None
        if is_traced(shifts):
            # d out / d sy = ifft2(shifted_spec * (-2 pi i fy)); dL/dsy = Re<that, g> (Parseval)
            # = -2 pi sum fy Im(conj(shifted_spec) gspec), reduced along x (and modes) first
            im = (shifted_spec.conj() * gspec).imag
            cy = (-2 * np.pi) * (im.sum(axis=(1, 3)) @ fy[:, 0])
            cx = (-2 * np.pi) * (im.sum(axis=(1, 2)) @ fx[0])
            g_shift = xp.stack([cy, cx], axis=1).astype(sd.dtype)
        return g_probe, g_shift

    return record(out, (probe, shifts), vjp, "shift_probe")
