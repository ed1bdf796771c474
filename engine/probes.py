"""Illumination functions (probes) for simulation and as initial guesses.

All probes are complex128 NumPy arrays of shape ``(py, px)`` (or ``(n_modes, py, px)`` for
:func:`probe_modes`), centred on pixel ``(py//2, px//2)``, the FFT centre. Lengths are in pixels
unless the name says metres.

Normalisation (``n_photons``): when given, the probe is scaled so that ``sum |p|^2 = n_photons``,
the number of photons per frame (our FFTs are unitary, so this is also the total of a far-field
frame). When ``None``, the peak amplitude is 1.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError


def _shape2(shape) -> tuple[int, int]:
    try:
        py, px = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"probe shape must be (py, px) positive integers, got {shape!r}") from None
    if py < 1 or px < 1:
        raise ConfigError(f"probe shape must be (py, px) positive integers, got {shape!r}")
    return py, px


def normalise_probe(probe, n_photons=None) -> np.ndarray:
    """Scale so that ``sum |p|^2 = n_photons`` (all modes together), or peak |p| = 1 if None."""
    p = np.asarray(probe, dtype=np.complex128)
    if n_photons is None:
        peak = np.abs(p).max()
        return p / peak if peak > 0 else p
    if not (np.isfinite(n_photons) and n_photons > 0):
        raise ConfigError(f"n_photons must be a positive number of photons per frame, got {n_photons!r}")
    power = float(np.sum(np.abs(p) ** 2))
    if power == 0:
        raise ConfigError("cannot normalise an all-zero probe")
    return p * math.sqrt(float(n_photons) / power)


def gaussian_probe(shape, fwhm_px: float, n_photons=None) -> np.ndarray:
    """Gaussian beam with a flat phase: intensity ``|p|^2`` has full width at half maximum ``fwhm_px``.

    Returns complex128 ``(py, px)``.
    """
    py, px = _shape2(shape)
    if not (np.isfinite(fwhm_px) and fwhm_px > 0):
        raise ConfigError(f"fwhm_px must be a positive number of pixels, got {fwhm_px!r}")
    sigma = fwhm_px / (2.0 * math.sqrt(2.0 * math.log(2.0)))  # of the intensity
    y = np.arange(py)[:, None] - py // 2
    x = np.arange(px)[None, :] - px // 2
    amp = np.exp(-(y * y + x * x) / (4.0 * sigma * sigma))     # |amp|^2 = exp(-r^2 / 2 sigma^2)
    return normalise_probe(amp.astype(np.complex128), n_photons)


def airy_probe(shape, radius_px: float, defocus_m: float = 0.0, wavelength_m=None, pixel_m=None,
               n_photons=None) -> np.ndarray:
    """Focused probe from a circular pupil (Airy pattern), optionally defocused.

    ``radius_px`` is the radius of the first dark ring of the in-focus Airy pattern, in pixels:
    the pupil is a disc of radius ``0.61 / radius_px`` cycles per pixel in Fourier space. A
    defocus ``defocus_m`` (metres, positive = propagated downstream of the focus) multiplies the
    pupil by the Fresnel transfer function ``exp(-i pi lambda d (u^2 + v^2))`` (ARCHITECTURE.md
    convention), which needs ``wavelength_m`` and ``pixel_m``.

    Returns complex128 ``(py, px)``.
    """
    py, px = _shape2(shape)
    if not (np.isfinite(radius_px) and radius_px > 0):
        raise ConfigError(f"radius_px must be a positive number of pixels, got {radius_px!r}")
    fy = np.fft.fftfreq(py)[:, None]   # cycles per pixel, unshifted
    fx = np.fft.fftfreq(px)[None, :]
    f2 = fy * fy + fx * fx
    cutoff = 0.61 / radius_px
    pupil = (f2 <= cutoff * cutoff).astype(np.complex128)
    if defocus_m:
        if wavelength_m is None or pixel_m is None or wavelength_m <= 0 or pixel_m <= 0:
            raise ConfigError("airy_probe with defocus_m != 0 needs wavelength_m > 0 and "
                              f"pixel_m > 0 (metres), got wavelength_m={wavelength_m!r}, "
                              f"pixel_m={pixel_m!r}")
        f2_m = f2 / (pixel_m * pixel_m)  # (1/m)^2
        pupil = pupil * np.exp(-1j * math.pi * wavelength_m * defocus_m * f2_m)
    field = np.fft.fftshift(np.fft.ifft2(pupil))  # centre at (py//2, px//2)
    return normalise_probe(field, n_photons)


def probe_modes(probe, n_modes: int, seed: int = 0, decay: float = 0.5) -> np.ndarray:
    """Initial incoherent probe modes: ``probe`` plus orthogonal variations of decaying power.

    Mode k > 0 is the (first mode of) ``probe`` times a low-order Hermite-like polynomial in the
    centred, beam-width-scaled coordinates plus a small seeded random perturbation; the modes are
    then Gram-Schmidt orthogonalised and given powers proportional to ``decay**k``. The total
    power ``sum |p|^2`` over all modes equals that of the input, so photon counts are preserved.

    Parameters
    ----------
    probe: complex ``(py, px)`` or ``(m, py, px)`` (only the first mode is used).
    n_modes: number of modes, >= 1.
    seed: random seed (deterministic output).
    decay: power ratio between consecutive modes, in (0, 1].

    Returns
    -------
    complex128 ``(n_modes, py, px)``, mutually orthogonal (``vdot(p_i, p_j) = 0`` for i != j).
    """
    p0 = np.asarray(probe, dtype=np.complex128)
    if p0.ndim == 3:
        p0 = p0[0]
    if p0.ndim != 2:
        raise ConfigError(f"probe must be (py, px) or (n_modes, py, px), got shape {np.shape(probe)}")
    if int(n_modes) != n_modes or n_modes < 1:
        raise ConfigError(f"n_modes must be an integer >= 1, got {n_modes!r}")
    if not (0 < decay <= 1):
        raise ConfigError(f"decay must be in (0, 1], got {decay!r}")
    total = float(np.sum(np.abs(p0) ** 2))
    if total == 0:
        raise ConfigError("cannot make modes from an all-zero probe")
    py, px = p0.shape
    w = np.abs(p0) ** 2
    y = np.arange(py)[:, None] - np.sum(w * np.arange(py)[:, None]) / total
    x = np.arange(px)[None, :] - np.sum(w * np.arange(px)[None, :]) / total
    sy = math.sqrt(max(np.sum(w * y * y) / total, 1e-12))   # beam rms widths
    sx = math.sqrt(max(np.sum(w * x * x) / total, 1e-12))
    y, x = y / sy, x / sx
    rng = np.random.default_rng(seed)
    orders = [(a, b) for n in range(1, 16) for a in range(n + 1) for b in [n - a]]
    basis = [p0]
    for k in range(1, int(n_modes)):
        a, b = orders[(k - 1) % len(orders)]
        noise = rng.standard_normal((py, px)) + 1j * rng.standard_normal((py, px))
        cand = p0 * (y ** a * x ** b + 0.1 * noise)
        for q in basis:  # Gram-Schmidt (twice is enough for numerical orthogonality)
            cand = cand - np.vdot(q, cand) / np.vdot(q, q) * q
        for q in basis:
            cand = cand - np.vdot(q, cand) / np.vdot(q, q) * q
        basis.append(cand)
    weights = decay ** np.arange(int(n_modes))
    weights = weights / weights.sum() * total
    return np.stack([q * math.sqrt(wk / float(np.sum(np.abs(q) ** 2)))
                     for q, wk in zip(basis, weights)])
