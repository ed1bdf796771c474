"""What the noise of a data set is (engine/io/noise.py): integer counts, counts divided by a scale
(per data set, per frame, per pixel), a level measured on the data, or the user's statement; and
the misfit each loss expects at that noise level. Data from the noise sweep's simulator
(tests/helpers/noise_sweep.py, tiny size)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.noise import (NoiseModel, amplitude_misfit_per_photon, estimate_noise,
                                       find_quantum, poisson_misfit_per_photon)
from slicewise.engine.recon.config import ReconConfig, set_value

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from noise_sweep import MODALITIES, PHOTONS, NoiseCase, make_data  # noqa: E402


def _floats(data, stored):
    """The case's geometry with other stored values (float32), no integer marking."""
    return Dataset.from_arrays(np.asarray(stored, np.float32), data.geometry)


@pytest.mark.parametrize("modality", MODALITIES)
def test_integer_counts_are_poisson_counts(modality):
    data = make_data(NoiseCase(modality, 1e4, "weak", "counts"))
    est = estimate_noise(data.dataset())
    assert est.kind == "integer counts" and est.photons_per_unit == 1 and est.counts
    assert est.model.gain == 1 and "int32" in est.reason


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("photons", PHOTONS)
def test_counts_divided_by_a_scale_are_recognised_and_the_scale_recovered(modality, photons):
    """Poisson counts / photons, float32. Near-field frames hold ~photons counts per pixel:
    at 1e7 single precision (a spacing of 1.2e-7 near 1) no longer resolves one photon, and the
    frames must then not be claimed to be counts at a wrong quantum."""
    data = make_data(NoiseCase(modality, photons, "weak", "floats"))
    est = estimate_noise(data.dataset())
    if est.kind == "scaled counts":
        assert est.photons_per_unit == pytest.approx(photons, rel=1e-3), est.reason
        assert "whole multiples" in est.reason
    else:
        assert photons >= 1e7 and not data.case.far_field, est.reason
        assert est.kind == "estimated" and "no lattice" in est.reason


@pytest.mark.parametrize("photons", [1e3, 1e4])
def test_counts_divided_by_a_flat_field_give_a_quantum_per_pixel(photons):
    data = make_data(NoiseCase("holotomo", photons, "weak", "counts"))
    flat = np.random.default_rng(3).uniform(0.7, 1.3, data.stored.shape[-2:])
    est = estimate_noise(_floats(data, data.stored / (photons * flat)))
    assert est.kind == "scaled counts" and "flat field" in est.reason, est.reason
    assert est.photons_per_unit == pytest.approx(photons * np.median(flat), rel=0.03)
    np.testing.assert_allclose(np.asarray(est.model.gain) * photons * flat, 1.0, rtol=1e-4)


def test_counts_with_a_scale_per_frame_and_a_subtracted_dark():
    data = make_data(NoiseCase("holotomo", 1e4, "weak", "counts"))   # 24 frames of 256 px
    rng = np.random.default_rng(4)
    scale = rng.uniform(0.9, 1.1, data.stored.shape[:2])[..., None, None] * 1e4
    est = estimate_noise(_floats(data, data.stored / scale))
    assert est.kind == "scaled counts" and "per-frame scale" in est.reason, est.reason
    assert 1e4 * 0.9 <= est.photons_per_unit <= 1e4 * 1.1
    holo = make_data(NoiseCase("holo4", 1e3, "weak", "counts"))
    dark = 37.4   # an averaged dark, subtracted from every pixel
    est = estimate_noise(_floats(holo, (holo.stored - dark) / 1e3))
    assert est.kind == "scaled counts" and "subtracted dark" in est.reason, est.reason
    assert est.photons_per_unit == pytest.approx(1e3, rel=1e-3)


@pytest.mark.parametrize("modality", MODALITIES)
def test_noise_free_floats_are_not_counts(modality):
    data = make_data(NoiseCase(modality, None, "weak", "floats"))
    est = estimate_noise(data.dataset())
    assert est.kind == "estimated" and not est.counts, est.reason
    assert "upper bound" in est.reason


@pytest.mark.parametrize("modality", ["holo1", "holo4", "holotomo"])
@pytest.mark.parametrize("photons", [1e3, 1e4])
def test_a_continuous_level_is_measured_within_20_percent(modality, photons):
    """An integrating detector: counts times a gain that jitters per exposure (no lattice) plus
    Gaussian read-out noise of 3 photons, over photons (the frames' mean ~1)."""
    data = make_data(NoiseCase(modality, photons, "weak", "counts"))
    rng = np.random.default_rng(5)
    read = 3.0
    stored = (data.stored * rng.normal(1, 1e-3, data.stored.shape)
              + rng.normal(0, read, data.stored.shape)) / photons
    est = estimate_noise(_floats(data, stored))
    assert est.kind == "estimated", est.reason
    level = np.median(data.clean) / photons
    true = level / photons + (read / photons) ** 2
    assert est.model.variance(level) == pytest.approx(true, rel=0.2), est.reason
    assert est.photons_per_unit == pytest.approx(photons, rel=0.3)


def test_the_users_statement_wins():
    data = make_data(NoiseCase("holo1", 1e4, "weak", "floats"))
    cfg = ReconConfig()
    assert cfg.data.photons_per_unit is None
    set_value(cfg, "data.photons_per_unit", "2.5e3")
    est = estimate_noise(data.dataset(), cfg.data.photons_per_unit)
    assert est.kind == "stated" and est.photons_per_unit == 2500 and est.model.gain == 1 / 2500
    assert "data.photons_per_unit" in est.reason
    with pytest.raises(Exception, match="photons_per_unit"):
        set_value(cfg, "data.photons_per_unit", 0)


def test_find_quantum_on_a_lattice_and_off_it():
    rng = np.random.default_rng(6)
    n = rng.poisson(50.0, 5000)
    q, off, share = find_quantum((n / 7.3).astype(np.float32))
    assert q == pytest.approx(1 / 7.3, rel=1e-6) and share >= 0.98
    assert min(off, q - off) < 1e-3 * q
    assert find_quantum(rng.normal(10, 1, 5000).astype(np.float32)) is None
    assert find_quantum(np.arange(5, dtype=np.float32)) is None      # too few levels


@pytest.mark.parametrize("lam", [0.05, 0.5, 3.0, 30.0, 3000.0])
def test_expected_misfit_per_photon_matches_sampled_counts(lam):
    n = np.random.default_rng(7).poisson(lam, 400_000).astype(float)
    amp = np.mean((np.sqrt(n) - np.sqrt(lam)) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        poi = np.mean(lam - n - np.where(n > 0, n * np.log(lam / np.maximum(n, 1)), 0.0))
    assert float(amplitude_misfit_per_photon(lam)) == pytest.approx(amp, rel=0.02)
    assert float(poisson_misfit_per_photon(lam)) == pytest.approx(poi, rel=0.02)


@pytest.mark.parametrize("modality, photons", [("ptycho2d", 1e4), ("holotomo", 1e5),
                                               ("nfptycho", 1e3)])
def test_expected_misfit_is_the_truths_loss_on_the_data(modality, photons):
    """The amplitude loss of the noise-free frames against the noisy ones is the noise level the
    discrepancy principle compares a fit with (~gain / 4 where counts are high)."""
    data = make_data(NoiseCase(modality, photons, "weak", "floats"))
    est = estimate_noise(data.dataset())
    truth_loss = np.mean((np.sqrt(data.clean) - np.sqrt(data.stored.astype(float))) ** 2)
    assert est.model.expected_misfit(data.clean) == pytest.approx(truth_loss, rel=0.05)
    counts = make_data(NoiseCase(modality, photons, "weak", "counts"))
    y = counts.stored.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.mean(counts.clean - y - np.where(y > 0, y * np.log(counts.clean / np.maximum(y, 1)),
                                                  0.0))
    assert NoiseModel(1.0).expected_misfit(counts.clean, "poisson") == pytest.approx(dev, rel=0.05)
