"""Stopping a fit without held-out data once its progress is below the noise's resolution
(``engine/recon/loop/noise_stop.py``): the rule itself, then the final fit of held-out-pixel
holography that uses it (stops, says why, states its epochs, reruns exactly, can be turned off),
and what the end-of-run report says about a misfit below the noise level."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from noise_sweep import NoiseCase, correlation_with_truth, make_data  # noqa: E402

from slicewise.engine.io.results import read_result  # noqa: E402
from slicewise.engine.recon import config as cfgmod  # noqa: E402
from slicewise.engine.recon.loop.noise_stop import NoiseResolutionStop  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402


def _feed(stop, losses, expected):
    return [stop.after_epoch(x, expected) for x in losses]


def test_the_gain_is_the_mean_drop_per_epoch_in_noise_degrees_of_freedom():
    stop = NoiseResolutionStop(n_measurements=1000, window=4)
    _feed(stop, [10.0, 9.0, 8.5, 8.2, 8.0], expected=2.0)
    # (10 - 8) / 4 epochs = 0.5 per epoch of a mean loss; x 1000 measurements / 2.0 per one
    assert stop.gain() == pytest.approx(250.0)
    assert not stop.stopped


def test_it_stops_once_the_averaged_progress_is_below_one_degree_of_freedom():
    n, expected, window = 1000, 2.0, 3
    unit = expected / n                  # a mean-loss drop worth one noise degree of freedom
    stop = NoiseResolutionStop(n, window)
    # productive epochs (5 units each), one stalled epoch among them, then the tail (0.5 units)
    steps = [5, 5, 0, 5, 5, 0.5, 0.5, 0.5, 0.5]
    losses = list(1.0 - unit * np.cumsum([0] + steps))
    why = _feed(stop, losses, expected)
    first = next(i for i, w in enumerate(why) if w)
    # the stalled epoch alone did not stop it (averaged over the window: (5 + 0 + 5) / 3 > 1),
    # the first window of tail epochs did
    assert first == 8 and stop.stopped
    assert stop.gain() == pytest.approx(0.5)
    assert "noise degrees of freedom" in why[first] and "1000 measurements" in why[first]
    assert why[first + 1:] == [""] * (len(why) - first - 1)   # said once


def test_unknown_noise_or_too_few_epochs_never_stop():
    flat = [1.0] * 20
    stop = NoiseResolutionStop(100, window=10)
    assert _feed(stop, flat, float("nan")) == [""] * 20 and not stop.stopped
    stop = NoiseResolutionStop(100, window=10)
    assert _feed(stop, flat[:10], 1.0) == [""] * 10      # a window needs window + 1 epochs
    assert math.isnan(stop.gain())
    assert stop.after_epoch(1.0, 1.0)               # the 11th flat epoch stops it


@pytest.mark.parametrize("n, window", [(0, 10), (100, 0)])
def test_nonsense_sizes_are_refused(n, window):
    with pytest.raises(ValueError, match="n_measurements"):
        NoiseResolutionStop(n, window)


def _holography(folder: Path, epochs: int, extra: dict | None = None):
    """The holography example on four-distance data of a weak cell at 1e4 photons per pixel
    (stored as floats, written to ``folder``'s parent), tiny size, defaults otherwise."""
    data = make_data(NoiseCase("holo4", 1e4, "weak", "floats", "tiny"))
    path = folder.parent / "holo4.h5"
    if not path.exists():
        data.write(path)
    cfg = cfgmod.from_toml(cfgmod.example_config(data.case.example))
    for key, value in {"data.path": str(path), "run.epochs": epochs, "run.checkpoint_every": 0,
                       "run.save_tiff": False, "run.backend": "numpy",
                       "run.output_dir": str(folder), **(extra or {})}.items():
        cfgmod.set_value(cfg, key, value)
    return data, Reconstruction(cfg)


def test_held_out_pixel_holography_stops_its_final_fit_when_only_noise_is_left(tmp_path):
    """The final fit on every pixel (no validation loss to watch) stops by the rule; the run says
    why, states the epochs it ran in config.toml (so a rerun repeats it exactly), and asking for
    twice the epochs changes nothing. ``run.early_stop = false`` runs every requested epoch."""
    data, first = _holography(tmp_path / "a", 100)
    assert first.holdout.unit == "pixels"
    first.run()
    assert first.noise_stop is not None and first.noise_stop.n == 4 * 32 * 32   # every pixel
    assert first.stopped_early and "noise degrees of freedom" in first.early_stop_reason
    stopped = first.epoch
    assert 1 <= stopped < 100 and first.config.run.epochs == stopped
    assert "the final fit stopped here" in first.plan.reasons()["run.epochs"]
    saved = cfgmod.from_toml(tmp_path / "a" / "config.toml")
    assert saved.run.epochs == stopped and saved.run.validation_share == 0
    cfgmod.set_value(saved, "run.output_dir", str(tmp_path / "b"))
    again = Reconstruction(saved)
    again.run()
    assert again.epoch == stopped and again.noise_stop is None     # a plain run of those epochs
    delta = read_result(first.result_path)["params"]["delta"]
    np.testing.assert_array_equal(read_result(again.result_path)["params"]["delta"], delta)

    _, longer = _holography(tmp_path / "c", 200)
    longer.run()
    assert longer.epoch == stopped
    np.testing.assert_array_equal(read_result(longer.result_path)["params"]["delta"], delta)

    _, unstopped = _holography(tmp_path / "d", stopped + 30, {"run.early_stop": False})
    unstopped.run()
    assert unstopped.epoch == stopped + 30 and not unstopped.stopped_early
    assert correlation_with_truth(data, {"delta": delta}) > 0.15     # measured 0.23


def _report(ratio, weight, active, best_epoch, epoch, caplog, kind="scaled counts"):
    from types import SimpleNamespace  # noqa: PLC0415

    from slicewise.engine.recon.run_products import RunProducts  # noqa: PLC0415

    run = SimpleNamespace(
        history=[{"noise_ratio": ratio, "loss": 1.0, "terms": {}}], expected_misfit=1.0,
        noise=SimpleNamespace(kind=kind, known=kind != "estimated"), epoch=epoch,
        config=SimpleNamespace(regularization=SimpleNamespace(tv_weight=weight)),
        watch=SimpleNamespace(active=active, best=SimpleNamespace(epoch=best_epoch)))
    run.noise_level_ratio = lambda: RunProducts.noise_level_ratio(run)
    caplog.clear()
    with caplog.at_level("INFO", logger="slicewise.engine.recon.run_products"):
        RunProducts._report_noise_level(run)
    (record,) = caplog.records
    return record.levelname, record.getMessage()


def test_the_misfit_report_says_what_the_user_can_do(caplog):
    """Below the noise level: without a penalty, hold data out or regularise; under one, a larger
    weight or fewer epochs; while the held-out data's loss still fell at the end (a fit with as
    many unknowns as measurements, as the cone demo), no warning and why."""
    level, text = _report(0.6, 0.0, False, 0, 20, caplog)
    assert level == "WARNING" and "hold out data (run.validation_share)" in text
    level, text = _report(0.6, 0.3, False, 0, 20, caplog)
    assert level == "WARNING" and "regularization.tv_weight = 0.3" in text and "fewer" in text
    level, text = _report(0.6, 0.0, True, 20, 20, caplog)
    assert level == "INFO" and "still falling at the last epoch" in text
    level, text = _report(0.6, 0.0, True, 12, 20, caplog)   # it had turned: a warning again
    assert level == "WARNING"
    level, text = _report(1.1, 0.0, False, 0, 20, caplog)
    assert level == "INFO" and "1.10x the noise level" in text and "hold out" not in text
    # a level measured from the frames is an upper bound: below it is no evidence of noise fitting
    level, text = _report(0.03, 1.0, False, 0, 20, caplog, kind="estimated")
    assert level == "INFO" and "upper bound" in text and "data.photons_per_unit" in text


def test_a_resumed_final_fit_stops_where_an_uninterrupted_one_does(tmp_path):
    """Interrupted during the final fit on every pixel, the run resumes from its checkpoint with
    the rule's memory of the epochs before, and stops at the same epoch with the same result."""
    _, whole = _holography(tmp_path / "a", 100)
    whole.run()
    stopped = whole.epoch
    _, cut = _holography(tmp_path / "b", 100)

    def interrupt(ev):
        if ev.kind == "epoch" and cut.noise_stop is not None and ev.epoch == stopped - 5:
            cut.stop()
    cut.add_callback(interrupt)
    cut.run()
    assert cut.epoch == stopped - 5 and not cut.stopped_early
    saved = cfgmod.from_toml(tmp_path / "b" / "config.toml")
    cfgmod.set_value(saved, "run.overwrite", True)
    resumed = Reconstruction(saved, resume=cut.checkpoint_path)
    assert resumed.noise_stop is not None and len(resumed.noise_stop.losses) == stopped - 5
    resumed.run()
    assert resumed.epoch == stopped and resumed.stopped_early
    assert resumed.config.run.epochs == stopped          # config.toml states where it stopped
    np.testing.assert_array_equal(read_result(resumed.result_path)["params"]["delta"],
                                  read_result(whole.result_path)["params"]["delta"])


def test_a_noise_level_estimated_from_the_frames_does_not_stop_the_final_fit(tmp_path):
    """Noise-free frames: the level measured from them is an upper bound (the object's finest
    detail counts as noise), so the stop would cut a fit short that still improves; it is not
    used there, and the final fit on every pixel runs the requested epochs."""
    data = make_data(NoiseCase("holo4", None, "weak", "floats", "tiny"))
    path = data.write(tmp_path / "clean.h5")
    cfg = cfgmod.from_toml(cfgmod.example_config(data.case.example))
    for key, value in {"data.path": str(path), "run.epochs": 60, "run.checkpoint_every": 0,
                       "run.save_tiff": False, "run.backend": "numpy",
                       "run.output_dir": str(tmp_path / "o")}.items():
        cfgmod.set_value(cfg, key, value)
    rec = Reconstruction(cfg)
    assert rec.holdout.unit == "pixels" and rec.noise.kind == "estimated"
    rec.run()
    assert rec.noise_stop is None and rec.epoch == 60 and not rec.stopped_early
