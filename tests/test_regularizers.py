"""Regularisers: values on known volumes, finite-difference gradients, adjoint checks."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.engine.autodiff import value_and_grad
from slicewise.engine.gradcheck import check_adjoint, check_grad
from slicewise.engine.recon.loop.regularizers import l1, total_variation_3d

RNG = np.random.default_rng(11)


def rvol(*shape):
    return RNG.standard_normal(shape)


def cvol(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def tv_reference(x, eps, periodic):
    """Straight NumPy transcription of the documented formula."""
    diffs = []
    for ax in (-3, -2, -1):
        d = np.roll(x, -1, axis=ax) - x
        if not periodic:
            idx = [slice(None)] * x.ndim
            idx[ax] = -1
            d[tuple(idx)] = 0
        diffs.append(np.abs(d) ** 2)
    return np.mean(np.sqrt(sum(diffs) + eps ** 2) - eps)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
@pytest.mark.parametrize("make", [lambda: rvol(3, 4, 5), lambda: cvol(3, 4, 5),
                                  lambda: rvol(2, 1, 4, 5)], ids=["real", "complex", "stack_nz1"])
def test_tv_value_gradient_adjoint(boundary, make):
    x = make()
    eps = 1e-2
    tv = lambda z: total_variation_3d(z, eps=eps, boundary=boundary)  # noqa: E731
    assert float(tv(x)) == pytest.approx(tv_reference(x, eps, boundary == "periodic"), rel=1e-12)
    check_grad(tv, [x], rtol=1e-6)
    check_adjoint(tv, x, linear=False, rtol=1e-6)


def test_tv_known_values():
    x = np.zeros((2, 3, 4))
    assert float(total_variation_3d(x + 5.0)) == 0.0  # constant volume costs nothing
    x[..., 2:] = 1.0  # one step of height 1 across the x axis
    n = x.size
    assert float(total_variation_3d(x, eps=1e-12)) == pytest.approx(2 * 3 / n, rel=1e-9)
    # periodic: the wrap-around makes a second edge
    assert float(total_variation_3d(x, eps=1e-12, boundary="periodic")) == pytest.approx(
        2 * 2 * 3 / n, rel=1e-9)
    assert float(total_variation_3d(x, eps=1e-12, reduction="sum")) == pytest.approx(6, rel=1e-9)


def test_tv_gradient_finite_at_flat_regions_and_single_precision():
    x = np.zeros((2, 4, 4), np.float32)
    x[:, 1:3, 1:3] = 1e-6  # typical delta scale
    _, g = value_and_grad(lambda z: total_variation_3d(z, eps=1e-9))(x)
    assert g.dtype == np.float32 and np.all(np.isfinite(g))
    assert g[0, 0, 0] == 0  # flat surroundings get no gradient
    # a descent step reduces TV
    assert float(total_variation_3d(x - 1e-7 * g / np.abs(g).max(), eps=1e-9)) < float(
        total_variation_3d(x, eps=1e-9))


def test_tv_input_checks():
    with pytest.raises(ValueError, match="needs a volume"):
        total_variation_3d(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="boundary"):
        total_variation_3d(np.zeros((2, 4, 4)), boundary="mirror")
    with pytest.raises(ValueError, match="eps must be > 0"):
        total_variation_3d(np.zeros((2, 4, 4)), eps=0)


@pytest.mark.parametrize("make", [lambda: rvol(3, 4, 5), lambda: cvol(3, 4, 5)],
                         ids=["real", "complex"])
def test_l1_value_gradient_adjoint(make):
    x = make()
    x[np.abs(x) < 0.05] = 0.5  # keep finite differences away from the kink at 0
    assert float(l1(x)) == pytest.approx(np.mean(np.abs(x)), rel=1e-12)
    assert float(l1(x, reduction="sum")) == pytest.approx(np.sum(np.abs(x)), rel=1e-12)
    check_grad(l1, [x], rtol=1e-6)
    check_adjoint(l1, x, linear=False, rtol=1e-6)


def test_l1_gradient_zero_at_zero():
    x = np.array([[-2.0, 0.0, 3.0]])
    _, g = value_and_grad(l1)(x)
    np.testing.assert_array_equal(g, np.array([[-1, 0, 1]]) / 3)
    _, g = value_and_grad(l1)(np.zeros(3, complex))
    assert np.all(g == 0)
    with pytest.raises(ValueError, match="reduction"):
        l1(x, reduction="max")
