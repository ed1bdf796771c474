"""Far-field ptychography: 2D, multislice, and ptychotomography (multislice through a rotated volume).

For a view angle and a batch of scan positions::

    T      = transmissions of the (rotated) object, padded with vacuum          (nz, Ny, Nx)
    O_j    = windows of T at the integer corners of the positions               (nz, S, py, px)
    psi_0  = probe shifted by the sub-pixel remainders                          (S, m, py, px)
    psi    = multislice(psi_0, O_j, propagate by the slice spacing)
    I      = sum over modes |fft2_ortho(psi)|^2, unshifted                      (S, py, px)
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..autodiff import data, is_traced
from ..backend import Backend, to_host
from ..geometry import is_tomography
from ..physics.farfield import FarField
from ..physics.multislice import multislice
from ..physics.optics import transmission
from ..physics.patches import PatchExtractor, shift_probe
from ..physics.propagation import Propagator
from .base import intensity, object_words
from .common import ObjectView, Optics


class PtychoModel:
    """Far-field ptychography as a :class:`~.base.ForwardModel`: fields ``(A, S, m, py, px)``.

    Parameters
    ----------
    object_shape: ``(nz, ny, nx)`` voxels of the reconstructed object (unpadded).
    probe_shape: ``(py, px)`` pixels (= detector frame shape).
    optics: energy, pixel and slice spacing, propagation method.
    angles_rad: all view angles of the data set, ``(n_angles,)``; one angle of 0 means no rotation.
    positions_px: initial scan positions ``(n_spots, 2)``, (y, x) of the window's top-left corner.
    margin_px: extra vacuum around the scanned area, room for position refinement.
    checkpoint_slices: checkpoint the multislice every this many slices (0: store everything).
    """

    name = "ptycho"
    splits_spots = True       # scan positions are independent views
    unshifted_frames = True   # far field: zero frequency at [0, 0]
    whole_object_images = False

    def __init__(self, object_shape, probe_shape, optics: Optics, backend: Backend, *,
                 angles_rad=(0.0,), positions_px, param: str = "delta_beta", margin_px: int = 4,
                 checkpoint_slices: int = 0):
        self.object_shape = tuple(int(n) for n in object_shape)
        self.probe_shape = (int(probe_shape[0]), int(probe_shape[1]))
        self.frame_shape = self.probe_shape
        self.optics = optics
        self.backend = backend
        self.angles = np.asarray(angles_rad, dtype=float).ravel()
        self.view = ObjectView(self.object_shape, optics, backend, param,
                               tomo=is_tomography(self.angles))
        self.unknowns = tuple(self.view.names) + ("probe", "positions")
        pos = np.asarray(positions_px, dtype=float)
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise ValueError(f"positions must have shape (n_spots, 2), got {pos.shape}")
        py, px = self.probe_shape
        _, ny, nx = self.object_shape
        lo = np.floor(pos.min(axis=0)).astype(int) - margin_px
        hi = np.ceil(pos.max(axis=0)).astype(int) + np.array([py, px]) + margin_px
        self.pad = ((0, 0), (max(0, -lo[0]), max(0, hi[0] - ny)), (max(0, -lo[1]), max(0, hi[1] - nx)))
        self.offset = np.array([self.pad[1][0], self.pad[2][0]])
        self.padded_shape = (ny + sum(self.pad[1]), nx + sum(self.pad[2]))
        self.step = Propagator(self.probe_shape, optics.pixel_size_m, optics.slice_thickness_m,
                               optics.wavelength_m, backend, optics.method)
        self.farfield = FarField(backend, centred=False)
        self.checkpoint_slices = int(checkpoint_slices)
        self._extractors: dict[bytes, PatchExtractor] = {}

    def position_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``, each ``(2,)`` (y, x) px: the positions whose probe windows stay on the
        padded object grid (farther, a window cannot be cut). Refinement is held inside."""
        lo = -self.offset.astype(float)
        hi = np.array(self.padded_shape, float) - np.array(self.probe_shape, float) - self.offset
        return lo, hi

    def describe(self) -> str:
        return f"far-field ptychography, {object_words(self.view)}"

    def fields(self, params: dict, angle_idx, spot_idx):
        """Far-field complex fields ``(A, S, m, py, px)``, unshifted."""
        return ops.stack(self._fields_per_angle(params, angle_idx, spot_idx), axis=0)

    def _fields_per_angle(self, params: dict, angle_idx, spot_idx) -> list:
        """Far-field complex fields per angle: list of ``(S, m, py, px)``."""
        positions = params["positions"]
        spot_idx = np.asarray(spot_idx)
        pos = ops.getitem(positions, spot_idx)
        pos_h = to_host(data(pos)).astype(float)
        corners = np.rint(pos_h).astype(np.int64)
        # the Fourier shift is skipped (two batched FFTs saved) for integer, fixed positions
        frac_needed = is_traced(positions) or not np.array_equal(pos_h, corners)
        probe = params["probe"]
        frac = None
        if frac_needed:
            frac = ops.sub(pos, self.backend.asarray(corners, dtype=data(pos).dtype))
            psi0 = shift_probe(probe, frac, self.backend)          # (S, m, py, px)
        else:
            psi0 = ops.reshape(probe, (1,) + tuple(data(probe).shape))
        extractor = self._extractor(corners + self.offset)
        out = []
        angles = self.angles[np.asarray(angle_idx)]
        nz = self.object_shape[0]
        field_shape = (len(spot_idx), 1) + self.probe_shape
        for window in self._slice_windows(params, angles, extractor):
            if nz == 1:
                psi = ops.mul(psi0, ops.reshape(window(None), field_shape))
            else:  # windows cut slice by slice: each slice's adjoint scatters straight into the
                # (nz, Ny, Nx) gradient, no (nz, S, py, px) cotangent buffer in between
                psi = multislice(psi0, lambda s, w=window: ops.reshape(w(s), field_shape),
                                 nz, self.step, block=self.checkpoint_slices)
            out.append(self._to_detector(psi, frac))
        return out

    def _to_detector(self, psi, frac):
        """Exit waves -> detector fields. ``frac`` (S, 2): the sub-pixel remainders the probe was
        moved by (None: none); the far-field intensity does not depend on them."""
        return self.farfield(psi)

    def _slice_windows(self, params: dict, angles, extractor) -> list:
        """Per view, ``window(s)``: the transmission of slice ``s`` (all slices for ``None``) under
        the probe windows of the minibatch.

        For a delta/beta object without rotation, when the windows hold fewer pixels than the
        object (minibatches of a large object), delta and beta are cut first and the transmission
        (exp, cos, sin and its gradient) is computed on the windows only: the per-step cost then
        grows with the minibatch, not with the object area. Otherwise the transmission of the
        whole (rotated, padded) object is computed once and cut.
        """
        ny, nx = self.padded_shape
        n_window = extractor.n * self.probe_shape[0] * self.probe_shape[1]
        if self.view.param == "delta_beta" and not self.view.tomo and n_window < ny * nx:
            k, dz = self.optics.k, self.optics.slice_thickness_m
            d = ops.pad(params["delta"], self.pad, value=0.0)  # vacuum: delta = beta = 0, T = 1
            b = ops.pad(params["beta"], self.pad, value=0.0)

            def window(s):
                ds, bs = (d, b) if s is None else (d[s], b[s])
                return transmission(extractor(ds), extractor(bs), k, dz)

            return [window] * len(angles)
        out = []
        for vol in self.view.volumes(params, angles):
            trans = ops.pad(self.view.transmissions(vol), self.pad, value=1.0)  # (nz, Ny, Nx)
            out.append(lambda s, t=trans: extractor(t if s is None else t[s]))
        return out

    def _extractor(self, corners) -> PatchExtractor:
        """Patch extractor for these window corners; the last few are kept, so full-batch epochs
        (the same spots every step) build the index arrays once."""
        key = corners.tobytes()
        cache = self._extractors
        ext = cache.pop(key, None)
        if ext is None:
            ext = PatchExtractor(corners, self.probe_shape, self.padded_shape, self.backend)
        cache[key] = ext  # most recently used last
        nbytes = 0
        for k in reversed(list(cache)):  # keep recent ones up to ~64 MB of index arrays
            nbytes += cache[k].flat_host.nbytes
            if nbytes > 64 * 2 ** 20 and k != key:
                cache.pop(k, None)  # tolerant: snapshot() may predict from another thread
        return ext

    def predict(self, params: dict, angle_idx, spot_idx):
        """Intensities ``(A, S, py, px)``, unshifted, summed over probe modes."""
        return intensity(self.fields(params, angle_idx, spot_idx))
