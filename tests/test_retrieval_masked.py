"""The CTF, Paganin and iterated CTF retrievals on weighted detector pixels (engine/retrieval/masked.py)
and the start a run builds from them past a detector mask and held-out pixels: a pixel of weight 0
has no influence, every weight 1 gives the closed form."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from noise_sweep import NoiseCase, make_data  # noqa: E402

from slicewise.engine.io.datafile import Dataset  # noqa: E402
from test_retrieval import LAM, PIX, _blob, _distances, _holograms, corr  # noqa: E402

from slicewise.engine.backend import to_host  # noqa: E402
from slicewise.engine.recon.config import example_config, from_toml, set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402
from slicewise.engine.recon.setup.initial_guess import guess_object  # noqa: E402
from slicewise.engine.retrieval.ctf import ctf_retrieve, paganin_retrieve  # noqa: E402
from slicewise.engine.retrieval.iterative import iterative_ctf  # noqa: E402
from slicewise.engine.retrieval.masked import (conjugate_gradients, weighted_ctf_retrieve,  # noqa: E402
                                               weighted_paganin_retrieve)

FOUR = (1.0, 0.6, 0.35, 0.2)


def _object(n=64):
    phi = -0.05 * np.abs(_blob(0, n))
    return phi, 0.1 * -phi


def _mask(n=64, share=0.1, seed=1):
    return (np.random.default_rng(seed).random((n, n)) >= share).astype(float)


def test_conjugate_gradients_solves_a_preconditioned_spd_system():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((40, 40))
    n_mat = m @ m.T + 0.5 * np.eye(40)
    rhs = rng.standard_normal(40)
    diag = np.diag(n_mat)
    x, iters, res = conjugate_gradients(lambda v: n_mat @ v, rhs, lambda r: r / diag,
                                        np.zeros(40), tol=1e-10, max_iter=200)
    np.testing.assert_allclose(x, np.linalg.solve(n_mat, rhs), rtol=1e-7, atol=1e-9)
    assert res <= 1e-10 and 0 < iters <= 200


@pytest.mark.parametrize("ratio", [None, 0.1])
def test_every_weight_one_is_the_closed_form_ctf(ratio):
    """Without the gradient term the weighted solve is the closed form itself (the
    preconditioner is its exact inverse)."""
    phi, b = _object()
    d = _distances(FOUR)
    inten = _holograms(phi, b, d)
    full = ctf_retrieve(inten, d, LAM, PIX, ratio=ratio)
    ones = weighted_ctf_retrieve(inten, np.ones(phi.shape), d, LAM, PIX, ratio=ratio, smooth=0.0)
    for f, o in zip(full, ones):
        np.testing.assert_allclose(o, f, atol=1e-12 * np.abs(f).max() + 1e-30)


@pytest.mark.parametrize("ratio", [None, 0.1])
def test_unseen_pixels_have_no_influence_on_the_ctf(ratio):
    phi, b = _object()
    d = _distances(FOUR)
    inten = _holograms(phi, b, d)
    w = _mask()
    garbage = inten + (1 - w) * np.random.default_rng(5).normal(0, 0.5, inten.shape)
    a = weighted_ctf_retrieve(inten, w, d, LAM, PIX, ratio=ratio)
    g = weighted_ctf_retrieve(garbage, w, d, LAM, PIX, ratio=ratio)
    assert np.abs(a[0] - g[0]).max() <= 1e-9 * np.abs(a[0]).max()
    # and the pixels seen still give the object: four distances, a tenth of the pixels out
    # (measured: 0.98 beside the whole frames' 0.99 with a ratio; 0.63 beside 0.71 without)
    assert corr(a[0], phi) >= corr(ctf_retrieve(inten, d, LAM, PIX, ratio=ratio)[0], phi) - 0.1


def test_unseen_pixels_have_no_influence_on_paganin():
    phi, b = _object()
    d = _distances((1.0,))[0]
    inten = _holograms(phi, b, [d])[0]
    w = _mask()
    garbage = inten + (1 - w) * 0.5
    a = weighted_paganin_retrieve(inten, w, d, LAM, PIX, 0.1)
    g = weighted_paganin_retrieve(garbage, w, d, LAM, PIX, 0.1)
    assert np.abs(a[1] - g[1]).max() <= 1e-9 * np.abs(a[1]).max()
    full = paganin_retrieve(inten, d, LAM, PIX, 0.1)
    assert corr(a[0], full[0]) > 0.95    # measured 0.967: the unseen pixels filled by neighbours
    ones = weighted_paganin_retrieve(inten, np.ones_like(w), d, LAM, PIX, 0.1)
    assert corr(ones[0], full[0]) > 0.999


def test_unseen_pixels_have_no_influence_on_the_iterated_ctf():
    phi, b = _object()
    d = _distances(FOUR)
    inten = _holograms(phi, b, d)
    w = _mask()
    garbage = inten + (1 - w) * np.random.default_rng(6).normal(0, 0.5, inten.shape)
    a = iterative_ctf(inten, d, LAM, PIX, ratio=0.1, weights=w, max_iter=5)
    g = iterative_ctf(garbage, d, LAM, PIX, ratio=0.1, weights=w, max_iter=5)
    assert a.iterations >= 1 and a.misfits[-1] < a.misfits[0]
    assert np.abs(a.phi - g.phi).max() <= 1e-8 * np.abs(a.phi).max()


def _run_start(data, folder, stored, mask) -> Reconstruction:
    cfg = from_toml(example_config(data.case.example))
    for key, value in {"run.epochs": 1, "run.checkpoint_every": 0, "run.save_tiff": False,
                       "run.backend": "numpy", "run.output_dir": str(folder),
                       "init.guess": "ctf"}.items():
        set_value(cfg, key, value)
    ds = Dataset.from_arrays(stored.astype(np.float32), data.geometry, probe=data.probe,
                             mask=mask, truth=dict(data.truth))
    return Reconstruction(cfg, ds, base_dir=folder)


def test_a_detector_masks_bad_pixels_do_not_shape_the_start():
    """Four-distance holography with 2 % dead pixels (read as 0) in the detector mask: the start
    is about as good as the start from the frames before the pixels died, and better than one
    retrieved from every pixel. (Whatever the dead pixels read, the retrieval ignores them: the
    tests above; the illumination's level is estimated from whole frames.)"""
    data = make_data(NoiseCase("holo4", 1e5, "weak", "floats", "tiny"))
    fy, fx = data.stored.shape[-2:]
    dead = np.random.default_rng(3).random((fy, fx)) < 0.02
    mask = (~dead).astype(np.float32)
    zeros = data.stored.copy()
    zeros[..., dead] = 0.0
    starts = [_run_start(data, Path(tempfile.mkdtemp()), frames, m).problem.params["delta"]
              for frames, m in ((zeros, mask), (data.stored, None), (zeros, None))]
    a, clean, unmasked = (corr(to_host(x), data.truth["delta"]) for x in starts)
    assert a >= clean - 0.05      # measured 0.523, clean frames 0.527, every pixel -0.035
    assert a > unmasked + 0.05
    assert a > unmasked + 0.05


def _default_start(data, stored, folder) -> Reconstruction:
    cfg = from_toml(example_config(data.case.example))
    for key, value in {"run.epochs": 1, "run.checkpoint_every": 0, "run.save_tiff": False,
                       "run.backend": "numpy", "run.output_dir": str(folder)}.items():
        set_value(cfg, key, value)
    ds = Dataset.from_arrays(stored.astype(np.float32), data.geometry, probe=data.probe,
                             truth=dict(data.truth))
    return Reconstruction(cfg, ds, base_dir=folder)


def test_held_out_pixels_do_not_shape_the_trials_start():
    """Four-distance holography holds detector pixels out to choose the weight: the retrieval the
    trial fits start from never saw them (garbage there changes nothing; they only judge the
    weights), the final fit's start (retrieved from every pixel, as a rerun of config.toml
    builds it) did. Before, the start had fitted their noise, and every fit's validation loss
    rose from its first epoch."""
    data = make_data(NoiseCase("holo4", 1e5, "weak", "floats", "tiny"))
    first = _default_start(data, data.stored, Path(tempfile.mkdtemp()))
    assert first.holdout.unit == "pixels" and first.every_pixel_start is not None
    held = first.holdout.pixels.astype(bool)
    spoiled = data.stored.copy()
    garbage = np.random.default_rng(7).normal(0, 0.3, spoiled[..., held].shape)
    spoiled[..., held] += garbage - garbage.mean(axis=-1, keepdims=True)   # the mean level kept
    second = _default_start(data, spoiled, Path(tempfile.mkdtemp()))
    assert np.array_equal(second.holdout.pixels, first.holdout.pixels)
    method, ratio = first.config.init.guess, first.config.init.absorption_ratio
    assert method != "vacuum"
    a, b = (guess_object(r.problem, method, ratio) for r in (first, second))
    for key in ("delta", "beta"):
        x, y = to_host(a[key]), to_host(b[key])
        assert np.abs(x - y).max() <= 1e-5 * np.abs(x).max(), key
    x, y = (to_host(r.every_pixel_start["delta"]) for r in (first, second))
    assert np.abs(x - y).max() > 0.01 * np.abs(x).max()


@pytest.mark.parametrize("ratio", [None, 0.1])
def test_ctf_forward_and_adjoint_are_a_pair(ratio):
    """Dot-product test of the CTF operator the weighted solve is built on, in real space:
    <A x, g> = <x, A^T g> for real unknowns ``x`` (K, ny, nx) and holograms ``g`` (D, ny, nx)."""
    from slicewise.engine.retrieval.ctf import CTFInverse  # noqa: PLC0415

    d = _distances(FOUR)
    inv = CTFInverse((len(d), 32, 48), d, LAM, PIX, ratio=ratio)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((inv.n_unknowns, 32, 48))
    g = rng.standard_normal((len(d), 32, 48))
    ax = np.fft.ifft2(inv.forward(np.fft.fft2(x))).real
    atg = np.fft.ifft2(inv.adjoint(np.fft.fft2(g))).real
    lhs, rhs = float((ax * g).sum()), float((x * atg).sum())
    assert lhs == pytest.approx(rhs, rel=1e-12)
