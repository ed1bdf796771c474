"""``optimizer.lr_boost`` left unset: Adam's object rates start twice the measured ones where the
object is built from a start without structure and its rates are measured, and nowhere else; the
choice is written into the configuration and the checkpoint (see engine/recon/stepsize.py)."""

from __future__ import annotations

import pytest

from slicewise.engine.io.results import read_result
from slicewise.engine.recon import config as cfgmod
from slicewise.engine.recon.setup import stepsize
from slicewise.engine.recon.run import Reconstruction
from small_runs import gold_star, quick_config

ADAM = {"optimizer.kind": "adam", "run.batch_spots": 4, "init.guess": "vacuum"}


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    return gold_star(tmp_path_factory.mktemp("boost") / "star.h5", n=20, step_px=3.0)


def _run(star, out, overrides, resume=None, epochs=1):
    rec = Reconstruction(quick_config(star, out, epochs, overrides), resume=resume)
    rec.run()
    return rec


def test_a_vacuum_start_with_measured_rates_is_boosted_and_says_so(star, tmp_path):
    rec = _run(star, tmp_path / "a", ADAM)
    assert rec.config.optimizer.lr_boost == stepsize.ADAM_BOOST == 2.0
    assert rec.solver.optimizer.boost == 2.0
    assert rec.automatic_choices()["optimizer.lr_boost"] == 2.0
    assert cfgmod.from_toml(tmp_path / "a" / "config.toml").optimizer.lr_boost == 2.0
    assert read_result(tmp_path / "a" / "result.h5")["optimizer"]["hyper"]["boost"] == 2.0


@pytest.mark.parametrize("why", ["rates set by hand", "a start with structure", "probe refined"])
def test_no_boost_for_hand_rates_a_start_near_the_object_or_a_refined_probe(star, tmp_path, why):
    over = dict(ADAM)
    if why == "rates set by hand":
        over.update({"optimizer.lr_delta": 1e-5, "optimizer.lr_beta": 1e-6})
    elif why == "probe refined":  # from a later epoch too: the object must not outrun it
        over.update({"refine.probe": True, "refine.probe_start_epoch": 2})
    else:  # start from an earlier result: the object is already there
        _run(star, tmp_path / "first", ADAM)
        over["init.object_path"] = str(tmp_path / "first" / "result.h5")
    rec = _run(star, tmp_path / "b", over)
    assert rec.config.optimizer.lr_boost == 1.0 and rec.solver.optimizer.boost == 1.0


def test_lbfgs_leaves_it_unset(star, tmp_path):
    rec = _run(star, tmp_path / "c", {"optimizer.kind": "lbfgs", "init.guess": "vacuum"})
    assert rec.config.optimizer.lr_boost is None


def test_a_resumed_run_keeps_the_checkpoints_boost_unless_the_configuration_sets_one(star, tmp_path):
    _run(star, tmp_path / "d", {**ADAM, "optimizer.lr_boost": 3.0})
    ckpt = tmp_path / "d" / "checkpoint.h5"
    kept = _run(star, tmp_path / "e", ADAM, resume=ckpt, epochs=2)
    assert kept.config.optimizer.lr_boost == 3.0 and kept.solver.optimizer.boost == 3.0
    changed = _run(star, tmp_path / "f", {**ADAM, "optimizer.lr_boost": 1.5}, resume=ckpt, epochs=2)
    assert changed.solver.optimizer.boost == 1.5
