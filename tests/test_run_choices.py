"""A run tells its observers what it chose for the fields left to it (``auto`` and unset
learning rates), the same values it writes into its config.toml."""

from __future__ import annotations

import pytest

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
