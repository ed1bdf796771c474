"""Physics of the forward models: conservation, analytic Fresnel results, thin-sample limits."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.engine import get_backend, ops
from slicewise.engine.gradcheck import check_grad
from slicewise.engine.models.common import Optics
from slicewise.engine.models.holo import HoloModel
from slicewise.engine.models.ptycho import PtychoModel
from slicewise.engine.physics.farfield import FarField
from slicewise.engine.physics.constants import wavelength_m
from slicewise.engine.physics.propagation import Propagator

BE = get_backend("numpy", "double")
RNG = np.random.default_rng(3)


def test_wavelength_of_10_kev():
    assert wavelength_m(10_000) == pytest.approx(1.2398e-10, rel=1e-4)


@pytest.mark.parametrize("method", ["fresnel", "angular_spectrum"])
def test_propagation_conserves_energy(method):
    psi = RNG.standard_normal((64, 64)) + 1j * RNG.standard_normal((64, 64))
    wl = wavelength_m(8000)
    # pixel well above the wavelength: no evanescent components are lost
    out = Propagator((64, 64), 1e-6, 1e-3, wl, BE, method).fwd(psi)
    assert np.sum(np.abs(out) ** 2) == pytest.approx(np.sum(np.abs(psi) ** 2), rel=1e-6)


@pytest.mark.parametrize("method", ["fresnel", "angular_spectrum"])
def test_forward_then_backward_propagation_returns_the_field(method):
    psi = RNG.standard_normal((32, 48)) + 1j * RNG.standard_normal((32, 48))
    wl, pix, d = wavelength_m(12000), 0.5e-6, 2e-3
    fwd = Propagator(psi.shape, pix, d, wl, BE, method).fwd(psi)
    back = Propagator(psi.shape, pix, -d, wl, BE, method).fwd(fwd)
    np.testing.assert_allclose(back, psi, atol=1e-10)


def test_fresnel_gaussian_beam_width_matches_analytic_w_of_z():
    n, pix = 512, 0.2e-6
    wl = wavelength_m(10000)
    w0 = 3e-6
    y, x = (np.mgrid[:n, :n] - n / 2) * pix
    psi = np.exp(-(x ** 2 + y ** 2) / w0 ** 2)
    z_r = np.pi * w0 ** 2 / wl
    for z in (0.5 * z_r, z_r, 2 * z_r):
        inten = np.abs(Propagator((n, n), pix, z, wl, BE).fwd(psi)) ** 2
        sigma2 = np.sum(inten * x ** 2) / np.sum(inten)  # second moment = w^2 / 4
        w_num = 2 * np.sqrt(sigma2)
        w_ana = w0 * np.sqrt(1 + (z / z_r) ** 2)
        assert w_num == pytest.approx(w_ana, rel=2e-3)


def test_far_field_of_centred_aperture_is_centred():
    n = 64
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    aperture = (x ** 2 + y ** 2 < 8 ** 2).astype(complex)
    inten = np.abs(FarField(BE, centred=True).fwd(aperture)) ** 2
    assert np.unravel_index(np.argmax(inten), inten.shape) == (n // 2, n // 2)
    assert inten.sum() == pytest.approx(np.sum(np.abs(aperture) ** 2), rel=1e-12)


def _thin_object(shape, seed=0):
    rng = np.random.default_rng(seed)
    delta = np.abs(rng.standard_normal(shape)) * 2e-6
    beta = delta * 0.05
    return delta, beta


def test_multislice_with_one_slice_equals_projection_approximation():
    optics = Optics(10000, 50e-9, 1e-6)
    delta, beta = _thin_object((1, 32, 32))
    model = HoloModel((1, 32, 32), optics, BE)
    exit_ = model.exit_waves({"delta": delta, "beta": beta}, [0])
    proj = np.exp(-optics.k * 1e-6 * (beta[0] + 1j * delta[0]))
    np.testing.assert_allclose(exit_[0], proj, atol=1e-12)


def test_thin_sample_limit_multislice_approaches_projection():
    """Many slices of a sample much thinner than its depth of focus act like one projection."""
    pix = 100e-9
    optics_thin = Optics(10000, pix, 5e-9)          # 8 slices x 5 nm = 40 nm total
    delta, beta = _thin_object((8, 32, 32), seed=1)
    model = HoloModel((8, 32, 32), optics_thin, BE)
    exit_ = model.exit_waves({"delta": delta, "beta": beta}, [0])[0]
    proj = np.exp(-optics_thin.k * 5e-9 * (beta.sum(0) + 1j * delta.sum(0)))
    err_thin = np.abs(exit_ - proj).max()
    optics_thick = Optics(10000, pix, 50e-6)       # same object, 400 um total: diffraction matters
    exit_thick = HoloModel((8, 32, 32), optics_thick, BE).exit_waves({"delta": delta, "beta": beta}, [0])[0]
    proj_thick = np.exp(-optics_thick.k * 50e-6 * (beta.sum(0) + 1j * delta.sum(0)))
    err_thick = np.abs(exit_thick - proj_thick).max() / np.abs(1 - proj_thick).max()
    assert err_thin < 1e-5
    assert err_thick > 1e-2


def test_ptycho_far_field_conserves_photons_per_frame():
    optics = Optics(8000, 20e-9, 20e-9)
    delta, beta = _thin_object((3, 40, 40))
    probe = (RNG.standard_normal((2, 16, 16)) + 1j * RNG.standard_normal((2, 16, 16)))
    pos = np.array([[0, 0], [10.3, 12.7], [24, 24]])
    model = PtychoModel((3, 40, 40), (16, 16), optics, BE, positions_px=pos)
    inten = model.predict({"delta": 0 * delta, "beta": 0 * beta, "probe": probe, "positions": pos},
                          [0], [0, 1, 2])
    # vacuum: every frame carries the probe's photons (all modes), whatever the position
    np.testing.assert_allclose(inten.sum(axis=(-2, -1)), np.sum(np.abs(probe) ** 2), rtol=1e-10)


def test_ptycho_model_gradients_object_probe_positions():
    optics = Optics(8000, 20e-9, 200e-9)
    delta, beta = _thin_object((2, 20, 20), seed=4)
    probe = RNG.standard_normal((2, 8, 8)) + 1j * RNG.standard_normal((2, 8, 8))  # two incoherent modes
    pos = np.array([[2.2, 3.1], [9.7, 6.4], [5.0, 11.0]])
    model = PtychoModel((2, 20, 20), (8, 8), optics, BE, positions_px=pos)
    w = RNG.random((1, 3, 8, 8))

    def loss(d, b, p, q):
        return ops.sum(ops.mul(model.predict({"delta": d, "beta": b, "probe": p, "positions": q}, [0],
                                             [0, 1, 2]), w))

    args = [delta, beta, probe, pos]
    check_grad(loss, args, argnum=0, eps=1e-10, rtol=1e-5)
    check_grad(loss, args, argnum=1, eps=1e-10, rtol=1e-5)
    check_grad(loss, args, argnum=2)
    check_grad(loss, args, argnum=3, eps=1e-6, rtol=1e-5)


def test_holotomo_model_gradients_object_and_distances():
    optics = Optics(10000, 100e-9, 100e-9)
    delta, beta = _thin_object((6, 4, 6), seed=5)
    model = HoloModel((6, 4, 6), optics, BE, angles_rad=np.array([0.0, 0.7, 2.0]))
    dist = np.array([1e-3, 2.5e-3])
    w = RNG.random((2, 2, 4, 6))

    def loss(d, b, z):
        return ops.sum(ops.mul(model.predict({"delta": d, "beta": b, "distances": z}, [0, 2], [0, 1]), w))

    check_grad(loss, [delta * 100, beta * 100, dist], argnum=0, eps=1e-9, rtol=1e-5)
    check_grad(loss, [delta * 100, beta * 100, dist], argnum=1, eps=1e-9, rtol=1e-5)
    check_grad(loss, [delta * 100, beta * 100, dist], argnum=2, eps=1e-7, rtol=1e-4)


def test_checkpointed_multislice_gives_identical_gradient():
    optics = Optics(10000, 100e-9, 1e-6)
    delta, beta = _thin_object((6, 16, 16), seed=6)
    w = RNG.random((1, 1, 16, 16))
    from slicewise.engine import value_and_grad

    grads = []
    for block in (0, 2):
        model = HoloModel((6, 16, 16), optics, BE, checkpoint_slices=block)
        f = lambda d: ops.sum(ops.mul(model.predict({"delta": d, "beta": beta,  # noqa: E731
                                                     "distances": np.array([1e-3])}, [0], [0]), w))
        grads.append(value_and_grad(f)(delta * 50)[1])
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)
    # ... and it is a real gradient: every slice of this object changes the detector intensity
    assert np.all(np.abs(grads[0]).reshape(6, -1).max(axis=1) > 0)


def test_ptycho_model_gradients_single_slice():
    """One slice takes a path of its own (no per-slice windows): same gradients."""
    optics = Optics(8000, 20e-9, 200e-9)
    delta, beta = _thin_object((1, 20, 20), seed=8)
    probe = RNG.standard_normal((2, 8, 8)) + 1j * RNG.standard_normal((2, 8, 8))  # two incoherent modes
    pos = np.array([[2.0, 3.0], [9.0, 6.0], [5.0, 11.0], [9.0, 6.0]])
    model = PtychoModel((1, 20, 20), (8, 8), optics, BE, positions_px=pos)
    w = RNG.random((1, 4, 8, 8))

    def loss(d, b, p):
        return ops.sum(ops.mul(model.predict({"delta": d, "beta": b, "probe": p, "positions": pos}, [0],
                                             [0, 1, 2, 3]), w))

    check_grad(loss, [delta, beta, probe], argnum=0, eps=1e-10, rtol=1e-5)
    check_grad(loss, [delta, beta, probe], argnum=1, eps=1e-10, rtol=1e-5)
    check_grad(loss, [delta, beta, probe], argnum=2)


def test_ptycho_windowed_and_whole_object_transmissions_agree():
    """Small minibatches compute the transmission on the probe windows only, large ones on the
    whole object: same intensities and gradients."""
    from slicewise.engine import value_and_grad

    optics = Optics(8000, 20e-9, 200e-9)
    delta, beta = _thin_object((2, 12, 12), seed=9)
    probe = RNG.standard_normal((2, 8, 8)) + 1j * RNG.standard_normal((2, 8, 8))  # two incoherent modes
    pos = np.array([[y, x] for y in (0.0, 2.0, 4.0) for x in (0.0, 2.0, 4.0)])
    model = PtychoModel((2, 12, 12), (8, 8), optics, BE, positions_px=pos, margin_px=0)
    ny, nx = model.padded_shape
    assert 2 * 64 < ny * nx <= len(pos) * 64  # two spots: windows; all nine: whole object
    w = RNG.random((1, 2, 8, 8))
    grads = []
    for spots, pick in (([3, 7], slice(None)), (np.arange(len(pos)), [3, 7])):
        def loss(d, b, spots=spots, pick=pick):
            inten = model.predict({"delta": d, "beta": b, "probe": probe, "positions": pos}, [0], spots)
            return ops.sum(ops.mul(ops.getitem(inten, (slice(None), pick)), w))
        grads.append(value_and_grad(loss, argnums=(0, 1))(delta, beta))
    (v0, (gd0, gb0)), (v1, (gd1, gb1)) = grads
    assert v0 == pytest.approx(v1, rel=1e-12)
    np.testing.assert_allclose(gd0, gd1, rtol=1e-9, atol=1e-12 * np.abs(gd1).max())
    np.testing.assert_allclose(gb0, gb1, rtol=1e-9, atol=1e-12 * np.abs(gb1).max())
