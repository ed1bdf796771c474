"""Ptychographic scan patterns.

Positions are float arrays ``(n, 2)`` of ``(y, x)``: the **top-left corner** of the probe window
in object pixels (ARCHITECTURE.md). A window at ``(y, x)`` covers object pixels
``[y, y + py) x [x, x + px)``; "inside the object" means ``0 <= y <= ny - py`` and
``0 <= x <= nx - px`` (minus ``margin_px`` on every side).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))  # 137.5 degrees


def _allowed_box(object_shape_yx, probe_shape, margin_px: float) -> tuple[float, float]:
    """Extent ``(Ly, Lx)`` of the allowed top-left positions, which run over ``[m, m + L]``."""
    try:
        ny, nx = (int(v) for v in object_shape_yx)
        py, px = (int(v) for v in probe_shape[-2:])
    except (TypeError, ValueError):
        raise ConfigError(f"object_shape_yx and probe_shape must be (y, x) integers, got "
                          f"{object_shape_yx!r} and {probe_shape!r}") from None
    if margin_px < 0:
        raise ConfigError(f"margin_px must be >= 0, got {margin_px!r}")
    ly, lx = ny - py - 2 * margin_px, nx - px - 2 * margin_px
    if ly < 0 or lx < 0:
        raise ConfigError(f"the probe window {(py, px)} with margin_px={margin_px} does not fit in "
                          f"the object {(ny, nx)}; use a larger object or a smaller probe/margin")
    return float(ly), float(lx)


def _check_step(step_px) -> float:
    if not (np.isfinite(step_px) and step_px > 0):
        raise ConfigError(f"step_px must be a positive number of pixels, got {step_px!r}")
    return float(step_px)


def raster_scan(object_shape_yx, probe_shape, step_px: float, margin_px: float = 0.0) -> np.ndarray:
    """Rectangular grid with spacing ``step_px``, centred in the object, row by row (y major).

    The grid has ``floor(L / step) + 1`` points along each axis (``L`` = allowed extent), so every
    window is inside the object; the leftover (< one step) is split evenly between the two edges.

    Returns float64 ``(n, 2)`` top-left ``(y, x)`` positions.
    """
    step = _check_step(step_px)
    ly, lx = _allowed_box(object_shape_yx, probe_shape, margin_px)
    axes = []
    for length in (ly, lx):
        n = int(math.floor(length / step + 1e-9)) + 1
        start = margin_px + (length - (n - 1) * step) / 2
        axes.append(start + step * np.arange(n))
    yy, xx = np.meshgrid(axes[0], axes[1], indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def fermat_spiral_scan(object_shape_yx, probe_shape, step_px: float,
                       margin_px: float = 0.0) -> np.ndarray:
    """Fermat spiral (r = c sqrt(k), angle = k x golden angle) centred in the object.

    ``c = step_px * sqrt(sqrt(3) / (2 pi))`` gives the same point density as a hexagonal lattice of
    spacing ``step_px`` (area ``pi c^2`` per point), so the nearest-neighbour distance is close to
    ``step_px``. Points whose window would leave the object are dropped. The spiral avoids the
    periodic artefacts ("raster grid pathology") of regular grids.

    Returns float64 ``(n, 2)`` top-left ``(y, x)`` positions, in spiral order from the centre.
    """
    step = _check_step(step_px)
    ly, lx = _allowed_box(object_shape_yx, probe_shape, margin_px)
    c = step * math.sqrt(math.sqrt(3.0) / (2.0 * math.pi))
    r_max = 0.5 * math.hypot(ly, lx)
    k = np.arange(int(math.ceil((r_max / c) ** 2)) + 1)
    r, t = c * np.sqrt(k), k * GOLDEN_ANGLE
    y = margin_px + ly / 2 + r * np.sin(t)
    x = margin_px + lx / 2 + r * np.cos(t)
    eps = 1e-9
    keep = ((y >= margin_px - eps) & (y <= margin_px + ly + eps)
            & (x >= margin_px - eps) & (x <= margin_px + lx + eps))
    return np.stack([y[keep], x[keep]], axis=1)


def overlap_to_step(probe_fwhm_px: float, overlap: float) -> float:
    """Scan step (px) giving linear ``overlap`` between neighbouring probe footprints.

    Uses the usual definition ``overlap = 1 - step / D`` with the probe diameter ``D`` taken as the
    intensity FWHM (Bunk et al., Ultramicroscopy 108, 481 (2008)); e.g. 60 % overlap of a 20 px
    probe gives an 8 px step.
    """
    if not (np.isfinite(probe_fwhm_px) and probe_fwhm_px > 0):
        raise ConfigError(f"probe_fwhm_px must be a positive number of pixels, got {probe_fwhm_px!r}")
    if not (0 <= overlap < 1):
        raise ConfigError(f"overlap must be a fraction in [0, 1), got {overlap!r}")
    return float(probe_fwhm_px) * (1.0 - float(overlap))


def perturb_positions(pos, max_px: float, seed: int = 0, object_shape_yx=None,
                      probe_shape=None) -> np.ndarray:
    """Add seeded uniform random errors in ``[-max_px, max_px]`` to each coordinate.

    Used to simulate position errors (or to jitter a raster). When ``object_shape_yx`` and
    ``probe_shape`` are given, the result is clipped so every window stays inside the object.

    Returns a new float64 ``(n, 2)`` array.
    """
    p = np.asarray(pos, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ConfigError(f"positions must be an (n, 2) array of (y, x), got shape {p.shape}")
    if not (np.isfinite(max_px) and max_px >= 0):
        raise ConfigError(f"max_px must be >= 0 pixels, got {max_px!r}")
    rng = np.random.default_rng(seed)
    out = p + rng.uniform(-max_px, max_px, size=p.shape)
    if object_shape_yx is not None and probe_shape is not None:
        ly, lx = _allowed_box(object_shape_yx, probe_shape, 0.0)
        out[:, 0] = np.clip(out[:, 0], 0.0, ly)
        out[:, 1] = np.clip(out[:, 1], 0.0, lx)
    return out


#: Stage errors are cut at this many standard deviations (a stage that misses by more is broken).
STAGE_ERROR_CUT = 2.5


def stage_errors(n: int, std_px: float, seed: int = 0) -> np.ndarray:
    """Seeded random errors of a scanning stage: normal, ``std_px`` per coordinate, cut at
    :data:`STAGE_ERROR_CUT` standard deviations. Returns float64 ``(n, 2)`` (y, x) pixels."""
    if not (np.isfinite(std_px) and std_px >= 0):
        raise ConfigError(f"std_px must be >= 0 pixels, got {std_px!r}")
    err = np.random.default_rng(seed).normal(0.0, float(std_px), size=(int(n), 2))
    cut = STAGE_ERROR_CUT * float(std_px)
    return np.clip(err, -cut, cut)
