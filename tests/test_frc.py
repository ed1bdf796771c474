"""Fourier ring correlation: thresholds, registration, and a resolution that follows the signal's
band limit."""

import numpy as np
import pytest

from slicewise.engine.errors import DataFileError
from slicewise.engine.quality.frc import (ONE_SEVENTH, fourier_ring_correlation, half_bit_threshold,
                                          read_frc, register_shift, write_frc)


def _bandlimited(n, cutoff, seed):
    """Random image whose spectrum is flat up to ``cutoff`` cycles/px and zero beyond."""
    rng = np.random.default_rng(seed)
    f = np.fft.fft2(rng.standard_normal((n, n)))
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    f[np.hypot(fy, fx) > cutoff] = 0
    return np.real(np.fft.ifft2(f))


def test_half_bit_threshold_limits():
    t = half_bit_threshold(np.array([1.0, 1e12]))
    assert t[0] == pytest.approx(1.0, abs=1e-3)       # one pixel: no information
    assert t[1] == pytest.approx(0.2071 / 1.2071, rel=1e-4)   # many pixels: the half-bit limit


def test_identical_images_correlate_to_nyquist():
    a = _bandlimited(64, 0.5, 0)
    r = fourier_ring_correlation(a, a.copy(), 10e-9)
    assert np.all(r.frc[1:] > 0.999)
    assert not r.reached["1/7"] and r.resolution_m["1/7"] == pytest.approx(20e-9)


def test_resolution_follows_the_band_limit():
    """Two noisy copies of a signal limited to 0.15 cycles/px: the 1/7 crossing lies near 0.15,
    i.e. a resolution near pixel / 0.15."""
    sig = _bandlimited(128, 0.15, 1)
    sig /= sig.std()
    rng = np.random.default_rng(2)
    a = sig + 0.3 * rng.standard_normal(sig.shape)
    b = sig + 0.3 * rng.standard_normal(sig.shape)
    r = fourier_ring_correlation(a, b, 5e-9)
    assert r.reached["1/7"] and r.reached["half-bit"]
    assert 5e-9 / 0.19 < r.resolution_m["1/7"] < 5e-9 / 0.12
    # the half-bit curve lies above 1/7 at these ring sizes: a coarser (larger) resolution
    assert r.resolution_m["half-bit"] >= r.resolution_m["1/7"] * 0.98
    assert "nm" in r.summary()


def test_independent_noise_does_not_correlate():
    rng = np.random.default_rng(3)
    r = fourier_ring_correlation(rng.standard_normal((64, 64)), rng.standard_normal((64, 64)), 1e-9)
    assert abs(np.mean(r.frc[4:])) < ONE_SEVENTH / 2


def test_registration_removes_a_subpixel_shift():
    sig = _bandlimited(96, 0.2, 4)
    fy, fx = np.meshgrid(np.fft.fftfreq(96), np.fft.fftfreq(96), indexing="ij")
    moved = np.real(np.fft.ifft2(np.fft.fft2(sig) * np.exp(-2j * np.pi * (fy * 2.3 + fx * -1.6))))
    dy, dx = register_shift(sig, moved)
    assert dy == pytest.approx(-2.3, abs=0.25) and dx == pytest.approx(1.6, abs=0.25)
    with_reg = fourier_ring_correlation(sig, moved, 1e-9)
    without = fourier_ring_correlation(sig, moved, 1e-9, register=False)
    assert with_reg.frc[5:15].mean() > without.frc[5:15].mean()


def test_volumes_give_shells():
    rng = np.random.default_rng(5)
    v = rng.standard_normal((16, 20, 24))
    r = fourier_ring_correlation(v, v + 0.01 * rng.standard_normal(v.shape), 1e-9)
    assert len(r.frequency) == 16 // 2 + 1      # cropped to the central 16^3 cube
    assert r.frc[1:].min() > 0.9


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        fourier_ring_correlation(np.zeros((16, 16)), np.zeros((16, 17)), 1e-9)
    with pytest.raises(ValueError, match="NaN"):
        fourier_ring_correlation(np.full((16, 16), np.nan), np.zeros((16, 16)), 1e-9)
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataFileError, match="HDF5"):
        read_frc(tmp_path / "x.h5")


def test_table_round_trip(tmp_path):
    sig = _bandlimited(64, 0.2, 6)
    r = fourier_ring_correlation(sig, sig + 0.1 * np.random.default_rng(7).standard_normal(sig.shape), 7e-9)
    write_frc(tmp_path / "frc.h5", r, sources=("odd/result.h5", "even/result.h5"))
    back = read_frc(tmp_path / "frc.h5")
    np.testing.assert_allclose(back.frc, r.frc)
    assert back.resolution_m == pytest.approx(r.resolution_m)
    assert back.reached == r.reached and back.pixel_size_m == 7e-9
