"""Near-field ptychography: a structured probe scanned over the sample, Fresnel/angular-spectrum
propagation to a detector a short (effective) distance behind it; 2D, multislice and tomography.

For a view angle and a batch of scan positions::

    W      = frame window (fy, fx) grown by ``pad_px`` on every side              (wy, wx)
    O_j    = windows of the (rotated) object transmission at position_j - pad     (nz, S, wy, wx)
    psi_0  = probe (m, wy, wx) shifted by the sub-pixel remainders                (S, m, wy, wx)
    psi    = multislice(psi_0, O_j)
    I      = sum over modes |crop_pad(propagate(psi, z))|^2                       (S, fy, fx)

The padding keeps the periodic boundary of the FFT propagation out of the measured frame: light
from up to ``pad_px`` outside the frame reaches it (a real detector sees a wave that continues past
its edges). With a cone beam, every length is the effective one (Fresnel scaling theorem, see
docs/real-data.md): pixel = detector pixel / M, z = z2 / M.

Positions are the (y, x) top-left corners of the *frame* (not the padded window) in object pixels.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from .. import ops
from ..backend import Backend, get_backend
from ..physics.propagation import Propagator, propagate_and_shift
from .base import object_words
from .common import Optics
from .ptycho import PtychoModel


def default_pad_px(frame_shape, pixel_m: float, distance_m: float, wavelength_m: float) -> int:
    """Padding (px) that holds the light reaching the frame: a few Fresnel-zone widths
    ``sqrt(lambda z)`` plus the diffraction spread of one-pixel features ``lambda z / (2 p)``,
    at most a quarter of the frame; then grown until the padded window's sides have only small
    prime factors (the window's FFTs are most of an epoch's cost, and one with a large prime
    factor, e.g. 118 = 2 x 59, is several times slower: benchmarks/README.md)."""
    zone = np.sqrt(wavelength_m * distance_m) / pixel_m
    spread = wavelength_m * distance_m / (2 * pixel_m) / pixel_m
    pad = int(np.ceil(max(2 * zone, spread))) + 2
    pad = int(min(pad, max(frame_shape) // 4))
    while any(sfft.next_fast_len(int(n) + 2 * pad) != int(n) + 2 * pad for n in frame_shape):
        pad += 1
    return pad


class NearFieldPtychoModel(PtychoModel):
    """Near-field ptychography as a :class:`~.base.ForwardModel`: fields ``(A, S, m, fy, fx)``.

    object_shape: ``(nz, ny, nx)``; frame_shape: detector ``(fy, fx)``; distance_m: (effective)
    sample-detector distance; pad_px: window padding (above). The probe parameter is
    ``(m, fy + 2 pad, fx + 2 pad)``. Other arguments as :class:`PtychoModel`.

    Sub-pixel positions: the parent moves the probe by the remainder ``f`` over object windows cut
    at integer corners, which is the true wave moved by ``f``. In the far field that move is
    invisible; here the detector is fixed to the beam, so the detector field is moved back by
    ``-f`` (in the same Fourier multiplication as the propagation).
    """

    name = "nfptycho"
    unshifted_frames = False   # near-field images are images
    whole_object_images = False

    def __init__(self, object_shape, frame_shape, optics: Optics, backend: Backend, *,
                 distance_m: float, pad_px: int = 0, angles_rad=(0.0,), positions_px,
                 param: str = "delta_beta", margin_px: int = 4, checkpoint_slices: int = 0):
        self.pad_px = int(pad_px)  # (the parent's ``pad`` is the object's vacuum padding)
        frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        window = (frame_shape[0] + 2 * self.pad_px, frame_shape[1] + 2 * self.pad_px)
        pos = np.asarray(positions_px, dtype=float)
        super().__init__(object_shape, window, optics, backend, angles_rad=angles_rad,
                         positions_px=pos - self.pad_px, param=param, margin_px=margin_px,
                         checkpoint_slices=checkpoint_slices)
        self.frame_shape = frame_shape  # the parent set the (padded) probe window
        self.distance_m = float(distance_m)
        self.detector = Propagator(window, optics.pixel_size_m, self.distance_m, optics.wavelength_m,
                                   backend, optics.method)

    def _to_detector(self, psi, frac):
        out = self.detector(psi) if frac is None else \
            propagate_and_shift(psi, ops.mul(frac, -1.0), self.detector)
        if not self.pad_px:
            return out
        p, (fy, fx) = self.pad_px, self.frame_shape
        return ops.getitem(out, (Ellipsis, slice(p, p + fy), slice(p, p + fx)))

    def position_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = super().position_bounds()  # of the padded windows, which start pad_px earlier
        return lo + self.pad_px, hi + self.pad_px

    def describe(self) -> str:
        return (f"near-field ptychography at {self.distance_m * 1e3:.4g} mm, "
                f"{object_words(self.view)}")

    def _fields_per_angle(self, params: dict, angle_idx, spot_idx) -> list:
        """Detector fields per angle: list of ``(S, m, fy, fx)``."""
        if self.pad_px:  # positions are frame corners; the parent cuts padded windows
            params = {**params, "positions": ops.sub(params["positions"], float(self.pad_px))}
        return super()._fields_per_angle(params, angle_idx, spot_idx)


def probe_guess_from_frames(mean_frame, pad_px: int, optics: Optics, distance_m: float,
                            bad=None) -> np.ndarray:
    """Initial probe ``(wy, wx)`` complex128 from the data alone.

    The mean of many frames is about the probe's intensity at the detector (the sample's structure
    averages out over the scan). Its square root with a flat phase, extended into the padding by
    the edge values, is propagated back to the sample plane: the model then reproduces the mean
    frame from the first iteration. ``bad``: boolean ``(fy, fx)`` pixels to fill from the median.
    """
    m = np.asarray(mean_frame, dtype=np.float64).copy()
    if bad is not None and np.any(bad):
        m[bad] = np.median(m[~bad])
    amp = np.sqrt(np.maximum(m, 0))
    amp = np.pad(amp, pad_px, mode="edge")

    be = get_backend("numpy", "double")
    back = Propagator(amp.shape, optics.pixel_size_m, -float(distance_m), optics.wavelength_m, be,
                      optics.method)
    return np.asarray(back.fwd(amp.astype(np.complex128)))
