"""Photon counts stored as floats (Adorym's magnitudes) are recognised and the Poisson loss
suggested; its value is the deviance (0 at a perfect fit)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from slicewise.engine.geometry import Geometry
from slicewise.engine.io.adorym import write_adorym
from slicewise.engine.io.counts import frames_are_counts
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.readers import describe_file, open_dataset
from slicewise.engine.recon.loop import losses as L
from slicewise.engine.recon.config import ReconConfig
from slicewise.engine.recon.setup.measured import decide_loss


def _farfield(tmp_path, frames, name="f.h5"):
    n = frames.shape[1]
    g = Geometry(modality="farfield", energy_ev=8000.0, pixel_size_m=10e-9,
                 angles_rad=np.zeros(1), positions_px=np.stack([np.arange(n) * 2, np.zeros(n)], 1))
    path = tmp_path / name
    write_adorym(path, frames, g)
    return path


def _pattern(rng, n_spots=12, size=32, photons=1e5):
    y, x = np.mgrid[:size, :size] - size / 2
    base = np.exp(-(x ** 2 + y ** 2) / 20.0)
    lam = np.stack([base * (1 + 0.2 * rng.random((size, size))) for _ in range(n_spots)])
    return (lam * photons / lam.sum((1, 2), keepdims=True))[None]


def test_counts_in_an_adorym_magnitude_file_are_recognised(tmp_path, caplog):
    rng = np.random.default_rng(0)
    lam = _pattern(rng)
    counts = _farfield(tmp_path, rng.poisson(lam).astype(np.float64), "counts.h5")
    clean = _farfield(tmp_path, lam, "clean.h5")
    ds = open_dataset(counts)
    assert ds.meta.get("integer_counts") is not True   # float32 magnitudes on disk
    ok, why = frames_are_counts(ds)
    assert ok, why
    # the amplitude loss stays the default (robust from a wrong probe); the reason says why
    choice = decide_loss(ReconConfig(), ds)
    assert choice.value == "amplitude"
    assert "holding photon counts" in choice.reason and "loss.kind = poisson" in choice.reason
    assert "loss.kind = poisson fits their noise" in describe_file(counts)
    ds_clean = open_dataset(clean)
    assert frames_are_counts(ds_clean)[0] is False
    assert decide_loss(ReconConfig(), ds_clean).value == "amplitude"


def test_flat_fielded_holograms_near_one_are_not_counts():
    rng = np.random.default_rng(1)
    frames = (1 + 0.004 * rng.standard_normal((2, 1, 48, 48))).astype(np.float32)
    g = Geometry(modality="nearfield", energy_ev=8000.0, pixel_size_m=50e-9,
                 angles_rad=np.zeros(2), distances_m=np.array([0.1]))
    ok, why = frames_are_counts(Dataset.from_arrays(frames, g))
    assert not ok and "different whole numbers" in why


def test_poisson_deviance_is_zero_at_a_perfect_fit_and_positive_elsewhere():
    rng = np.random.default_rng(2)
    y = rng.poisson(50.0, (16, 16)).astype(np.float64)
    assert float(L.poisson_nll(y, y, eps=0.0)) == pytest.approx(0.0, abs=1e-12)
    for f in (0.5, 0.9, 1.1, 3.0):
        assert float(L.poisson_nll(f * y + 0.1, y)) > 0
    # its value no longer carries the per-pixel constant that single precision could not resolve
    big = rng.poisson(1e6, (64, 64)).astype(np.float32)
    near = big * np.float32(1.0001)
    assert float(L.poisson_nll(near, big)) > 0
