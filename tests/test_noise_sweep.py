"""The noise sweep's data (tests/helpers/noise_sweep.py): deterministic, photons where they are
said to be, counts stored as integers and floats as counts over the scale, every modality."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.io.readers import open_dataset

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from noise_sweep import (MODALITIES, NoiseCase, correlation_with_truth, intensity_contrast,  # noqa: E402
                         make_data, noise_cases, reduced_cases)


@pytest.mark.parametrize("modality", MODALITIES)
def test_cases_are_deterministic_and_stored_as_said(modality):
    counts = make_data(NoiseCase(modality, 1e4, "weak", "counts"))
    again = make_data(NoiseCase(modality, 1e4, "weak", "counts"))
    np.testing.assert_array_equal(counts.stored, again.stored)
    other = make_data(NoiseCase(modality, 1e4, "weak", "counts", seed=1))
    assert not np.array_equal(counts.stored, other.stored)
    assert counts.stored.dtype == np.int32 and counts.photons_per_unit == 1
    ds = counts.dataset()
    assert ds.meta["integer_counts"] and ds.shape == counts.stored.shape
    floats = make_data(NoiseCase(modality, 1e4, "weak", "floats"))
    assert floats.stored.dtype == np.float32 and floats.photons_per_unit == 1e4
    np.testing.assert_allclose(floats.stored, counts.stored / 1e4, rtol=1e-6)   # the same draw
    assert not floats.dataset().meta.get("integer_counts")
    # photons per pattern (far field: the probe's) or per pixel of the beam (near field)
    per = counts.stored.sum(axis=(-2, -1)).mean() if counts.case.far_field \
        else counts.stored.mean()
    assert per == pytest.approx(1e4, rel=0.05)
    clean = make_data(NoiseCase(modality, None, "weak", "floats"))
    np.testing.assert_allclose(clean.stored, clean.clean, rtol=1e-6)


def test_weak_and_strong_contrast_differ_tenfold_and_the_truth_is_found():
    weak = make_data(NoiseCase("holotomo", None, "weak"))
    strong = make_data(NoiseCase("holotomo", None, "strong"))
    np.testing.assert_allclose(strong.truth["delta"], 10 * weak.truth["delta"])
    assert 0.002 < intensity_contrast(weak) < 0.02
    assert intensity_contrast(strong) == pytest.approx(10 * intensity_contrast(weak), rel=0.2)
    assert correlation_with_truth(weak, {"delta": weak.truth["delta"]}) == pytest.approx(1.0)
    nf = make_data(NoiseCase("nfptycho", None, "weak"))
    shifted = np.pad(nf.truth["delta"], ((0, 0), (3, 0), (5, 0)))
    start = nf.truth["positions_px"] + [3, 5]   # a run's grid: the scan moved by (3, 5)
    obj = np.exp(-1j * shifted)                  # a complex object: minus its phase
    assert correlation_with_truth(nf, {"object": obj}, start) == pytest.approx(1.0, abs=1e-6)


def test_sweep_lists_every_combination_and_a_reduced_set(tmp_path):
    full = noise_cases()
    assert len(full) == 7 * 5 * 2 * 2 and len({c.name for c in full}) == len(full)
    small = reduced_cases()
    assert {c.modality for c in small} == set(MODALITIES) and len(small) < len(full) / 4
    assert all(c.size == "tiny" for c in small)
    data = make_data(NoiseCase("ptycho2d", 1e5, "strong", "floats"))
    path = data.write(tmp_path / "p.h5")
    ds = open_dataset(path)
    np.testing.assert_allclose(ds.frames(), data.stored, rtol=1e-6)
    np.testing.assert_allclose(ds.truth["delta"], data.truth["delta"])
    with pytest.raises(ValueError, match="modality"):
        NoiseCase("cdi", 1e4)
