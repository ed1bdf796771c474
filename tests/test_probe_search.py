"""The guessed probe's Fourier phase chosen by the data (engine/recon/probe_search.py): the depth of
focus in scale-free units, and the ranking of candidate defoci by a short object-only fit."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.backend import to_host
from slicewise.engine.recon.setup import probe_search
from slicewise.engine.recon.config import example_config, from_toml, set_value
from slicewise.engine.recon.setup.probe_guess import defocus
from slicewise.engine.recon.run import Reconstruction

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import adorym_sim as sim  # noqa: E402
from small_runs import weak_glass_cone_ptychotomo  # noqa: E402


def _overlap(a, b) -> float:
    return float(abs(np.vdot(a, b)) / np.linalg.norm(a) / np.linalg.norm(b))


def test_depth_of_focus_is_pi_over_the_support_radius_squared():
    """A flat disc of radius K cycles/px in Fourier space: one depth of focus puts a phase of pi
    at its edge, whatever the window (the unit is scale-free)."""
    for n, k in ((64, 0.2), (128, 0.1)):
        ky, kx = np.fft.fftfreq(n), np.fft.fftfreq(n)
        disc = (np.sqrt(ky[:, None] ** 2 + kx[None] ** 2) <= k).astype(complex)
        probe = np.fft.ifft2(disc)
        alpha = probe_search.focus_depth_alpha(probe)
        # 95 % of a uniform disc's power lies within sqrt(0.95) K (on the grid: within 2 %)
        assert alpha == pytest.approx(math.pi / (0.95 * k * k), rel=0.04)


def test_half_pixel_shift_moves_the_centroid():
    yy, xx = np.mgrid[:16, :16] - 7.5
    probe = np.exp(-(yy ** 2 + xx ** 2) / 6.0).astype(complex)
    moved = probe_search.shift(probe, 0.5, 0.5)
    w = np.abs(moved) ** 2
    assert (w * yy).sum() / w.sum() == pytest.approx(0.5, abs=1e-6)
    assert (w * xx).sum() / w.sum() == pytest.approx(0.5, abs=1e-6)


def test_the_known_defocus_ranks_first(tmp_path, caplog):
    """Start from the file's probe put half a depth of focus out of focus: the candidate that
    undoes it has the lowest data loss after the short object-only fit, the file's centring
    (Adorym's, (p - 1) / 2) wins over the half-pixel one, and the true probe comes back."""
    path, _, _ = sim.ptychotomo(tmp_path / "t.h5", sim.hollow_cone_3d(16), 1.83e-5, 5e-7, 5000,
                                1e-9, 8, p=12, step=3)
    cfg = from_toml(example_config("tomo"))
    set_value(cfg, "data.path", str(path))
    rec = Reconstruction(cfg, base_dir=tmp_path)
    prob = rec.problem
    true = np.asarray(to_host(prob.params["probe"]), np.complex128)
    unit = probe_search.focus_depth_alpha(true[0])
    prob.params["probe"] = prob.backend.to_complex(np.stack([defocus(m, -0.5 * unit) for m in true]))
    start_delta = np.asarray(to_host(prob.params["delta"])).copy()
    factory = probe_search.fit_solvers(rec.config, rec.dataset, prob, rec.solver.schedule,
                                       tmp_path)
    with caplog.at_level(logging.INFO, logger="slicewise.engine.recon.setup.probe_search"):
        choice = probe_search.search_probe(prob, factory)
    assert choice.startswith("defocus +0.5 depth of focus"), choice
    assert "centred at (p - 1) / 2" in choice        # Adorym's centring, not the half-pixel one
    assert "init.probe_search" in caplog.text
    assert _overlap(np.asarray(to_host(prob.params["probe"]))[0], true[0]) > 0.9999
    np.testing.assert_array_equal(np.asarray(to_host(prob.params["delta"])), start_delta)


def test_search_runs_only_for_a_guessed_probe_of_a_weak_object(tmp_path):
    path, _, _ = sim.ptychotomo(tmp_path / "t.h5", sim.hollow_cone_3d(12), 1.83e-5, 5e-7, 5000,
                                1e-9, 4, p=12, step=3, with_probe=False)
    cfg = from_toml(example_config("tomo"))
    set_value(cfg, "data.path", str(path))
    rec = Reconstruction(cfg, base_dir=tmp_path)
    assert probe_search.wants_search(rec.config, rec.dataset, True)          # weak: auto runs
    assert not probe_search.wants_search(rec.config, rec.dataset, False)     # a known probe
    set_value(rec.config, "init.probe_search", "off")
    assert not probe_search.wants_search(rec.config, rec.dataset, True)
    set_value(rec.config, "init.probe_search", "on")
    set_value(rec.config, "init.probe", "gaussian")                          # not from the data
    assert not probe_search.wants_search(rec.config, rec.dataset, True)


def test_blind_ptychotomography_of_slicewise_own_cone(tmp_path, caplog):
    """Slicewise's simulator centres its probe at p // 2, the guess sits at (p - 1) / 2: half a
    pixel off in every view, i.e. a moved rotation axis. The search (auto: frames within 0.07 % of
    their mean) finds the centring, and the example configuration reconstructs the weak cone."""
    d = weak_glass_cone_ptychotomo(tmp_path / "e.h5", n_angles=16, with_probe=False)
    cfg = from_toml(example_config("tomo"))
    set_value(cfg, "data.path", str(tmp_path / "e.h5"))
    set_value(cfg, "run.epochs", 10)
    with caplog.at_level(logging.INFO, logger="slicewise.engine.recon.setup.probe_search"):
        rec = Reconstruction(cfg, base_dir=tmp_path)
        rec.run()
    assert "centred at p / 2" in caplog.text
    a = np.ravel(rec.snapshot(None).delta)
    b = np.ravel(d["truth"]["delta"])
    a, b = a - a.mean(), b - b.mean()
    c = float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))
    # measured 0.910 (init.probe_search = off: 0.844; the file's probe: 0.967): margin 0.05
    assert c >= 0.86, c
