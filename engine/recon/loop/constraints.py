"""Projections applied to plain backend arrays after each optimiser step (no tape involved).

Every function returns the projected array; with ``inplace=True`` the input is overwritten and
returned (saves a volume-sized allocation on the GPU). Dtypes are preserved.

* :func:`nonnegative` -- ``delta, beta >= 0`` (a real, passive sample).
* :func:`amplitude_at_most` -- ``|T| <= 1`` for a complex transmission (the analogue of ``beta >= 0``).
* :func:`support_mask_auto` / :func:`apply_support` -- a support from a smoothed threshold of the
  current estimate, and setting everything outside it to a fill value.
* :func:`probe_power` / :func:`fix_probe_power` -- keep the probe's total power (scale ambiguity
  between probe and object).
* :func:`bound_position_step` / :func:`remove_global_shift` -- keep position refinement stable.
"""

from __future__ import annotations

import numpy as np

from ...backend import array_module

__all__ = ["nonnegative", "amplitude_at_most", "support_mask_auto", "apply_support", "probe_power",
           "fix_probe_power", "bound_position_step", "remove_global_shift"]


def nonnegative(x, inplace: bool = False):
    """``max(x, 0)`` elementwise for a real array (delta or beta volumes)."""
    xp = array_module(x)
    if xp.iscomplexobj(x):
        raise TypeError("nonnegative() needs a real array (delta/beta); for a complex transmission "
                        "use amplitude_at_most()")
    return xp.maximum(x, 0, out=x if inplace else None)


def amplitude_at_most(t, limit: float = 1.0, inplace: bool = False):
    """Clip the modulus of a complex array to ``limit`` keeping its phase (a passive object
    cannot amplify the wave: ``|T| <= 1``)."""
    xp = array_module(t)
    mag = xp.abs(t)
    factor = xp.where(mag > limit, limit / xp.where(mag > 0, mag, 1), 1).astype(mag.dtype)
    if inplace:
        t *= factor
        return t
    return t * factor


def _gaussian_filter(xp, a, sigma):
    if xp is np:
        from scipy.ndimage import gaussian_filter  # noqa: PLC0415 - the backend's own filter
    else:  # pragma: no cover - GPU
        from cupyx.scipy.ndimage import gaussian_filter  # noqa: PLC0415 - optional (gpu extra)
    return gaussian_filter(a, sigma=sigma, mode="nearest")


def support_mask_auto(volume, threshold: float, sigma_px: float = 1.0):
    """Boolean support: ``smooth(|volume|) >= threshold * max(smooth(|volume|))``.

    volume: ``(..., nz, ny, nx)``, real (e.g. delta) or complex (pass ``1 - T`` for a transmission:
    the contrast, not the transmission itself). Smoothing is a Gaussian of ``sigma_px`` pixels over
    the last three axes (edge values continued), which closes pinholes and rejects isolated noisy
    voxels. threshold: fraction of the smoothed maximum, in [0, 1]. An estimate that is still all
    zero (the usual start) gives an all-True mask, so an early call never erases the object.
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"support threshold must be in [0, 1], got {threshold}")
    xp = array_module(volume)
    mag = xp.abs(volume)
    if sigma_px > 0:
        sigma = (0,) * (mag.ndim - 3) + (sigma_px,) * min(3, mag.ndim)
        mag = _gaussian_filter(xp, mag, sigma)
    peak = float(mag.max()) if mag.size else 0.0
    if not peak > 0:
        return xp.ones(mag.shape, dtype=bool)
    return mag >= threshold * peak


def apply_support(x, mask, fill: complex = 0.0, inplace: bool = False):
    """Set ``x`` to ``fill`` outside ``mask`` (broadcastable bool). Use ``fill=0`` for delta/beta
    and ``fill=1`` for a complex transmission (free space)."""
    xp = array_module(x)
    mask = xp.asarray(mask, dtype=bool)
    if inplace:
        x[...] = xp.where(mask, x, xp.asarray(fill, dtype=x.dtype))
        return x
    return xp.where(mask, x, xp.asarray(fill, dtype=x.dtype))


def probe_power(probe) -> float:
    """Total power ``sum |p|^2`` over all modes and pixels of a ``(n_modes, py, px)`` probe."""
    xp = array_module(probe)
    return float((probe.real ** 2 + probe.imag ** 2).sum()) if xp.iscomplexobj(probe) else float(
        (probe * probe).sum())


def fix_probe_power(probe, target_total_power: float, inplace: bool = False):
    """Scale ``probe`` so that ``sum |p|^2`` over modes and pixels equals ``target_total_power``
    (the relative power of the modes is kept). A probe of zero power is returned unchanged."""
    if not target_total_power >= 0:
        raise ValueError(f"target probe power must be >= 0, got {target_total_power}")
    current = probe_power(probe)
    if current == 0:
        return probe
    factor = np.sqrt(target_total_power / current).astype(probe.real.dtype)
    if inplace:
        probe *= factor
        return probe
    return probe * factor


def bound_position_step(new, old, max_step: float):
    """Limit the move ``new - old`` of each position (rows of ``(n_pos, 2)`` pixel arrays) to a
    Euclidean length of ``max_step`` pixels, keeping its direction. One wild gradient step cannot
    throw a spot off the object; ``max_step = 0`` freezes the positions."""
    if not max_step >= 0:
        raise ValueError(f"max_step must be >= 0 pixels, got {max_step}")
    xp = array_module(new)
    step = new - old
    length = xp.sqrt((step * step).sum(axis=-1, keepdims=True))
    factor = xp.where(length > max_step, max_step / xp.where(length > 0, length, 1), 1)
    return (old + step * factor).astype(new.dtype, copy=False)


def remove_global_shift(new, old):
    """Subtract the mean move of all positions: a common translation of every spot is
    indistinguishable from a shifted object, so letting it drift only moves the reconstruction."""
    return new - (new - old).mean(axis=0, keepdims=True)
