"""Held-out data and the validation loss: what is held out, that the fit never sees it, that its
loss is recorded and stored, and that the run keeps (and stops at) its best estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slicewise.engine.io.results import read_result
from slicewise.engine.recon import config as cfgmod
from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.recon.loop.validation import BestState, choose_holdout
from slicewise.engine.recon.run import Reconstruction
from slicewise.engine.simulate import SimulationConfig, simulate
from small_runs import gold_star, quick_config


def test_scan_positions_are_held_out_spread_and_differently_per_angle():
    h = choose_holdout(0.1, 4, 100, (16, 16), True, seed=0)
    assert h.unit == "frames" and h.held.sum(axis=1).tolist() == [10] * 4
    for row in h.held:   # one per stratum of ten positions: spread over the scan
        assert sorted(np.flatnonzero(row) // 10) == list(range(10))
    assert not all(np.array_equal(h.held[0], r) for r in h.held[1:])  # other positions per angle
    again = choose_holdout(0.1, 4, 100, (16, 16), True, seed=0)
    assert np.array_equal(h.held, again.held)                        # reproducible from the seed
    assert not np.array_equal(h.held, choose_holdout(0.1, 4, 100, (16, 16), True, seed=1).held)
    assert len(h.train_spots) == 100 and len(h.train_angles) == 4   # nothing dropped in tomography
    flat = choose_holdout(0.1, 1, 300, (16, 16), True, seed=0)
    assert len(flat.train_spots) == 270      # 2D: held positions dropped


def test_full_field_tomography_holds_out_angles_and_one_view_pixel_islands():
    h = choose_holdout(0.1, 36, 2, (32, 32), False, seed=3)
    assert h.unit == "angles" and h.held.all(axis=1).sum() == 4 and len(h.train_angles) == 32
    # automatic: nothing from small scans; asked for: held out all the same
    assert choose_holdout(0.1, 12, 2, (32, 32), False, seed=3, automatic=True).unit == "none"
    assert choose_holdout(0.1, 1, 25, (16, 16), True, seed=3, automatic=True).unit == "none"
    assert choose_holdout(0.1, 1, 90, (16, 16), True, seed=3, automatic=True).unit == "frames"
    assert choose_holdout(0.1, 1, 150, (16, 16), True, seed=3).unit == "frames"
    one = choose_holdout(0.05, 1, 2, (60, 60), False, seed=3)
    assert one.unit == "pixels" and not one.held.any()
    assert one.pixels.sum() == 180 and one.pixels.mean() == 0.05   # scattered single pixels
    assert choose_holdout(0.0, 36, 2, (32, 32), False, seed=3).unit == "none"
    assert choose_holdout(0.05, 1, 1, (4, 4), False, seed=3).unit == "none"  # too little data


def test_weights_of_a_minibatch():
    h = choose_holdout(0.25, 2, 120, (8, 8), True, seed=0)
    a, s = np.array([0, 1]), np.arange(120)
    train, val = h.frame_weights(a, s), h.frame_weights(a, s, held=True)
    np.testing.assert_array_equal(train + val, np.ones((2, 120)))
    np.testing.assert_array_equal(val.astype(bool), h.held)
    kept = np.flatnonzero(~h.held[0])
    assert h.frame_weights([0], kept) is None        # nothing held in it: full weights


def test_best_state_keeps_the_best_estimate():
    best = BestState()
    copies = []
    for epoch, loss in enumerate([3.0, 2.0, 2.5, math.nan, 1.0, 1.5], start=1):
        best.update(epoch, loss, {"x": np.full(2, epoch)}, lambda p: copies.append(1) or dict(p))
    assert best.epoch == 5 and best.loss == 1.0 and best.since_best == 1
    assert best.params["x"].tolist() == [5, 5] and len(copies) == 3   # copied at new bests only


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    return gold_star(tmp_path_factory.mktemp("val") / "star.h5", n=40, step_px=2.0)  # 289 frames


def test_the_fit_never_sees_the_held_out_frames(star, tmp_path):
    rec = Reconstruction(quick_config(star, tmp_path / "o", 2, {"run.validation_share": 0.1,
                                                               "optimizer.kind": "adam",
                                                               "run.batch_spots": 5}))
    held = np.flatnonzero(rec.holdout.held[0])
    assert rec.holdout.unit == "frames" and len(held) >= 2
    seen = set()
    for epoch in range(3):
        for a_idx, s_idx in rec.solver.batches(epoch):
            seen.update(s_idx.tolist())
    assert not seen & set(held.tolist()) and len(seen) == rec.dataset.n_spots - len(held)


def test_a_watched_run_says_why_its_object_rate_is_twice_the_usual_share(star, tmp_path):
    over = {"optimizer.kind": "adam", "run.batch_spots": 5, "optimizer.lr_delta": None,
            "optimizer.lr_beta": None}
    plain = Reconstruction(quick_config(star, tmp_path / "a", 1, over))
    watched = Reconstruction(quick_config(star, tmp_path / "b", 1, {**over,
                                                                    "run.validation_share": 0.1}))
    why = watched.plan.reasons()["optimizer.lr_delta"]
    assert "validation loss watches" in why
    assert "validation" not in plain.plan.reasons()["optimizer.lr_delta"]
    unwatched = Reconstruction(quick_config(star, tmp_path / "c", 1, {
        **over, "run.validation_share": 0.1, "run.early_stop": False}))
    assert "validation" not in unwatched.plan.reasons()["optimizer.lr_delta"]


def test_validation_loss_is_recorded_shown_and_stored(star, tmp_path):
    rec = Reconstruction(quick_config(star, tmp_path / "o", 4, {"run.validation_share": 0.1,
                                                               "run.early_stop": False}))
    events = []
    rec.add_callback(lambda ev: events.append(ev) if ev.kind == "epoch" else None)
    rec.run()
    values = [h["validation"] for h in rec.history]
    assert len(values) == 4 and all(v > 0 and math.isfinite(v) for v in values)
    assert [ev.validation for ev in events] == values
    # the same value as the held-out frames' data loss evaluated directly
    p = rec.problem
    a, s = np.nonzero(rec.holdout.held)
    direct = float(p.data_loss(p.params, np.unique(a), np.unique(s),
                               p.measured_batch(np.unique(a), np.unique(s)), p.mask))
    assert direct == pytest.approx(values[-1], rel=1e-5)
    res = read_result(rec.result_path)
    np.testing.assert_allclose(res["loss"]["validation"], values)
    assert res["best_epoch"] == 0    # early_stop off: the last estimate is the result


@pytest.mark.parametrize("loss", ["amplitude", "poisson"])
def test_the_validation_floor_is_the_amplitude_loss_at_the_noise_level(star, tmp_path, loss):
    """The validation loss is the amplitude misfit whatever the fit's loss, so its noise floor
    (recorded per epoch beside it) is the amplitude loss's, while the fit's misfit is compared
    with its own loss's expected value (Poisson: about twice the amplitude's per photon)."""
    rec = Reconstruction(quick_config(star, tmp_path / loss, 2, {
        "run.validation_share": 0.1, "run.early_stop": False, "loss.kind": loss,
        "data.photons_per_unit": 1e4, "regularization.tv_weight": 0.0}))
    rec.run()
    v = rec.watch.validator
    assert [h["validation_floor"] for h in rec.history][-1] == v.floor
    assert math.isfinite(v.floor) and 0 < v.floor
    if loss == "amplitude":
        assert v.floor == v.expected_misfit
    else:
        assert v.expected_misfit == pytest.approx(2 * v.floor, rel=0.25)


def test_early_stop_keeps_the_best_epoch_and_stops(star, tmp_path, monkeypatch):
    """A validation loss that falls and then rises (scripted, as noise fitting shows it): after
    PATIENCE epochs past its best the run stops; the result holds the best epoch's estimate and
    says so; the checkpoint holds the last, to continue from."""
    from slicewise.engine.recon.loop.validation import MIN_EPOCHS, PATIENCE

    curve = iter([5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0] + [9.0] * 40)
    rec = Reconstruction(quick_config(star, tmp_path / "o", 40, {"run.validation_share": 0.1,
                                                                "regularization.tv_weight": 0.0,
                                                                "optimizer.kind": "adam"}))
    monkeypatch.setattr(rec.watch.validator, "loss", lambda params: next(curve))
    kept = {}
    rec.add_callback(lambda ev: kept.setdefault("e3", rec.snapshot(None).delta)
                     if ev.kind == "epoch" and ev.epoch == 3 else None)
    rec.run()
    assert rec.stopped_early and rec.epoch == max(3 + PATIENCE, MIN_EPOCHS)
    assert rec.state == "finished"
    res = read_result(rec.result_path)
    assert res["best_epoch"] == 3 and res["epoch"] == rec.epoch
    np.testing.assert_array_equal(res["params"]["delta"], kept["e3"])
    ckpt = read_result(rec.checkpoint_path)   # the checkpoint continues from the last epoch
    assert not np.array_equal(ckpt["params"]["delta"], kept["e3"])


def test_one_full_field_view_holds_out_pixels_then_fits_them_all(tmp_path):
    """One full-field view: scattered pixels are held out while the weight is chosen; the final
    fit uses every pixel with that weight, and the saved configuration says so."""
    data = simulate(SimulationConfig(modality="holo", object_shape=(1, 48, 48),
                                     phantom=PhantomSpec(kind="siemens"),
                                     distances_m=(5e-5, 1e-4), photons=1e4), tmp_path / "h.h5",
                    "numpy")
    rec = Reconstruction(quick_config(data, tmp_path / "o", 3, {"run.validation_share": 0.05}))
    assert rec.holdout.unit == "pixels"
    m, v = np.asarray(rec.problem.mask), np.asarray(rec.problem.validation_mask)
    np.testing.assert_array_equal(m + v, np.ones_like(m))   # fit and validation split the pixels
    seen = []
    rec.add_callback(lambda ev: seen.append(ev.validation) if ev.kind == "epoch" else None)
    rec.run()
    assert all(math.isfinite(x) for x in seen[:3])            # the held-out fit was watched
    assert rec.problem.validation_mask is None and np.all(np.asarray(rec.problem.mask) == 1)
    assert rec.config.run.validation_share == 0.0
    assert "every pixel" in rec.plan.reasons()["run.validation_share"]
    assert "regularization.tv_weight" in rec.plan.choices


def test_a_small_scan_holds_frames_out_to_choose_the_weight_then_fits_them_all(tmp_path):
    """81 frames: with the weight unset, frames are held out for the search and early stopping,
    and the final fit uses every frame (config.toml says so and reruns it); with the weight
    stated, every frame is fitted from the start."""
    data = gold_star(tmp_path / "small.h5", n=24, step_px=2.0)          # 9 x 9 positions
    rec = Reconstruction(quick_config(data, tmp_path / "a", 4, {"run.validation_share": None}))
    assert rec.holdout.unit == "frames" and rec.dataset.n_spots == 81
    rec.run()
    assert rec.config.run.validation_share == 0.0
    assert "every frame" in rec.plan.reasons()["run.validation_share"]
    assert "regularization.tv_weight" in rec.plan.choices
    assert rec.holdout.unit == "none"                     # the final fit saw every frame
    saved = cfgmod.from_toml(tmp_path / "a" / "config.toml")
    assert saved.run.validation_share == 0.0
    cfgmod.set_value(saved, "run.output_dir", str(tmp_path / "c"))
    again = Reconstruction(saved)                          # the saved file reruns the final fit
    again.run()
    d = read_result(rec.result_path)["params"]["delta"]
    # to float32 rounding (measured 3e-6 of the largest value), not bit for bit as after the
    # weight trials: where the last bits part has not been traced
    np.testing.assert_allclose(read_result(again.result_path)["params"]["delta"], d,
                               rtol=0, atol=1e-4 * np.abs(d).max())
    stated = Reconstruction(quick_config(data, tmp_path / "b", 2, {
        "run.validation_share": None, "regularization.tv_weight": 0.01}))
    assert stated.holdout.unit == "none" and stated.config.run.validation_share == 0.0
    assert "weight stated" in stated.plan.reasons()["run.validation_share"]


def test_the_weight_search_steps_towards_the_lower_validation_loss():
    from slicewise.engine.recon.loop.weight_search import FIRST, LADDER, next_weight

    assert next_weight({0.0: 5.0}) == FIRST == 0.1
    assert next_weight({0.0: 5.0, 0.1: 4.0}) == 0.03            # then the lower neighbour
    assert next_weight({0.0: 5.0, 0.1: 4.0, 0.03: 4.5}) == 0.3  # worse: the other side
    assert next_weight({0.0: 5.0, 0.1: 4.0, 0.03: 4.5, 0.3: 4.2}) is None   # bracketed
    assert next_weight({0.0: 5.0, 0.1: 4.0, 0.03: 3.0}) == 0.01
    assert next_weight({0.0: 5.0, 0.01: 2.0, 0.03: 3.0, 0.1: 4.0}) is None  # the ladder's end
    tried = {0.0: 1.0}
    while (w := next_weight(tried)) is not None:   # a minimum at the top visits the ladder up
        tried[w] = 1.0 / (1 + w)
    assert max(tried) == LADDER[-1] and len(tried) <= len(LADDER) + 1


def test_a_penalised_refit_runs_while_the_validation_loss_is_no_worse_in_earnest():
    """The refit's epochs: the least validation loss's for the unpenalised fit; under a penalty
    the last epoch before the validation loss first exceeds the least by TIE_EXCESS of the
    least's excess over the noise floor (a later return into the band does not count)."""
    from types import SimpleNamespace

    from slicewise.engine.recon.loop.weight_search import TIE_EXCESS, Fit

    floor, least = 2.5, 2.7         # excess 0.2: the band is 2.7 + 0.2 * TIE_EXCESS
    inside, outside = least + 0.9 * TIE_EXCESS * 0.2, least + 1.1 * TIE_EXCESS * 0.2
    vals = [2.74, least, inside, inside, outside, inside, 2.9]

    def fit(weight, values, best):
        hist = [{"validation": v, "validation_floor": floor} for v in values]
        watch = SimpleNamespace(best=SimpleNamespace(epoch=best, loss=values[best - 1]))
        return Fit(weight, None, None, None, watch, None, SimpleNamespace(history=hist), None,
                   {}, {}, {})

    assert fit(0.0, vals, 2).refit_epochs() == 2          # unpenalised: its best epoch
    assert fit(1.0, vals, 2).refit_epochs() == 4          # epochs 3 and 4 tie; 5 leaves
    assert fit(1.0, vals[:4], 2).refit_epochs() == 4      # the fit's end
    assert fit(1.0, [v + 1 for v in vals], 2).refit_epochs() == 6   # excess 1.2: wider band
    assert fit(1.0, [2.4, 2.45], 1).refit_epochs() == 1   # below the floor: no band
    nan_floor = fit(1.0, vals, 2)
    for h in nan_floor.progress.history:
        h["validation_floor"] = float("nan")               # noise unknown: its best epoch
    assert nan_floor.refit_epochs() == 2


def test_noisy_data_get_a_weight_from_the_data_and_the_saved_file_reruns_it(tmp_path):
    """A weak noisy 2D scan: the unpenalised fit turns to the noise, trial fits choose a TV weight
    by their validation loss, the winner is refitted on every frame for the epochs of its least
    validation loss, and the run's config.toml (weight, rates, no held-out share, those epochs,
    all stated) reruns that final fit exactly."""
    sim = SimulationConfig(modality="ptycho", phantom=PhantomSpec(kind="siemens"),
                           object_shape=(1, 40, 40), material="PMMA", pixel_size_m=10e-9,
                           probe_shape=(8, 8), probe_size_px=2.0, scan_step_px=2.0, photons=300.0)
    data = simulate(sim, tmp_path / "weak.h5", "numpy")
    first = Reconstruction(quick_config(data, tmp_path / "a", 24,
                                        {"run.validation_share": None, "optimizer.kind": "adam"}))
    first.run()
    reasons = first.plan.reasons()
    weight = first.config.regularization.tv_weight
    assert "regularization.tv_weight" in first.plan.choices and weight is not None
    assert "validation loss" in reasons["regularization.tv_weight"]
    assert "every frame" in reasons["run.validation_share"]
    assert "validation loss" in reasons["run.epochs"]
    assert 1 <= first.epoch == first.config.run.epochs < 24   # the winner stopped early
    saved = cfgmod.from_toml(tmp_path / "a" / "config.toml")
    assert saved.regularization.tv_weight == weight and saved.run.validation_share == 0
    assert saved.run.epochs == first.epoch
    cfgmod.set_value(saved, "run.output_dir", str(tmp_path / "b"))
    again = Reconstruction(saved)
    assert "regularization.tv_weight" not in again.plan.choices   # stated now: no search
    again.run()
    np.testing.assert_array_equal(read_result(again.result_path)["params"]["delta"],
                                  read_result(first.result_path)["params"]["delta"])


class _ScriptedValidator:
    """A validator whose validation losses are given in advance (the watch's logic alone)."""

    def __init__(self, losses, floor, expected):
        self.losses, self.floor, self.expected_misfit = list(losses), floor, expected

    def loss(self, params):
        return self.losses.pop(0)


def _watch(validation, misfits, floor=1.0, expected=1.0):
    from slicewise.engine.recon.loop.validation import ValidationWatch  # noqa: PLC0415

    holdout = choose_holdout(0.1, 1, 300, (16, 16), True, seed=0)
    watch = ValidationWatch(holdout, _ScriptedValidator(validation, floor, expected), True)
    whys = []
    for e, m in enumerate(misfits, start=1):
        whys.append(watch.after_epoch(e, {}, dict, m)[1])
        if whys[-1]:
            break          # the run stops here
    return watch, whys


def test_the_watch_counts_from_where_the_misfit_stops_falling_above_the_noise():
    """Model error keeps the misfit above 1.5x the noise level: once it has stopped falling
    (by under 2 % over four epochs) the validation loss counts all the same."""
    from slicewise.engine.recon.loop.validation import MIN_EPOCHS, PATIENCE  # noqa: PLC0415

    misfits = [4.0, 3.0, 2.5, 2.2, 2.1, 2.05, 2.04, 2.03, 2.02, 2.01, 2.0, 2.0]
    watch, _ = _watch([3.0 - 0.1 * e for e in range(12)], misfits)
    # epoch 10: 2.01 against 2.05 four epochs before (-1.95 %); never before MIN_EPOCHS
    assert watch.first_counted == 10 and watch.first_counted >= MIN_EPOCHS > PATIENCE
    falling = [4.0 - 0.2 * e for e in range(12)]   # still falling 5 % per epoch: not counted
    assert _watch([1.0] * 12, falling)[0].first_counted == 0


def test_tiny_improvements_do_not_keep_a_run_going():
    """A validation loss that keeps making new bests by less than 1 % of its excess over the
    floor stops the run after four epochs; the kept state is still the least one."""
    from slicewise.engine.recon.loop.validation import PATIENCE  # noqa: PLC0415

    from slicewise.engine.recon.loop.validation import MIN_EPOCHS  # noqa: PLC0415

    creep = [2.0, 1.5] + [1.5 - 0.0005 * k for k in range(1, 10)]  # excess 0.5: 1 % = 0.005
    watch, whys = _watch(creep, [1.0] * len(creep))
    stop = next(i for i, w in enumerate(whys) if w) + 1
    assert stop == max(2 + PATIENCE, MIN_EPOCHS) and watch.stopped
    assert watch.best.epoch == stop and watch.best.loss == pytest.approx(creep[stop - 1])
    assert "1 % of its excess over the noise floor" in whys[stop - 1]
    steady = [2.0 - 0.05 * k for k in range(11)]            # 5 % of the excess per epoch
    assert not any(_watch(steady, [1.0] * 11)[1])
