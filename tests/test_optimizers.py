"""Optimisers: convergence on small complex/real problems, real stays real, state round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slicewise.engine import ops
from slicewise.engine.autodiff import value_and_grad
from slicewise.engine.recon.loop.optimizers import LBFGS, Adam, Momentum, make_optimizer

RNG = np.random.default_rng(7)
M, N = 30, 8
A = (RNG.standard_normal((M, N)) + 1j * RNG.standard_normal((M, N))) / np.sqrt(M)
Z_TRUE = RNG.standard_normal(N) + 1j * RNG.standard_normal(N)
R_TRUE = RNG.standard_normal(3)
B = A @ Z_TRUE


def lsq_loss(p):
    """Complex least squares in ``z`` plus a real quadratic in ``r`` (mixed real/complex)."""
    res = ops.sub(ops.sum(ops.mul(A, p["z"]), axis=1), B)  # A @ z with broadcasting
    return ops.add(ops.sum(ops.abs2(res)), ops.sum(ops.abs2(ops.sub(p["r"], R_TRUE))))


def rosenbrock(p):
    x = p["x"]
    a, b = x[:-1], x[1:]
    return ops.sum(ops.add(ops.mul(100.0, ops.abs2(ops.sub(b, ops.mul(a, a)))),
                           ops.abs2(ops.sub(1.0, a))))


VG_LSQ = value_and_grad(lsq_loss)
VG_ROS = value_and_grad(rosenbrock)


def lsq_params(dtype=np.complex128):
    return {"z": np.zeros(N, dtype=dtype), "r": np.zeros(3, dtype=np.zeros(1, dtype).real.dtype)}


def run(opt, vg, params, steps):
    loss, grads = vg(params)
    for _ in range(steps):
        params = opt.step(params, grads, closure=vg, loss=loss)
        loss, grads = vg(params)
    return params, loss


@pytest.mark.parametrize("make,steps", [
    (lambda: Adam({"z": 0.05, "r": 0.05}), 400),
    (lambda: Momentum({"z": 0.05, "r": 0.05}, momentum=0.8), 300),
    (lambda: LBFGS({"z": 0.1, "r": 0.1}, history=8), 60),
])
def test_complex_least_squares_converges(make, steps):
    p, loss = run(make(), VG_LSQ, lsq_params(), steps)
    assert loss < 1e-6, loss
    np.testing.assert_allclose(p["z"], Z_TRUE, atol=1e-2)
    assert p["r"].dtype == np.float64  # a real parameter stays real


def test_lbfgs_solves_rosenbrock():
    opt = LBFGS({"x": 0.1}, history=10)
    p, loss = run(opt, VG_ROS, {"x": np.full(4, -1.0)}, 200)
    assert loss < 1e-8, loss
    np.testing.assert_allclose(p["x"], 1.0, atol=1e-4)


def test_adam_matches_textbook_and_descends_rosenbrock():
    x0 = np.full(3, -1.0)
    x, m, v = x0.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, 201):  # Kingma & Ba, absolute eps (negligible here)
        g = VG_ROS({"x": x})[1]["x"]
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        x -= 0.02 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    # the textbook's eps is negligible; the default relative eps (1e-2 of the largest sqrt(v))
    # damps only elements with far smaller gradients than the largest
    p, _ = run(Adam({"x": 0.02}, eps=1e-8), VG_ROS, {"x": x0.copy()}, 200)
    np.testing.assert_allclose(p["x"], x, rtol=1e-6, atol=1e-8)
    p, loss = run(Adam({"x": 0.02}), VG_ROS, {"x": x0.copy()}, 1500)
    assert loss < 1.0 < VG_ROS({"x": x0})[0] / 100, loss  # from 808 to below 1


def test_adam_is_invariant_to_loss_scale():
    """Relative eps: per-pixel normalisation (tiny gradients) does not change Adam's steps."""
    def scaled(factor):
        vg = value_and_grad(lambda p: ops.mul(lsq_loss(p), factor))
        return run(Adam({"z": 0.05, "r": 0.05}), vg, lsq_params(), 20)[0]

    a, b = scaled(1.0), scaled(1e-12)
    np.testing.assert_allclose(a["z"], b["z"], rtol=1e-6)


def test_single_precision_and_real_params_stay_real():
    p = lsq_params(np.complex64)
    grads = {"z": np.ones(N, np.complex64), "r": np.ones(3, np.complex64) * (1 + 2j)}
    for opt in (Adam({"z": 0.1, "r": 0.1}), Momentum({"z": 0.1, "r": 0.1})):
        q = {k: v.copy() for k, v in p.items()}
        opt.step(q, grads)
        assert q["z"].dtype == np.complex64 and q["r"].dtype == np.float32
        assert np.all(q["r"] < 0)  # moved against the real part of the gradient


def test_lbfgs_keeps_each_parameters_precision_whatever_the_gradients():
    """A double-precision gradient of a single-precision parameter must not turn the parameter
    into double precision (a finished run's file would hold float64 that a resumed run rounds
    back to float32, moving every voxel by an ulp)."""
    p = lsq_params(np.complex64)

    def closure(q):
        val, g = value_and_grad(lsq_loss)({k: v.astype(np.result_type(v, np.float64))
                                           for k, v in q.items()})
        return val, g  # float64 / complex128 gradients

    opt = LBFGS({"z": 0.1, "r": 0.1})
    for _ in range(3):
        loss, g = closure(p)
        p = opt.step(p, g, closure=closure, loss=loss)
        assert p["z"].dtype == np.complex64 and p["r"].dtype == np.float32


def test_zero_lr_freezes_and_set_lr_validates():
    opt = Adam({"z": 0.1, "r": 0.1})
    opt.set_lr("r", 0.0)
    p = lsq_params()
    p, _ = run(opt, VG_LSQ, p, 5)
    assert np.all(p["r"] == 0) and np.any(p["z"] != 0)
    with pytest.raises(ValueError, match="finite number >= 0"):
        opt.set_lr("z", -1)
    with pytest.raises(ValueError, match="no learning rate for parameter 'q'"):
        opt.step(p, {"q": np.ones(2)})
    with pytest.raises(ValueError, match="closure"):
        LBFGS({"z": 1.0}).step(p, {"z": np.ones(N)})


@pytest.mark.parametrize("make", [lambda: Adam({"z": 0.05, "r": 0.02}),
                                  lambda: Momentum({"z": 0.02, "r": 0.02}),
                                  lambda: LBFGS({"z": 0.1, "r": 0.1}, history=4)],
                         ids=["adam", "momentum", "lbfgs"])
def test_state_round_trip_continues_identically(make):
    opt = make()
    p, _ = run(opt, VG_LSQ, lsq_params(), 6)
    state = opt.state_dict()
    assert state["kind"] == opt.kind
    p2 = {k: v.copy() for k, v in p.items()}
    fresh = make()
    fresh.load_state_dict(state)
    a, _ = run(opt, VG_LSQ, p, 4)
    b, _ = run(fresh, VG_LSQ, p2, 4)
    np.testing.assert_allclose(a["z"], b["z"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a["r"], b["r"], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="optimiser state is for"):
        (Momentum if opt.kind != "momentum" else Adam)({"z": 1.0}).load_state_dict(state)


def test_load_state_keeps_current_lrs_unless_asked():
    opt = Adam({"z": 0.5})
    state = opt.state_dict()
    other = Adam({"z": 0.1})
    other.load_state_dict(state)
    assert other.lrs["z"] == 0.1
    other.load_state_dict(state, restore_lrs=True)
    assert other.lrs["z"] == 0.5


def test_make_optimizer():
    assert isinstance(make_optimizer("adam", {"delta": 1e-7}), Adam)
    assert make_optimizer("momentum", {}, momentum=0.5).momentum == 0.5
    assert make_optimizer("lbfgs", {}, history=3).history == 3
    with pytest.raises(ValueError, match="unknown optimiser"):
        make_optimizer("sgd", {})


def test_lbfgs_first_step_is_bounded_by_lr_whatever_the_gradient_scale():
    for factor in (1.0, 1e-9, 1e9):
        vg = value_and_grad(lambda p: ops.mul(lsq_loss(p), factor))
        opt = LBFGS({"z": 0.01, "r": 0.02})
        p = lsq_params()
        loss, grads = vg(p)
        opt.step(p, grads, closure=vg, loss=loss)
        assert 0 < np.abs(p["z"]).max() <= 0.01 + 1e-12 and np.abs(p["r"]).max() <= 0.02 + 1e-12
        assert opt.last_eval[0] < loss


def test_lbfgs_survives_projection_and_failed_line_search():
    opt = LBFGS({"r": 0.5})
    vg = value_and_grad(lambda p: ops.sum(ops.abs2(ops.sub(p["r"], R_TRUE))))
    p = {"r": np.zeros(3)}
    loss, grads = vg(p)
    for _ in range(30):  # projection onto r >= 0 between steps
        opt.step(p, grads, closure=vg, loss=loss)
        p["r"] = np.maximum(p["r"], 0)
        loss, grads = vg(p)
    np.testing.assert_allclose(p["r"], np.maximum(R_TRUE, 0), atol=1e-6)
    before = p["r"].copy()
    nan_closure = lambda q: (float("nan"), grads)  # noqa: E731
    opt.step(p, {"r": grads["r"] + 1.0}, closure=nan_closure, loss=loss)
    np.testing.assert_array_equal(p["r"], before)  # no acceptable step: nothing moves
    assert opt.last_eval is None


def test_adam_damps_elements_whose_gradients_are_far_below_the_largest():
    """A voxel the probe barely lights sees gradients 1e-4 of the others' (noise): with the
    relative eps it moves ~1e-2 of the learning rate per step, not Adam's full sign-like step."""
    rng = np.random.default_rng(0)
    p = {"x": np.zeros(2)}
    opt = Adam({"x": 0.1})
    for _ in range(50):
        opt.step(p, {"x": np.array([1.0, 1e-4 * rng.standard_normal()])})
    assert abs(p["x"][0]) > 4.0                # 50 full steps of 0.1 against the gradient
    assert abs(p["x"][1]) < 0.05 * abs(p["x"][0])
    q = {"x": np.zeros(2)}
    textbook = Adam({"x": 0.1}, eps=1e-8)
    rng = np.random.default_rng(0)
    for _ in range(50):
        textbook.step(q, {"x": np.array([1.0, 1e-4 * rng.standard_normal()])})
    assert abs(q["x"][1]) > 10 * abs(p["x"][1])   # without it the noise walks the voxel off


def test_adam_boost_starts_the_objects_rates_higher_and_decays_to_them():
    """``boost`` multiplies the object's rates at the first step and decays to 1 with a time
    constant of ``boost_updates`` steps; the probe's rate is never boosted."""
    grads = {"delta": np.ones(3), "probe": np.ones(3, complex)}
    plain, boosted = Adam({"delta": 0.1, "probe": 0.1}), Adam({"delta": 0.1, "probe": 0.1},
                                                              boost=2.0, boost_updates=10)
    p = {"delta": np.zeros(3), "probe": np.zeros(3, complex)}
    q = {"delta": np.zeros(3), "probe": np.zeros(3, complex)}
    plain.step(p, grads)
    boosted.step(q, grads)
    np.testing.assert_allclose(q["delta"], 2 * p["delta"], rtol=1e-12)   # first step: twice
    np.testing.assert_allclose(q["probe"], p["probe"], rtol=1e-12)       # probe: unchanged
    assert boosted.rate_factor("delta", 11) == pytest.approx(1 + math.exp(-1))
    assert boosted.rate_factor("beta", 201) == pytest.approx(1.0, abs=1e-8)
    assert boosted.rate_factor("positions", 1) == 1.0
    for _ in range(300):  # late steps: the same size as without the boost
        before_p, before_q = p["delta"].copy(), q["delta"].copy()
        plain.step(p, grads)
        boosted.step(q, grads)
    np.testing.assert_allclose(q["delta"] - before_q, p["delta"] - before_p, rtol=1e-9)
    assert q["delta"][0] < p["delta"][0] - 0.5   # ~ (2 - 1) * 10 steps of 0.1 further along


def test_adam_boost_is_kept_in_the_state_and_checked():
    state = Adam({"delta": 0.1}, boost=2.0, boost_updates=5).state_dict()
    fresh = Adam({"delta": 0.1})
    fresh.load_state_dict(state)
    assert (fresh.boost, fresh.boost_updates) == (2.0, 5.0)
    assert make_optimizer("adam", {"delta": 0.1}, boost=3.0).boost == 3.0
    with pytest.raises(ValueError, match="boost"):
        Adam({"delta": 0.1}, boost=0.5)
