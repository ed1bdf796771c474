"""Configurations that do not fit the data are refused with a message naming the field, before
anything is written: an existing result in the output folder survives a refused run."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from slicewise.engine.errors import ConfigError, DataFileError
from slicewise.engine.io.results import write_result
from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.recon.config import ReconConfig, set_value
from slicewise.engine.recon.run import Reconstruction
from slicewise.engine.simulate import SimulationConfig, simulate


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    ptycho = simulate(SimulationConfig(modality="ptycho", phantom=PhantomSpec(kind="siemens"),
                                       object_shape=(1, 32, 32), material="gold", pixel_size_m=10e-9,
                                       slice_thickness_m=200e-9, probe_shape=(16, 16), probe_size_px=3.0,
                                       scan_step_px=4.0, photons=1e5), d / "ptycho.h5", "numpy")
    holo = simulate(SimulationConfig(modality="holo", object_shape=(16, 16, 16), n_angles=1,
                                     distances_m=(5e-5, 1e-4)), d / "holo.h5", "numpy")
    np.save(d / "probe_8x8.npy", np.ones((1, 8, 8), complex))
    np.save(d / "mask_8x8.npy", np.ones((8, 8)))
    np.save(d / "support_wrong.npy", np.ones((1, 16, 16), bool))
    write_result(d / "other_shape.h5", {"delta": np.zeros((1, 16, 16), np.float32),
                                        "beta": np.zeros((1, 16, 16), np.float32)}, epoch=3)
    off = d / "ptycho_off_grid.h5"
    off.write_bytes(ptycho.read_bytes())
    with h5py.File(off, "r+") as f:  # one position far outside the 32x32 object grid
        pos = f["geometry/positions_px"][()]
        pos[7] = (500.0, 3.0)
        f["geometry/positions_px"][...] = pos
    return {"ptycho": ptycho, "holo": holo, "dir": d, "off_grid": off}


@pytest.fixture
def outdir(tmp_path):
    """An output folder that already holds a finished result (and a note) that must survive."""
    out = tmp_path / "out"
    out.mkdir()
    write_result(out / "result.h5", {"delta": np.full((1, 4, 4), 7.0, np.float32)}, epoch=42)
    (out / "notes.txt").write_text("beamtime 2026\n")
    return out


def snapshot_dir(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def base_config(data, out) -> ReconConfig:
    cfg = ReconConfig()
    cfg.data.path = str(data)
    cfg.run.output_dir = str(out)
    cfg.run.backend = "numpy"
    cfg.run.epochs = 1
    # the folder's earlier result may be replaced by a run that succeeds, never by one refused
    cfg.run.overwrite = True
    return cfg


# (data file key, {config path: value} with {dir} for the data folder, error type, text the message must hold)
CASES = {
    "probe of the wrong size": ("ptycho", {"init.probe_path": "{dir}/probe_8x8.npy"}, ConfigError,
                                "init.probe_path"),
    "probe file missing": ("ptycho", {"init.probe_path": "{dir}/nope.npy"}, ConfigError, "init.probe_path"),
    "positions off the configured grid": ("ptycho", {"model.object_shape": [1, 8, 8]}, ConfigError,
                                          "model.object_shape"),
    "positions off the grid in the file": ("off_grid", {}, DataFileError, "positions_px"),
    "too many slices": ("ptycho", {"model.n_slices": 1000}, ConfigError, "model.n_slices"),
    "model.kind holo for far-field data": ("ptycho", {"model.kind": "holo"}, ConfigError, "model.kind"),
    "model.kind ptycho for near-field data": ("holo", {"model.kind": "ptycho"}, ConfigError, "model.kind"),
    "lbfgs with minibatches": ("ptycho", {"optimizer.kind": "lbfgs", "run.batch_spots": 5}, ConfigError,
                               "run.batch_spots"),
    "lbfgs with angle batches": ("holo", {"optimizer.kind": "lbfgs", "run.batch_angles": 1,
                                          "model.object_shape": [16, 16, 16]}, None, None),
    "distance count": ("holo", {"data.distances_m": [1e-5, 2e-5, 3e-5]}, ConfigError, "data.distances_m"),
    "holo grid differs from the frames": ("holo", {"model.object_shape": [16, 8, 8]}, ConfigError,
                                          "model.object_shape"),
    "initial object of another shape": ("ptycho", {"init.object_path": "{dir}/other_shape.h5"},
                                        ConfigError, "init.object_path"),
    "detector mask of another shape": ("ptycho", {"loss.mask_path": "{dir}/mask_8x8.npy"}, ConfigError,
                                       "loss.mask_path"),
    "support mask of another shape": ("ptycho", {"constraints.support": "{dir}/support_wrong.npy"},
                                      ConfigError, "constraints.support"),
    "missing data file": ("missing", {}, DataFileError, "no such data file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_inconsistent_configuration_is_refused(case, files, outdir):
    key, changes, exc_type, field = CASES[case]
    data = files.get(key, files["dir"] / "missing.h5")
    cfg = base_config(data, outdir)
    for path, value in changes.items():
        set_value(cfg, path, value.format(dir=files["dir"]) if isinstance(value, str) else value)
    before = snapshot_dir(outdir)
    if exc_type is None:  # the holo case: one angle is one full batch, so lbfgs is fine
        assert Reconstruction(cfg).run().is_file()
        return
    with pytest.raises(exc_type) as info:
        Reconstruction(cfg).run()
    msg = str(info.value)
    print(f"{case}: {type(info.value).__name__}: {msg}")
    assert field in msg, msg
    assert "\n" not in msg and len(msg) < 400  # one readable line for the CLI / a dialog
    assert snapshot_dir(outdir) == before  # nothing written, the old result intact


def test_resume_from_an_incompatible_checkpoint(files, outdir):
    cfg = base_config(files["ptycho"], outdir)
    before = snapshot_dir(outdir)
    with pytest.raises(ConfigError, match="--resume"):
        Reconstruction(cfg, resume=files["dir"] / "other_shape.h5")
    with pytest.raises(ConfigError, match="--resume"):
        Reconstruction(cfg, resume=files["dir"] / "no_such_checkpoint.h5")
    assert snapshot_dir(outdir) == before


def test_invalid_values_name_the_field():
    cfg = ReconConfig()
    with pytest.raises(ConfigError, match="optimizer.lr_delta"):
        set_value(cfg, "optimizer.lr_delta", "-1")
    with pytest.raises(ConfigError, match="run.epochs"):
        set_value(cfg, "run.epochs", 0)
    with pytest.raises(ConfigError, match="data.path"):
        Reconstruction(cfg)
