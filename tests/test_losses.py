"""Losses: values against ops-built references, finite-difference gradients, adjoint checks."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.engine import ops
from slicewise.engine.autodiff import value_and_grad
from slicewise.engine.gradcheck import check_adjoint, check_grad
from slicewise.engine.recon.loop import losses as L

RNG = np.random.default_rng(3)
SHAPE = (2, 3, 4, 5)  # (angles, spots, fy, fx)


def field(shape=SHAPE):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def intensity(shape=SHAPE):
    return RNG.uniform(0.5, 3.0, shape)


MASKS = {
    "none": None,
    "bool": RNG.uniform(size=SHAPE[-2:]) > 0.3,
    "float": RNG.uniform(0.2, 1.0, SHAPE[-2:]),
}


def _n(mask):
    return np.prod(SHAPE) if mask is None else np.broadcast_to(mask, SHAPE).astype(float).sum()


def ref_amplitude(i_pred, i_meas, mask, eps):
    r = ops.sub(ops.sqrt(ops.add(i_pred, eps)), np.sqrt(i_meas))
    sq = ops.abs2(r)
    w = 1.0 if mask is None else mask.astype(float)
    return ops.div(ops.sum(ops.mul(sq, w)), _n(mask))


def ref_poisson(i_pred, i_meas, mask, eps):
    # the deviance: 0 at a perfect fit
    ratio = ops.div(ops.add(i_pred, eps), i_meas + eps)
    t = ops.sub(ops.sub(i_pred, i_meas), ops.mul(ops.log(ratio), i_meas))
    w = 1.0 if mask is None else mask.astype(float)
    return ops.div(ops.sum(ops.mul(t, w)), _n(mask))


@pytest.mark.parametrize("mask_kind", list(MASKS))
def test_values_and_gradients_match_ops_references(mask_kind):
    mask = MASKS[mask_kind]
    ip, im, psi = intensity(), intensity(), field()
    for fn, ref, eps in ((L.amplitude_loss, ref_amplitude, 1e-12), (L.poisson_nll, ref_poisson, 1e-9)):
        v, g = value_and_grad(lambda x: fn(x, im, mask, eps=eps))(ip)
        vr, gr = value_and_grad(lambda x: ref(x, im, mask, eps))(ip)
        assert v == pytest.approx(vr, rel=1e-12)
        np.testing.assert_allclose(g, gr, rtol=1e-10, atol=1e-14)
    # field versions equal the intensity versions of |psi|^2
    ipsi = np.abs(psi) ** 2
    assert L.amplitude_loss_from_field(psi, np.sqrt(im), mask) == pytest.approx(
        float(L.amplitude_loss(ipsi, im, mask, eps=0.0)), rel=1e-12)
    assert L.poisson_nll_from_field(psi, im, mask) == pytest.approx(
        float(L.poisson_nll(ipsi, im, mask)), rel=1e-12)


@pytest.mark.parametrize("mask_kind", list(MASKS))
@pytest.mark.parametrize("name", ["amplitude_from_field", "poisson_from_field", "amplitude",
                                  "poisson"])
def test_gradients_match_finite_differences(name, mask_kind):
    mask = MASKS[mask_kind]
    meas = intensity()
    if name == "amplitude_from_field":
        f, x, m = L.amplitude_loss_from_field, field(), np.sqrt(meas)
    elif name == "poisson_from_field":
        f, x, m = L.poisson_nll_from_field, field(), meas
    elif name == "amplitude":
        f, x, m = L.amplitude_loss, intensity(), meas
    else:
        f, x, m = L.poisson_nll, intensity(), meas
    check_grad(lambda z: f(z, m, mask), [x], rtol=1e-6)
    # vjp check: <J v, w> = <v, J^T w> for the scalar output with a random cotangent
    check_adjoint(lambda z: f(z, m, mask), x, linear=False, rtol=1e-6)


@pytest.mark.parametrize("fn,prep", [(L.amplitude_loss_from_field, np.sqrt),
                                     (L.poisson_nll_from_field, lambda i: i)])
def test_probe_modes_sum_incoherently(fn, prep):
    psi = field((2, 3, 2, 4, 5))  # mode axis 2
    meas = intensity()
    loss = lambda z: fn(z, prep(meas), MASKS["bool"], mode_axis=2)  # noqa: E731
    check_grad(loss, [psi], rtol=1e-6)
    i_modes = (np.abs(psi) ** 2).sum(axis=2)
    single = np.sqrt(i_modes).astype(complex)  # one mode carrying the same intensity
    assert float(loss(psi)) == pytest.approx(float(fn(single, prep(meas), MASKS["bool"])), rel=1e-12)


def test_amplitude_from_field_safe_at_zero_and_zero_at_truth():
    psi = field()
    psi[0, 0, :2, :2] = 0
    meas_amp = np.abs(field())
    _, g = value_and_grad(lambda z: L.amplitude_loss_from_field(z, meas_amp))(psi)
    assert np.all(np.isfinite(g)) and np.all(g[0, 0, :2, :2] == 0)
    v, g = value_and_grad(lambda z: L.amplitude_loss_from_field(z, np.abs(psi)))(psi)
    assert v == pytest.approx(0, abs=1e-28)
    np.testing.assert_allclose(g, 0, atol=1e-14)
    psi = field()
    _, g = value_and_grad(lambda z: L.poisson_nll_from_field(z, np.abs(psi) ** 2, eps=0))(psi)
    np.testing.assert_allclose(g, 0, atol=1e-12)


def test_masked_pixels_get_no_gradient_and_empty_mask_refused():
    mask = MASKS["bool"]
    _, g = value_and_grad(lambda z: L.amplitude_loss_from_field(z, np.abs(field()), mask))(field())
    assert np.all(g[..., ~mask] == 0) and np.any(g[..., mask] != 0)
    with pytest.raises(ValueError, match="excludes every pixel"):
        L.amplitude_loss(intensity(), intensity(), np.zeros(SHAPE[-2:], bool))


def test_single_precision_kept_and_plain_arrays_give_values():
    psi = field().astype(np.complex64)
    meas = np.abs(field()).astype(np.float32)
    out = L.amplitude_loss_from_field(psi, meas)  # untraced: a plain 0-d array
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.ndim == 0
    _, g = value_and_grad(lambda z: L.amplitude_loss_from_field(z, meas))(psi)
    assert g.dtype == np.complex64


def test_registry():
    assert set(L.LOSSES) == {"amplitude", "poisson"}
    spec = L.get_loss("amplitude")
    ip, im = intensity(), intensity()
    assert float(spec(ip, im)) == float(L.amplitude_loss(ip, im))
    psi = field()
    assert float(spec.from_field(psi, spec.prepare(im), None, None)) == pytest.approx(
        float(L.amplitude_loss(np.abs(psi) ** 2, im, eps=0)))
    with pytest.raises(ValueError, match="unknown loss"):
        L.get_loss("l2")
