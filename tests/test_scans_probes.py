"""Probes (normalisation, shape, modes) and scan patterns (inside the object, spacing)."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.engine.errors import ConfigError
from slicewise.engine.probes import airy_probe, gaussian_probe, normalise_probe, probe_modes
from slicewise.engine.scans import (
    fermat_spiral_scan,
    overlap_to_step,
    perturb_positions,
    raster_scan,
)


# ---- probes ---------------------------------------------------------------------------------
def test_gaussian_probe_fwhm_and_photons():
    p = gaussian_probe((64, 48), fwhm_px=10.0, n_photons=1e6)
    assert p.dtype == np.complex128 and p.shape == (64, 48)
    assert np.sum(np.abs(p) ** 2) == pytest.approx(1e6)
    inten = np.abs(p[32]) ** 2
    half = inten > inten.max() / 2
    assert half.sum() in (9, 10, 11)  # FWHM in pixels along x
    assert np.unravel_index(np.argmax(np.abs(p)), p.shape) == (32, 24)
    assert np.abs(gaussian_probe((16, 16), 4.0)).max() == pytest.approx(1.0)


def test_airy_probe_focus_and_defocus():
    p = airy_probe((128, 128), radius_px=8.0, n_photons=1e5)
    assert p.dtype == np.complex128 and np.sum(np.abs(p) ** 2) == pytest.approx(1e5)
    assert np.unravel_index(np.argmax(np.abs(p)), p.shape) == (64, 64)
    profile = np.abs(p[64, 64:80])
    first_min = int(np.argmin(profile[:12]))
    assert abs(first_min - 8) <= 1  # first dark ring at radius_px
    lam, px = 1.24e-10, 20e-9
    d = airy_probe((128, 128), 8.0, defocus_m=2e-3, wavelength_m=lam, pixel_m=px, n_photons=1e5)
    assert np.sum(np.abs(d) ** 2) == pytest.approx(1e5)
    assert np.abs(d).max() < 0.9 * np.abs(p).max()  # defocus spreads the beam
    # Defocus = Fresnel propagation of the focused probe (ARCHITECTURE.md transfer function).
    f = np.fft.fftfreq(128, d=px)
    h = np.exp(-1j * np.pi * lam * 2e-3 * (f[:, None] ** 2 + f[None, :] ** 2))
    prop = np.fft.ifft2(np.fft.fft2(p) * h)
    np.testing.assert_allclose(d, prop, atol=1e-8 * np.abs(p).max())
    with pytest.raises(ConfigError, match="wavelength_m"):
        airy_probe((32, 32), 4.0, defocus_m=1e-6)


def test_probe_modes_orthogonal_decaying_and_power_preserving():
    p = gaussian_probe((32, 32), 8.0, n_photons=1e4)
    m = probe_modes(p, 4, seed=1, decay=0.5)
    assert m.shape == (4, 32, 32) and m.dtype == np.complex128
    gram = np.einsum("iyx,jyx->ij", m.conj(), m)
    power = np.real(np.diag(gram))
    assert power.sum() == pytest.approx(1e4)
    np.testing.assert_allclose(power[1:] / power[:-1], 0.5)
    off = np.abs(gram - np.diag(np.diag(gram)))
    assert off.max() < 1e-8 * power.max()
    np.testing.assert_allclose(m[0] / np.sqrt(power[0]), p / np.sqrt(1e4), atol=1e-12)
    np.testing.assert_array_equal(probe_modes(p, 3, seed=2), probe_modes(p, 3, seed=2))
    assert probe_modes(p, 1).shape == (1, 32, 32)
    with pytest.raises(ConfigError, match="n_modes"):
        probe_modes(p, 0)
    with pytest.raises(ConfigError, match="n_photons"):
        normalise_probe(p, -1)


# ---- scans ----------------------------------------------------------------------------------
def _inside(pos, obj, probe):
    return (np.all(pos >= -1e-9) and np.all(pos[:, 0] <= obj[0] - probe[0] + 1e-9)
            and np.all(pos[:, 1] <= obj[1] - probe[1] + 1e-9))


def test_raster_scan():
    pos = raster_scan((100, 120), (32, 32), step_px=10.0)
    assert pos.dtype == np.float64 and pos.shape == (7 * 9, 2)
    assert _inside(pos, (100, 120), (32, 32))
    np.testing.assert_allclose(np.diff(np.unique(pos[:, 0])), 10.0)
    # Centred: equal leftover on both sides.
    assert pos[:, 0].min() == pytest.approx(100 - 32 - pos[:, 0].max())
    m = raster_scan((100, 120), (32, 32), 10.0, margin_px=5)
    assert m.min() >= 5 and _inside(m + 5, (100, 120), (32, 32))
    assert raster_scan((32, 32), (32, 32), 5.0).tolist() == [[0.0, 0.0]]
    with pytest.raises(ConfigError, match="does not fit"):
        raster_scan((20, 20), (32, 32), 5.0)
    with pytest.raises(ConfigError, match="step_px"):
        raster_scan((100, 100), (32, 32), 0.0)


def test_fermat_spiral_scan():
    pos = fermat_spiral_scan((128, 128), (32, 32), step_px=8.0)
    assert _inside(pos, (128, 128), (32, 32)) and len(pos) > 100
    d = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    nn = d.min(1)
    assert 0.7 * 8 < np.median(nn) < 1.3 * 8
    # Coverage: a point density of one per ~ (sqrt(3)/2) step^2 over the allowed square.
    assert len(pos) == pytest.approx(96 ** 2 / (np.sqrt(3) / 2 * 64), rel=0.15)
    assert np.allclose(pos[0], [48, 48])  # starts at the centre


def test_overlap_and_perturb():
    assert overlap_to_step(20.0, 0.6) == pytest.approx(8.0)
    with pytest.raises(ConfigError, match="overlap"):
        overlap_to_step(20.0, 1.0)
    pos = raster_scan((64, 64), (16, 16), 8.0)
    p1 = perturb_positions(pos, 2.0, seed=0)
    p2 = perturb_positions(pos, 2.0, seed=0)
    np.testing.assert_array_equal(p1, p2)
    assert 0 < np.abs(p1 - pos).max() <= 2.0
    clipped = perturb_positions(pos, 5.0, seed=1, object_shape_yx=(64, 64), probe_shape=(16, 16))
    assert _inside(clipped, (64, 64), (16, 16))
    with pytest.raises(ConfigError, match="positions"):
        perturb_positions(np.zeros(3), 1.0)
