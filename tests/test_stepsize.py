"""Scale-free step sizes: the curvature step of a quadratic is exact at any scale; the schedule."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.recon.setup import schedule
from slicewise.engine.recon.setup import stepsize


@pytest.mark.parametrize("scale", [1e-9, 1e-3, 1.0, 1e4])
def test_curvature_step_is_exact_on_quadratics_of_any_scale(scale):
    """L(x) = 0.5 sum h_i (x_i - a_i)^2 with a ~ scale: the optimal steepest-descent step is the
    Rayleigh quotient g.g / g.H g, whatever the units of x (12 decades here)."""
    rng = np.random.default_rng(0)
    a = scale * rng.uniform(0.5, 1.5, 50)
    h = rng.uniform(1.0, 4.0, 50) / scale ** 2 * 7.3  # loss of order one, any units

    def evaluate(trial):
        x = trial["x"]
        return 0.5 * float(np.sum(h * (x - a) ** 2)), {"x": h * (x - a)}

    x0 = np.zeros(50)
    scales, f0, grads = stepsize.estimate_scales(evaluate, {"x": x0}, ["x"])
    g = grads["x"]
    t_exact = float(g @ g / (g @ (h * g)))
    s = scales["x"]
    assert s.t == pytest.approx(t_exact, rel=1e-6)
    assert s.max_change == pytest.approx(t_exact * np.abs(g).max(), rel=1e-6)
    assert 0 < s.decrease < 1 and s.evals <= 6
    # learning rates in each optimiser's units
    lr = stepsize.learning_rates(scales, "lbfgs")["x"]
    assert lr == pytest.approx(s.max_change)
    assert stepsize.learning_rates(scales, "adam")["x"] == pytest.approx(stepsize.ADAM_FRACTION * lr)


def test_curvature_step_survives_non_finite_losses_and_flat_directions():
    # NaN beyond t = 1e-3: the trial shrinks until the parabola is measured
    phi = lambda t: (1 - t) ** 2 * 1e6 if t < 1e-3 else float("nan")  # noqa: E731
    t, ft, _ = stepsize.curvature_step(phi, 1e6, 2e6)
    assert 0 < t < 1e-3 and ft < 1e6
    assert stepsize.curvature_step(lambda t: 1.0, 1.0, 0.0)[0] == 0.0  # zero gradient: no step


def _ds(n_angles, n_spots, frame=(16, 16), modality="farfield"):
    inten = np.ones((n_angles, n_spots) + frame, np.float32)
    kw = dict(positions_px=np.zeros((n_spots, 2))) if modality == "farfield" else \
        dict(distances_m=np.linspace(1e-3, 2e-3, n_spots))
    return Dataset.from_arrays(inten, Geometry(modality=modality, energy_ev=1e4, pixel_size_m=1e-8,
                                               angles_rad=np.linspace(0, np.pi, n_angles,
                                                                      endpoint=False), **kw))


def test_curvature_step_stops_when_it_comes_back_to_a_tried_step():
    """A line that falls faster than linear at first (concave: the parabola through 0 and a trial
    has no minimum) and then rises steeply, as the loss along a weak absorption's gradient does:
    the trials go 0.1 -> 1 -> 10 -> back to 0.1. The search stops there with its best trial
    instead of cycling to the iteration limit (it took all 10 evaluations before)."""
    for b, c in ((1.0, 1.0), (5.0, 2.0)):
        def phi(t, b=b, c=c):
            return 1.0 - t - b * t * t + c * t ** 4
        t, predicted, evals = stepsize.curvature_step(phi, 1.0, 1.0)
        assert evals <= 4, evals
        ts = np.linspace(0, 3, 3001)
        t_min = ts[np.argmin([phi(u) for u in ts])]
        assert 0.5 * t_min <= t <= 2 * t_min, (t, t_min)
        assert phi(t) < 1.0  # a step that lowers the loss


def test_schedule_chooses_lbfgs_for_one_view_and_minibatches_for_tomography():
    one = schedule.choose_schedule("auto", None, None, _ds(1, 50), True, (1, 40, 40), 8 * 2**30)
    assert (one.kind, one.batch_angles, one.batch_spots) == ("lbfgs", 0, 0)
    tomo = schedule.choose_schedule("auto", None, None, _ds(64, 4, modality="nearfield"), False,
                                    (16, 16, 16), 8 * 2**30)
    assert tomo.kind == "adam" and tomo.batch_angles == 2 and tomo.batch_spots == 0  # 32 updates
    # an explicit minibatch selects a stochastic optimiser; explicit settings are kept
    mb = schedule.choose_schedule("auto", None, 10, _ds(1, 50), True, (1, 40, 40), 8 * 2**30)
    assert (mb.kind, mb.batch_spots) == ("adam", 10)
    # many overlapping positions, 2D or multislice: Adam on minibatches (unless the probe is blind)
    for depth in (1, 16):
        many = schedule.choose_schedule("auto", None, None, _ds(1, 289), True, (depth, 128, 128), 8 * 2**30)
        assert many.kind == "adam" and 0 < many.batch_spots < 289, (depth, many)
        few = schedule.choose_schedule("auto", None, None, _ds(1, 36), True, (depth, 32, 32), 8 * 2**30)
        assert few.kind == "lbfgs", (depth, few)
        blind = schedule.choose_schedule("auto", None, None, _ds(1, 289), True, (depth, 128, 128),
                                         8 * 2**30, blind_probe=True)
        assert blind.kind == "lbfgs", (depth, blind)
    # too little memory for the full batch: Adam, about 16 minibatches per epoch
    big = schedule.choose_schedule("auto", None, None, _ds(1, 400), True, (1, 40, 40), 2**20)
    assert big.kind == "adam" and 0 < big.batch_spots <= 25


def test_a_watched_run_takes_more_minibatches_of_a_large_scan_and_twice_adams_object_rate():
    """With the validation loss watching (held-out data, early stop), 2D scans of more than 512
    positions get about 32 minibatches per epoch instead of 16 (never fewer than 16 positions
    each), and Adam's object rates twice the usual share of the measured step; the probe's rate,
    L-BFGS and tomography's batches are unchanged."""
    args = ("auto", None, None, _ds(1, 1364), True, (1, 119, 119), 8 * 2**30)
    plain, watched = schedule.choose_schedule(*args), schedule.choose_schedule(*args, watched=True)
    assert (plain.batch_spots, watched.batch_spots) == (86, 43)
    small = [schedule.choose_schedule("auto", None, None, _ds(1, 100), True, (1, 40, 40), 8 * 2**30,
                                      watched=w).batch_spots for w in (False, True)]
    assert small == [16, 16]
    tomo = schedule.choose_schedule("auto", None, None, _ds(64, 4, modality="nearfield"), False,
                                    (16, 16, 16), 8 * 2**30, watched=True)
    assert (tomo.batch_angles, tomo.batch_spots) == (2, 0)
    scales = {n: stepsize.LineScale(1.0, 1e-6, 0.5, 3) for n in ("delta", "beta", "probe")}
    usual = stepsize.learning_rates(scales, "adam")
    more = stepsize.learning_rates(scales, "adam", watched=True)
    assert more["delta"] == pytest.approx(stepsize.ADAM_WATCHED_FACTOR * usual["delta"])
    assert more["beta"] == pytest.approx(stepsize.ADAM_WATCHED_FACTOR * usual["beta"])
    assert more["probe"] == usual["probe"]
    assert stepsize.learning_rates(scales, "lbfgs", watched=True) == \
        stepsize.learning_rates(scales, "lbfgs")


def test_safe_adam_floor_keeps_a_floor_whose_first_step_lowers_the_loss_and_cuts_one_that_raises_it():
    """Loss sum(w (x - x0)^2) at x = x0 + d: Adam's first step moves every element by the rate
    against its gradient's sign. From d = 1e-3 a floor of 1e-3 overshoots nothing (kept); from
    d = 1e-6 it raises the loss (1e-3 >> 2e-6), and so do 1e-4 and 1e-5 -- the result is 1e-6,
    the first tenth whose step does not raise it; never below the measured rate."""
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=50)
    w = rng.uniform(0.5, 2.0, size=50)

    def loss(x):
        return float((w * (x - x0) ** 2).sum())

    for d, expect in ((1e-3, 1e-3), (1e-6, 1e-6)):
        x = x0 + d * np.sign(rng.normal(size=50))
        g = 2 * w * (x - x0)
        rate = stepsize.safe_adam_floor(loss, x, g, loss(x), 1e-3, 1e-9, 1e-2)
        assert rate == pytest.approx(expect), (d, rate)
        assert loss(x - rate * g / (np.abs(g) + 1e-2 * np.abs(g).max())) <= loss(x)
    x = x0 + 1e-9 * np.sign(rng.normal(size=50))
    g = 2 * w * (x - x0)
    # every trial (1e-3 .. 1e-6) raises the loss: the measured rate is kept, not a smaller one
    assert stepsize.safe_adam_floor(loss, x, g, loss(x), 1e-3, 3e-8, 1e-2) == 3e-8
    assert stepsize.safe_adam_floor(loss, x, g, loss(x), 1e-3, 5e-4, 1e-2) == 5e-4
