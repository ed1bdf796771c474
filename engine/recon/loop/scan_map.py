"""The scan as a whole: its affine map, and smooth displacements taken out with the object.

Position correction (:mod:`.positions`) places frames one by one; what one frame cannot show is
how the scan moves as a whole, because moving a group of positions together with the object
under them changes nothing in the data (a local translation). This module holds the pieces for
that larger scale:

* :class:`Affine` / :func:`fit_affine`: the displacement of the scan as an affine function of the
  recorded positions (offset, scale, rotation, shear: a miscalibrated or rotated stage);
* :func:`smooth_field`: the displacements averaged over a Gaussian neighbourhood of the object
  grid (a *domain*: a patch of the object that grew around a group of positions off by the same
  amount, consistent inside and in conflict only at its edges);
* :func:`warp`: the object moved along such a field, so that the positions can be moved back
  without changing what any frame sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

__all__ = ["Affine", "fit_affine", "settle_affine", "robust_spread", "smooth_field", "domains",
           "warp"]


@dataclass(frozen=True)
class Affine:
    """Displacement of the scan as an affine function of the recorded positions:
    ``p = r + matrix @ (r - centre) + offset`` (rows ``(y, x)``, pixels)."""

    matrix: np.ndarray
    offset: np.ndarray
    centre: np.ndarray

    @classmethod
    def identity(cls, recorded: np.ndarray) -> "Affine":
        return cls(np.zeros((2, 2)), np.zeros(2), recorded.mean(axis=0))

    def apply(self, recorded: np.ndarray) -> np.ndarray:
        """``(n, 2)`` recorded positions -> the positions the affine map predicts."""
        return recorded + self.linear(recorded) + self.offset

    def linear(self, recorded: np.ndarray) -> np.ndarray:
        """The displacements ``(n, 2)`` of the linear part alone (scale, rotation, shear)."""
        return (recorded - self.centre) @ self.matrix.T

    def words(self) -> str:
        """Offset, scale, rotation and shear (the polar decomposition of ``1 + matrix``: a
        rotation times a symmetric stretch) in words."""
        u, s, vt = np.linalg.svd(np.eye(2) + self.matrix)
        rot = u @ vt
        stretch = vt.T @ np.diag(s) @ vt
        angle = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
        return (f"offset ({self.offset[0]:+.2f}, {self.offset[1]:+.2f}) px, scale y "
                f"{100 * (stretch[0, 0] - 1):+.2f} % x {100 * (stretch[1, 1] - 1):+.2f} %, "
                f"rotation {angle:+.3f} deg, shear {100 * stretch[0, 1]:+.2f} %")


def fit_affine(recorded: np.ndarray, positions: np.ndarray, weights: np.ndarray) -> Affine:
    """Weighted least-squares affine map from ``recorded`` to ``positions`` (both ``(n, 2)``);
    the identity when fewer than 3 frames carry weight or they lie on a line."""
    w = np.sqrt(np.maximum(np.asarray(weights, float), 0))
    centre = recorded.mean(axis=0)
    x = np.c_[recorded - centre, np.ones(len(recorded))] * w[:, None]
    if np.count_nonzero(w) < 3 or np.linalg.matrix_rank(x) < 3:
        return Affine.identity(recorded)
    coef, *_ = np.linalg.lstsq(x, (positions - recorded) * w[:, None], rcond=None)
    return Affine(coef[:2].T.copy(), coef[2].copy(), centre)


def settle_affine(recorded: np.ndarray, positions: np.ndarray, weights: np.ndarray,
                  significant: float, floor_px: float) -> tuple[np.ndarray, Affine, bool]:
    """Fit the affine map of ``positions`` on ``recorded`` (weighted) and keep it when the rms of
    its linear part over the weighted frames exceeds ``significant`` times their spread around
    it (at least ``floor_px``); else take the linear part out of the positions: the data barely
    fix a scan's scale and rotation (the object scales and turns with them), and registration
    on a growing object shows spurious ones (frames at the scan's edges pulled inwards) that
    would run away if kept. Returns the positions, the fit and whether it was kept."""
    fitted = fit_affine(recorded, positions, weights)
    use = weights > 0
    linear = fitted.linear(recorded)
    spread = robust_spread((positions - fitted.apply(recorded))[use])
    size = float(np.sqrt((linear[use] ** 2).sum(axis=1).mean())) if use.any() else 0.0
    kept = bool(size > significant * max(spread, floor_px))
    return (positions if kept else positions - linear), fitted, kept


def robust_spread(d: np.ndarray) -> float:
    """Robust standard deviation (1.4826 x the median absolute deviation) of displacements
    ``(n, 2)``, averaged over the two axes; NaN for none."""
    if len(d) == 0:
        return math.nan
    dev = np.abs(d - np.median(d, axis=0))
    return float(1.4826 * np.median(dev, axis=0).mean())


def smooth_field(centres: np.ndarray, values: np.ndarray, weights: np.ndarray, shape,
                 sigma_px: float) -> np.ndarray:
    """Weighted Gaussian average ``(2, ny, nx)`` over the grid ``shape`` of per-frame vectors
    ``values`` ``(n, 2)`` placed at ``centres`` ``(n, 2)`` (pixels; nearest grid point): a
    normalised convolution, 0 where no frame is within a few ``sigma_px``."""
    ny, nx = (int(shape[0]), int(shape[1]))
    iy = np.clip(np.rint(centres[:, 0]).astype(int), 0, ny - 1)
    ix = np.clip(np.rint(centres[:, 1]).astype(int), 0, nx - 1)
    acc = np.zeros((3, ny, nx))
    for k, v in enumerate((weights, weights * values[:, 0], weights * values[:, 1])):
        np.add.at(acc[k], (iy, ix), v)
    acc = np.stack([gaussian_filter(a, sigma_px, mode="constant") for a in acc])
    floor = 1e-3 * max(float(acc[0].max()), 1e-300)
    return np.where(acc[0] > floor, acc[1:] / np.maximum(acc[0], floor), 0.0)


def domains(centres: np.ndarray, displacements: np.ndarray, weights: np.ndarray, shape,
            sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """The smooth part of per-frame ``displacements`` ``(n, 2)`` (:func:`smooth_field` over the
    grid ``shape`` from frames at ``centres``): the field ``(2, ny, nx)`` and its values at the
    frames ``(n, 2)``."""
    field = smooth_field(centres, displacements, weights, shape, sigma_px)
    iy = np.clip(np.rint(centres[:, 0]).astype(int), 0, int(shape[0]) - 1)
    ix = np.clip(np.rint(centres[:, 1]).astype(int), 0, int(shape[1]) - 1)
    return field, field[:, iy, ix].T


def warp(volume: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``volume`` ``(nz, ny, nx)`` (real or complex) resampled at ``r + field(r)`` slice by slice
    (cubic splines, edges extended): content seen at ``r + u`` is then seen at ``r``."""
    nz, ny, nx = volume.shape
    coords = np.mgrid[0:ny, 0:nx].astype(float) + field
    out = np.empty_like(volume)
    for z in range(nz):
        if np.iscomplexobj(volume):
            out[z] = (map_coordinates(volume[z].real, coords, order=3, mode="nearest")
                      + 1j * map_coordinates(volume[z].imag, coords, order=3, mode="nearest"))
        else:
            out[z] = map_coordinates(volume[z], coords, order=3, mode="nearest")
    return out
