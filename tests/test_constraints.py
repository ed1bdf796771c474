"""Constraints: projections on plain arrays keep dtypes and do what they promise."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.engine.recon.loop import constraints as K

RNG = np.random.default_rng(5)


def test_nonnegative_out_of_place_and_in_place():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    y = K.nonnegative(x)
    assert y.dtype == np.float32 and y.min() >= 0 and np.any(x < 0)
    np.testing.assert_array_equal(y, np.where(x > 0, x, 0))
    z = K.nonnegative(x, inplace=True)
    assert z is x and x.min() >= 0
    with pytest.raises(TypeError, match="amplitude_at_most"):
        K.nonnegative(np.ones(3, complex))


def test_amplitude_at_most_keeps_phase():
    t = (RNG.uniform(0, 2, (3, 4)) * np.exp(1j * RNG.uniform(-3, 3, (3, 4)))).astype(np.complex64)
    t[0, 0] = 0
    u = K.amplitude_at_most(t)
    assert u.dtype == np.complex64 and np.abs(u).max() <= 1 + 1e-6
    big = np.abs(t) > 1
    np.testing.assert_allclose(np.angle(u[big]), np.angle(t[big]), atol=1e-6)
    np.testing.assert_array_equal(u[~big], t[~big])
    assert K.amplitude_at_most(t, inplace=True) is t and np.abs(t).max() <= 1 + 1e-6


def test_support_mask_auto_finds_the_object():
    vol = np.zeros((6, 16, 16))
    vol[2:4, 5:11, 5:11] = 1e-6  # a delta-like block
    noisy = vol + 1e-8 * RNG.standard_normal(vol.shape)
    mask = K.support_mask_auto(noisy, threshold=0.2, sigma_px=1.0)
    assert mask.dtype == bool and mask.shape == vol.shape
    assert mask[2:4, 6:10, 6:10].all()          # the object is inside
    assert not mask[:, 0:2, :].any() and not mask[:, :, 14:].any()  # far background is out
    assert not mask[0:1, 0:1, 0:1].any()
    # a stack of volumes is smoothed per volume, not across the leading axis
    stacked = K.support_mask_auto(np.stack([noisy, 0 * noisy]), 0.2, 1.0)
    np.testing.assert_array_equal(stacked[0], mask)
    # complex contrast and an all-zero start
    assert K.support_mask_auto(1 - np.exp(1j * vol * 1e6), 0.2).shape == vol.shape
    assert K.support_mask_auto(np.zeros((2, 3, 4)), 0.5).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        K.support_mask_auto(vol, 1.5)


def test_apply_support_fill_values():
    x = RNG.standard_normal((2, 3, 4))
    mask = np.zeros((3, 4), bool)
    mask[1:, 1:3] = True
    y = K.apply_support(x, mask)
    assert np.all(y[:, ~mask] == 0) and np.all(y[:, mask] == x[:, mask])
    t = np.exp(1j * x).astype(np.complex64)
    u = K.apply_support(t, mask, fill=1.0)
    assert u.dtype == np.complex64 and np.all(u[:, ~mask] == 1)
    assert K.apply_support(t, mask, fill=1.0, inplace=True) is t and np.all(t[:, ~mask] == 1)


def test_fix_probe_power_over_modes():
    p = (RNG.standard_normal((3, 8, 8)) + 1j * RNG.standard_normal((3, 8, 8))).astype(np.complex64)
    ratio = np.abs(p[0]).sum() / np.abs(p[1]).sum()
    q = K.fix_probe_power(p, 123.0)
    assert q.dtype == np.complex64
    assert K.probe_power(q) == pytest.approx(123.0, rel=1e-5)
    assert np.abs(q[0]).sum() / np.abs(q[1]).sum() == pytest.approx(ratio, rel=1e-5)
    zero = np.zeros((1, 4, 4), complex)
    assert K.fix_probe_power(zero, 5.0) is zero
    assert K.fix_probe_power(p, 2.0, inplace=True) is p and K.probe_power(p) == pytest.approx(2.0,
                                                                                            rel=1e-5)
    with pytest.raises(ValueError):
        K.fix_probe_power(p, -1.0)


def test_bound_position_step():
    old = RNG.uniform(0, 50, (5, 2)).astype(np.float32)
    step = np.array([[0.1, 0.0], [3.0, 4.0], [0.0, -2.0], [0.0, 0.0], [-0.3, 0.4]], np.float32)
    new = K.bound_position_step(old + step, old, 1.0)
    moved = new - old
    assert new.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), [0.1, 1.0, 1.0, 0.0, 0.5], atol=1e-5)
    np.testing.assert_allclose(moved[1], [0.6, 0.8], atol=1e-5)  # direction kept
    np.testing.assert_array_equal(K.bound_position_step(old + step, old, 0.0), old)
    with pytest.raises(ValueError):
        K.bound_position_step(old, old, -1)


def test_remove_global_shift():
    old = RNG.uniform(0, 50, (6, 2))
    new = old + np.array([2.0, -1.0]) + 0.1 * RNG.standard_normal((6, 2))
    fixed = K.remove_global_shift(new, old)
    np.testing.assert_allclose((fixed - old).mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(fixed - old, (new - old) - (new - old).mean(axis=0), atol=1e-12)
