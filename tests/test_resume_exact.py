"""A resumed run continues exactly: every piece of solver state is in the checkpoint.

A run with every constraint and refinement switched on is stopped and resumed at several epochs;
the chain of resumed runs must give the same result, bit for bit, as one uninterrupted run."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from slicewise.engine.io.results import read_result
from slicewise.engine.recon.run import Reconstruction
from slicewise.engine.simulate import SimulationConfig, simulate
from small_runs import gold_star, quick_config

EVERYTHING = {
    # support threshold 0.3: at 0.1 the first epoch's support of this tiny noisy star covers
    # 98-100 % of the grid (all of it with the watched run's larger object rate)
    "ptycho": {"constraints.support": "auto", "constraints.support_start_epoch": 1,
               "constraints.support_threshold": 0.3,
               "constraints.nonneg": True, "constraints.fix_probe_power": True,
               "refine.probe": True, "refine.positions": True, "refine.positions_start_epoch": 1,
               "regularization.tv_weight": 1e-3, "regularization.l1_weight": 1e-4,
               "optimizer.kind": "adam", "run.batch_spots": 4, "run.validation_share": 0.1},
    "holo": {"constraints.support": "auto", "constraints.support_start_epoch": 1,
             "constraints.nonneg": True, "refine.distances": True, "refine.probe": True,
             "regularization.tv_weight": 1e-3, "optimizer.kind": "adam", "run.batch_angles": 1},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    return {
        "ptycho": gold_star(d / "p.h5", n=20, step_px=3.0),
        "holo": simulate(SimulationConfig(modality="holo", n_angles=3, object_shape=(8, 8, 8)),
                         d / "h.h5", "numpy"),
    }


def run(data_path, out, epochs, overrides, resume=None):
    Reconstruction(quick_config(data_path, out, epochs, overrides), resume=resume).run()
    return read_result(out / "result.h5")


@pytest.mark.parametrize("kind", sorted(EVERYTHING))
def test_resume_at_several_epochs_is_bitwise_exact(kind, data, tmp_path):
    overrides = EVERYTHING[kind]
    straight = run(data[kind], tmp_path / "straight", 5, overrides)
    chained = None
    for i, epochs in enumerate((1, 2, 4, 5)):  # stopped after epochs 1, 2 and 4
        resume = None if i == 0 else tmp_path / f"part{i - 1}" / "checkpoint.h5"
        chained = run(data[kind], tmp_path / f"part{i}", epochs, overrides, resume)
    assert chained["epoch"] == straight["epoch"] == 5
    for name, value in straight["params"].items():
        np.testing.assert_array_equal(chained["params"][name], value, err_msg=name)
    np.testing.assert_array_equal(chained["loss"]["total"], straight["loss"]["total"])
    if "validation" in straight["loss"]:   # the held-out frames' loss, and the best epoch kept
        np.testing.assert_array_equal(chained["loss"]["validation"], straight["loss"]["validation"])
        assert chained["best_epoch"] == straight["best_epoch"]
    state = read_result(tmp_path / "part1" / "checkpoint.h5")["extra"]["run_state"]
    assert state["support"].any() and not state["support"].all()  # the auto support is kept
    assert set(state["penalty_norm"]) == {"l1", "tv"} and "best" in state["guard"]


def test_stop_mid_epoch_checkpoints_the_minibatch_position(data, tmp_path):
    """Ctrl-C (here: stop()) in the middle of an epoch: the checkpoint says which minibatch comes
    next, and resuming from it gives the uninterrupted run's result bit for bit."""
    overrides = EVERYTHING["ptycho"]
    straight = run(data["ptycho"], tmp_path / "straight", 3, overrides)

    rec = Reconstruction(quick_config(data["ptycho"], tmp_path / "stopped", 3, overrides))

    def stop_in_epoch_2(ev):
        if ev.kind == "batch" and ev.epoch == 2 and ev.batch == 3:
            rec.stop()
    rec.add_callback(stop_in_epoch_2)
    rec.run()
    assert rec.state == "stopped"
    ckpt = read_result(tmp_path / "stopped" / "checkpoint.h5")
    assert ckpt["epoch"] == 1 and ckpt["extra"]["run_state"]["partial"]["batch"] == 3
    resumed = run(data["ptycho"], tmp_path / "stopped", 3, overrides,
                  tmp_path / "stopped" / "checkpoint.h5")
    for name, value in straight["params"].items():
        np.testing.assert_array_equal(resumed["params"][name], value, err_msg=name)
    np.testing.assert_array_equal(resumed["loss"]["total"], straight["loss"]["total"])
    assert "partial" not in resumed["extra"]["run_state"]


@pytest.fixture(scope="module")
def holo_one_view(tmp_path_factory):
    """One near-field view: optimizer.kind = auto picks full-batch L-BFGS, rates measured."""
    d = tmp_path_factory.mktemp("lbfgs")
    return simulate(SimulationConfig(modality="holo", n_angles=1, object_shape=(16, 24, 24)),
                    d / "h1.h5", "numpy")


@pytest.mark.parametrize("precision", ["single", "double"])
def test_lbfgs_resume_with_measured_rates_is_bitwise_exact(holo_one_view, precision, tmp_path):
    """The measured rates restored from the checkpoint must not reset L-BFGS's curvature pairs
    (setting a rate resets them: the preconditioner changed); the resumed run then continues as
    if it had never stopped."""
    overrides = {"run.precision": precision}
    straight = run(holo_one_view, tmp_path / "straight", 6, overrides)
    assert tomllib.loads(straight["config_toml"])["optimizer"]["kind"] == "lbfgs"
    run(holo_one_view, tmp_path / "first", 2, overrides)
    pairs = read_result(tmp_path / "first" / "checkpoint.h5")["optimizer"]["state"]["pairs"]
    assert len(pairs) >= 1  # there is curvature history to keep
    resumed = run(holo_one_view, tmp_path / "first", 6, overrides,
                  tmp_path / "first" / "checkpoint.h5")
    for name, value in straight["params"].items():
        np.testing.assert_array_equal(resumed["params"][name], value, err_msg=name)
    np.testing.assert_array_equal(resumed["loss"]["total"], straight["loss"]["total"])


def test_resuming_a_finished_lbfgs_run_leaves_its_parameters_untouched(holo_one_view, tmp_path):
    first = run(holo_one_view, tmp_path / "a", 3, {})
    again = run(holo_one_view, tmp_path / "a", 3, {}, tmp_path / "a" / "result.h5")
    assert again["epoch"] == 3
    for name, value in first["params"].items():
        np.testing.assert_array_equal(again["params"][name], value, err_msg=name)
