"""The iterated CTF (engine/retrieval/iterative.py) against holograms made by the engine's own
propagation operator (the forward model's convention: T = exp(i phi - B))."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from slicewise.engine.backend import get_backend, to_host
from slicewise.engine.phantoms import siemens_star
from slicewise.engine.physics.propagation import propagate
from slicewise.engine.retrieval.ctf import ctf_retrieve
from slicewise.engine.retrieval.iterative import holograms, iterative_ctf

BE = get_backend("numpy", "double")
LAM, PIX = 1.0e-10, 50e-9
FOUR = tuple(PIX ** 2 / (LAM * n) for n in (1.0, 0.6, 0.35, 0.2))  # Fresnel numbers 1 .. 0.2


def corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _holograms(phi, b, distances, method="fresnel"):
    t = np.exp(1j * phi - b)[None]
    fields = propagate(BE.asarray(np.repeat(t, len(distances), 0)), BE.asarray(np.asarray(distances)),
                       pixel_m=PIX, wavelength_m=LAM, backend=BE, method=method)
    return np.abs(to_host(fields)) ** 2


def _star(phase=1.0, ratio=1e-3, n=48):
    """A Siemens star of ``phase`` rad (delta > 0: phi <= 0), ``B = -ratio phi``."""
    phi = -phase * siemens_star((n, n), n_spokes=8).astype(np.float64)
    return phi, -ratio * phi


def test_recovers_a_one_radian_object_where_the_ctf_cannot():
    """1 rad of phase is beyond the CTF's linearisation (measured corr 0.72); a few tens of
    iterations recover it (measured 1.000 after 30 iterations, stopping on its own)."""
    phi, b = _star()
    inten = _holograms(phi, b, FOUR)
    ctf_phi, _ = ctf_retrieve(inten, FOUR, LAM, PIX)
    res = iterative_ctf(inten, FOUR, LAM, PIX, max_iter=40)
    assert corr(ctf_phi, phi) < 0.85
    assert corr(res.phi, phi) > 0.99
    assert res.phi.min() == pytest.approx(-1.0, abs=0.05)   # the level too, not only the shape
    assert res.iterations <= 40 and len(res.misfits) == res.iterations + 1
    assert all(later < earlier for earlier, later in zip(res.misfits, res.misfits[1:]))
    assert res.misfits[-1] < 1e-3 * res.misfits[0]


def test_a_perfect_start_is_left_alone():
    phi, b = _star(ratio=0.05)
    inten = _holograms(phi, b, FOUR)
    for ratio in (None, 0.05):
        res = iterative_ctf(inten, FOUR, LAM, PIX, ratio=ratio, start=(phi, b))
        np.testing.assert_allclose(res.phi, phi, rtol=0, atol=1e-9)
        np.testing.assert_allclose(res.b, b, rtol=0, atol=1e-9)
        assert res.misfits[0] < 1e-20


def test_from_vacuum_the_first_step_is_the_ctf_retrieval():
    """A weak object: one step, stopped there, equals the closed-form CTF of the same weight."""
    rng = np.random.default_rng(1)
    phi = -1e-4 * np.abs(gaussian_filter(rng.standard_normal((32, 32)), 2.0, mode="wrap"))
    inten = _holograms(phi, 0.01 * -phi, FOUR)
    one = iterative_ctf(inten, FOUR, LAM, PIX, ratio=0.01, max_iter=1, alpha=1e-2, nonneg=False)
    ctf_phi, ctf_b = ctf_retrieve(inten, FOUR, LAM, PIX, ratio=0.01, alpha=1e-2)
    np.testing.assert_allclose(one.phi, ctf_phi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one.b, ctf_b, rtol=0, atol=1e-12)


def test_constraints_homogeneous_ratio_and_nonnegativity():
    phi, b = _star(phase=0.5, ratio=0.1)
    inten = _holograms(phi, b, FOUR)
    res = iterative_ctf(inten, FOUR, LAM, PIX, ratio=0.1)
    np.testing.assert_allclose(res.b, -0.1 * res.phi, rtol=0, atol=1e-12)
    assert res.phi.max() <= 0 and res.b.min() >= 0          # delta >= 0, beta >= 0
    free = iterative_ctf(inten, FOUR, LAM, PIX, nonneg=False)
    assert free.phi.max() > 0                                 # unconstrained, it overshoots a bit
    single = iterative_ctf(inten[:1], FOUR[:1], LAM, PIX)     # one distance, no ratio: pure phase
    assert np.all(single.b == 0)


def test_angular_spectrum_kernel_matches_the_models():
    phi, b = _star(ratio=0.01, n=32)
    inten = _holograms(phi, b, FOUR, method="angular_spectrum")
    res = iterative_ctf(inten, FOUR, LAM, PIX, start=(phi, b), method="angular_spectrum")
    assert res.misfits[0] < 1e-20 and res.iterations == 0
    kernels = np.stack([np.exp(-1j * np.pi * LAM * d * (np.fft.fftfreq(32, PIX)[:, None] ** 2
                                                          + np.fft.fftfreq(32, PIX)[None] ** 2))
                        for d in FOUR])
    np.testing.assert_allclose(holograms(phi, b, kernels), _holograms(phi, b, FOUR), atol=1e-12)


def test_noisy_data_stop_where_the_misfit_stops_falling():
    """Poisson noise of 1e4 photons per pixel: the iteration stops well before its limit (it
    would otherwise fit the noise) and still beats the CTF on a 1 rad object."""
    phi, b = _star()
    inten = _holograms(phi, b, FOUR)
    noisy = np.random.default_rng(0).poisson(inten * 1e4) / 1e4
    res = iterative_ctf(noisy, FOUR, LAM, PIX, ratio=1e-3, max_iter=60)
    assert res.iterations < 60
    assert corr(res.phi, phi) > corr(ctf_retrieve(noisy, FOUR, LAM, PIX, ratio=1e-3)[0], phi) + 0.1


def test_mismatched_distances_are_refused():
    phi, b = _star(n=16)
    with pytest.raises(ValueError, match="3 intensity planes for 4 distances"):
        iterative_ctf(_holograms(phi, b, FOUR)[:3], FOUR, LAM, PIX)
