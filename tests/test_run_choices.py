"""A run tells its observers what it chose for the fields left to it (``auto`` and unset
learning rates), the same values it writes into its config.toml."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.small_runs import gold_star, quick_config
from slicewise.engine.io.readers import open_dataset
from slicewise.engine.io.results import read_result
from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.recon import config as cfgmod
from slicewise.engine.recon.run import Reconstruction
from slicewise.engine.simulate import SimulationConfig, simulate


@pytest.fixture(scope="module")
def holo_file(tmp_path_factory):
    sim = SimulationConfig(modality="holo", phantom=PhantomSpec(kind="siemens"), object_shape=(1, 24, 24), distances_m=(5e-5, 1e-4),
                           pixel_size_m=50e-9, energy_ev=10000.0)
    return simulate(sim, tmp_path_factory.mktemp("data") / "holo.h5", "numpy")


def test_config_events_carry_the_automatic_choices(holo_file, tmp_path):
    cfg = cfgmod.ReconConfig()
    cfg.data.path = str(holo_file)
    cfg.run.epochs, cfg.run.backend, cfg.run.output_dir = 2, "numpy", str(tmp_path / "out")
    cfg.optimizer.lr_beta = 1e-9  # set by hand: never reported as a choice
    assert cfg.optimizer.kind == "auto" and cfg.optimizer.lr_delta is None
    run = Reconstruction(cfg, base_dir=tmp_path)
    events = []
    run.add_callback(lambda ev: events.append(ev) if ev.kind == "config" else None)
    run.run()
    assert events, "no config event"
    chosen = events[-1].changes
    assert chosen == run.automatic_choices()
    saved = cfgmod.from_toml(tmp_path / "out" / "config.toml")
    assert chosen["optimizer.lr_delta"] == saved.optimizer.lr_delta > 0
    assert chosen["optimizer.kind"] == saved.optimizer.kind != "auto"
    assert "optimizer.lr_beta" not in chosen


def test_the_users_configuration_stays_as_written(holo_file, tmp_path):
    """The run's choices live in its plan: the configuration object handed to the run is not
    modified, and every value that differs in the run's configuration is a recorded choice."""
    cfg = cfgmod.ReconConfig()
    cfg.data.path = str(holo_file)
    cfg.run.epochs, cfg.run.backend, cfg.run.output_dir = 2, "numpy", str(tmp_path / "out")
    before = cfgmod.to_dict(cfg)
    run = Reconstruction(cfg, base_dir=tmp_path)
    run.run()
    assert cfgmod.to_dict(cfg) == before
    assert cfgmod.to_dict(run.plan.requested) == before
    used = {f.path: f.value for f in cfgmod.iter_fields(run.config)}
    asked = {f.path: f.value for f in cfgmod.iter_fields(cfg)}
    differing = {p for p in used if used[p] != asked[p]}
    assert differing and differing == set(run.plan.choices)
    assert all(c.reason for c in run.plan.choices.values())


def test_the_plan_is_written_with_its_reasons_and_reruns_without_new_choices(holo_file, tmp_path):
    cfg = cfgmod.ReconConfig()
    cfg.data.path = str(holo_file)
    cfg.run.epochs, cfg.run.backend, cfg.run.output_dir = 2, "numpy", str(tmp_path / "a")
    first = Reconstruction(cfg, base_dir=tmp_path)
    first.run()
    text = (tmp_path / "a" / "config.toml").read_text()
    header = text.split("[data]")[0]
    for choice in first.plan.choices.values():
        assert f"# {choice.path} = " in header.replace("#   ", "# ")   # one comment line each
    stored = read_result(first.result_path)["extra"]["plan"]
    assert set(stored) == set(first.plan.choices)
    assert stored["optimizer.kind"]["reason"] == first.plan.reasons()["optimizer.kind"]
    saved = cfgmod.from_toml(tmp_path / "a" / "config.toml")
    cfgmod.set_value(saved, "run.output_dir", str(tmp_path / "b"))
    again = Reconstruction(saved, base_dir=tmp_path)
    assert again.plan.choices == {}, again.plan.lines()   # everything was decided already
    again.run()
    np.testing.assert_array_equal(again.snapshot(None).delta, first.snapshot(None).delta)


def test_a_guessed_probe_is_refined_even_when_the_file_holds_one(tmp_path):
    """init.probe = gaussian (or a guess from the data) with a file that holds a probe: the run
    starts from the guess, so refine.probe (unset) turns on; from the file's probe it stays off."""
    data = gold_star(tmp_path / "star.h5")
    assert open_dataset(data).probe is not None
    for init, refined in (("gaussian", True), ("data", True), ("auto", False), ("file", False)):
        cfg = quick_config(data, tmp_path / init, overrides={"init.probe": init})
        run = Reconstruction(cfg, base_dir=tmp_path)
        assert run.config.refine.probe is refined, init
        assert run.problem.probe_is_guess is refined
        assert "refine.probe" in run.plan.choices and cfg.refine.probe is None
