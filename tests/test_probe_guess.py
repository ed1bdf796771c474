"""The far-field probe guessed from the data (engine/recon/probe_guess.py): centred where the models
centre the window, widened by propagation to the probe size the window implies, never narrowed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.recon.setup.probe_guess import (PROBE_DIAMETER_FRACTION, WEAK_CONTRAST, defocus,
                                                frame_contrast,
                                                probe_from_mean_pattern, rms_radius,
                                                spread_to_window)


def _vacuum_frames(probe: np.ndarray) -> Dataset:
    frame = np.abs(np.fft.fft2(probe, norm="ortho")) ** 2   # model convention: unshifted
    return Dataset.from_arrays(np.repeat(frame[None, None], 3, axis=1).astype(np.float32),
                               Geometry(modality="farfield", energy_ev=8000.0, pixel_size_m=1e-8,
                                        angles_rad=np.zeros(1), positions_px=np.zeros((3, 2))))


def _centroid(p):
    w = np.abs(p) ** 2
    yy, xx = np.mgrid[:p.shape[0], :p.shape[1]]
    return (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()


@pytest.mark.parametrize("n", [16, 17])
def test_guess_is_centred_at_the_window_centre(n):
    """(p - 1) / 2, the centre of Adorym's probes and of the models' windows (their rotation axis
    and object grid are symmetric about window centres), for even and odd windows alike."""
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    probe = np.exp(-(yy ** 2 + xx ** 2) / 8.0).astype(complex)
    guess = probe_from_mean_pattern(_vacuum_frames(probe))
    np.testing.assert_allclose(_centroid(guess), ((n - 1) / 2, (n - 1) / 2), atol=1e-6)
    assert abs(np.vdot(guess, probe)) / np.linalg.norm(guess) / np.linalg.norm(probe) > 0.9999


def test_defocus_keeps_the_fourier_amplitude_and_widens_monotonically():
    yy, xx = np.mgrid[:32, :32] - 15.5
    focus = np.exp(-(yy ** 2 + xx ** 2) / 6.0).astype(complex)
    radii = [rms_radius(defocus(focus, a)) for a in (0.0, 20.0, 40.0, 80.0)]
    assert all(b > a for a, b in zip(radii, radii[1:]))
    np.testing.assert_allclose(np.abs(np.fft.fft2(defocus(focus, 40.0))), np.abs(np.fft.fft2(focus)),
                               atol=1e-9 * np.abs(np.fft.fft2(focus)).max())
    np.testing.assert_allclose(_centroid(defocus(focus, 40.0)), (15.5, 15.5), atol=1e-6)


def test_spread_reaches_the_windows_probe_size_and_never_shrinks():
    yy, xx = np.mgrid[:64, :64] - 31.5
    focus = np.exp(-(yy ** 2 + xx ** 2) / 8.0).astype(complex)      # rms radius 2 px
    probe, alpha = spread_to_window(focus)
    target = PROBE_DIAMETER_FRACTION * 64 / (2 * math.sqrt(2))    # a disc 45 % of the window
    assert alpha > 0 and rms_radius(probe) == pytest.approx(target, rel=1e-3)
    wide = np.exp(-(yy ** 2 + xx ** 2) / 400.0).astype(complex)     # already wider: kept
    same, alpha = spread_to_window(wide)
    assert alpha == 0.0 and same is wide


def test_frame_contrast_measures_how_much_the_object_changes_the_frames():
    yy, xx = np.mgrid[:16, :16] - 7.5
    probe = np.exp(-(yy ** 2 + xx ** 2) / 8.0).astype(complex)
    assert frame_contrast(_vacuum_frames(probe)) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    frames = [np.abs(np.fft.fft2(probe * np.exp(1j * phase * rng.random((16, 16))), norm="ortho")) ** 2
              for phase in (0.01,) * 3 + (1.0,) * 3]
    geo = Geometry(modality="farfield", energy_ev=8000.0, pixel_size_m=1e-8,
                   angles_rad=np.zeros(1), positions_px=np.zeros((3, 2)))
    weak = Dataset.from_arrays(np.asarray(frames[:3], np.float32)[None], geo)
    strong = Dataset.from_arrays(np.asarray(frames[3:], np.float32)[None], geo)
    assert frame_contrast(weak) < WEAK_CONTRAST < frame_contrast(strong)
