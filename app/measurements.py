"""Line profiles, region statistics and image comparisons, on images as the views draw them
(no Qt).

An image ``img`` of shape ``(ny, nx)`` covers the rectangle ``rect = (x0, y0, width, height)`` of
its plot's coordinates (the views' physical units, or pixels); pixel ``(r, c)`` has its centre at
``(x0 + (c + 0.5) width / nx, y0 + (r + 0.5) height / ny)``. ``scale`` converts plot units to
the length unit reported (1 when the plot is already in it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def _to_pixels(img: np.ndarray, rect, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Plot coordinates -> fractional (row, col) indices of pixel centres."""
    x0, y0, w, h = rect
    ny, nx = img.shape
    return (np.asarray(y, float) - y0) * ny / h - 0.5, (np.asarray(x, float) - x0) * nx / w - 0.5


def line_profile(img: np.ndarray, rect, p0, p1, scale: float = 1.0,
                 samples_per_pixel: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Values along the segment ``p0 -> p1`` (plot coordinates (x, y)), bilinear between pixel
    centres, NaN outside the image: ``(distance from p0 in units of scale, values)``."""
    (xa, ya), (xb, yb) = p0, p1
    ra, ca = _to_pixels(img, rect, xa, ya)
    rb, cb = _to_pixels(img, rect, xb, yb)
    n = max(2, int(math.ceil(samples_per_pixel * math.hypot(float(rb - ra), float(cb - ca)))) + 1)
    t = np.linspace(0.0, 1.0, n)
    rows, cols = ra + t * (rb - ra), ca + t * (cb - ca)
    vals = ndimage.map_coordinates(np.asarray(img, np.float64), [rows, cols], order=1,
                                   mode="nearest", prefilter=False)
    ny, nx = img.shape
    outside = (rows < -0.5) | (rows > ny - 0.5) | (cols < -0.5) | (cols > nx - 0.5)
    vals[outside] = np.nan
    length = math.hypot(xb - xa, yb - ya) * scale
    return t * length, vals


@dataclass
class RegionStats:
    """Statistics of the pixels whose centres lie in a rectangle; ``area`` in units of scale
    squared. Non-finite pixels are left out (``n`` counts the rest)."""

    n: int
    mean: float
    std: float
    min: float
    max: float
    area: float
    width: float
    height: float


def region_stats(img: np.ndarray, rect, corner, size, scale: float = 1.0) -> RegionStats:
    """Statistics of ``img`` over the rectangle at ``corner`` (x, y) of ``size`` (w, h), plot
    coordinates."""
    (x, y), (w, h) = corner, size
    xs, ys = sorted((x, x + w)), sorted((y, y + h))
    r0, c0 = _to_pixels(img, rect, xs[0], ys[0])
    r1, c1 = _to_pixels(img, rect, xs[1], ys[1])
    ny, nx = img.shape
    rows = slice(max(0, int(math.ceil(r0))), min(ny, int(math.floor(r1)) + 1))
    cols = slice(max(0, int(math.ceil(c0))), min(nx, int(math.floor(c1)) + 1))
    vals = np.asarray(img[rows, cols], np.float64)
    vals = vals[np.isfinite(vals)]
    px_area = abs(rect[2] / nx * rect[3] / ny) * scale * scale
    if vals.size == 0:
        nan = float("nan")
        return RegionStats(0, nan, nan, nan, nan, 0.0, abs(w) * scale, abs(h) * scale)
    return RegionStats(int(vals.size), float(vals.mean()), float(vals.std()), float(vals.min()),
                       float(vals.max()), vals.size * px_area, abs(w) * scale, abs(h) * scale)


def on_grid(b: np.ndarray, b_voxel, a_shape, a_voxel) -> np.ndarray:
    """Volume ``b`` (voxel ``b_voxel`` = (dz, dy, dx)) sampled on the grid of a ``a_shape``
    volume with voxel ``a_voxel``, both centred on the same point (as a reconstruction and its
    ground truth are); trilinear, NaN outside ``b``. ``b`` itself when the grids agree."""
    b = np.asarray(b)
    if tuple(b.shape) == tuple(a_shape) and np.allclose(b_voxel, a_voxel, rtol=1e-6):
        return b
    coords = []
    for n_a, v_a, n_b, v_b in zip(a_shape, a_voxel, b.shape, b_voxel):
        coords.append((np.arange(n_a) - (n_a - 1) / 2) * v_a / v_b + (n_b - 1) / 2)
    grid = np.meshgrid(*coords, indexing="ij")
    out = ndimage.map_coordinates(np.asarray(b, np.float64), grid, order=1, mode="constant",
                                  cval=np.nan, prefilter=False)
    return out.astype(np.float32)


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(RMS of a - b, Pearson correlation)`` over the pixels finite in both."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    a, b = a[ok], b[ok]
    rms = float(np.sqrt(np.mean((a - b) ** 2)))
    sa, sb = a.std(), b.std()
    corr = float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb)) if sa > 0 and sb > 0 \
        else float("nan")
    return rms, corr


def nice_length(span: float) -> float:
    """A round length (1, 2 or 5 times a power of ten) about a fifth of ``span``."""
    if not span > 0 or not math.isfinite(span):
        return 1.0
    target = span / 5
    p = 10 ** math.floor(math.log10(target))
    return min((k * p for k in (1, 2, 5, 10)), key=lambda v: abs(math.log(v / target)))
