"""The forward-model protocol and the registries of models and file formats."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from slicewise.engine import get_backend
from slicewise.engine.errors import ConfigError, DataFileError
from slicewise.engine.io import readers
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.models.base import MODE_AXIS, ForwardModel, intensity
from slicewise.engine.models.common import Optics
from slicewise.engine.models.holo import HoloModel
from slicewise.engine.models.ptycho import PtychoModel
from slicewise.engine.recon.config import ModelConfig, ReconConfig
from slicewise.engine.recon.setup.model_setup import MODEL_SETUPS, choose_model

BE = get_backend("numpy", "double")
RNG = np.random.default_rng(11)
OPTICS = Optics(8000.0, 20e-9, 20e-9)


def _ptycho():
    pos = np.array([[0.0, 0.0], [2.5, 3.0], [5.0, 1.0]])
    model = PtychoModel((2, 16, 16), (8, 8), OPTICS, BE, positions_px=pos, angles_rad=[0.0, 0.4])
    probe = RNG.standard_normal((2, 8, 8)) + 1j * RNG.standard_normal((2, 8, 8))
    return model, {**model.view.vacuum(), "probe": probe, "positions": pos}


def _holo():
    model = HoloModel((2, 12, 12), OPTICS, BE, angles_rad=[0.0, 0.4, 1.0])
    params = {**model.view.vacuum(), "distances": np.array([1e-3, 2e-3])}
    params["delta"] += 1e-6 * RNG.random((2, 12, 12))
    return model, params


@pytest.mark.parametrize("make,modes", [(_ptycho, 2), (_holo, 1)])
def test_models_return_fields_of_one_shape(make, modes):
    """Every model: fields (A, S, m, fy, fx); intensity = sum over modes |field|^2 = predict."""
    model, params = make()
    assert isinstance(model, ForwardModel)
    for name in typing.get_type_hints(ForwardModel):
        assert hasattr(model, name), name
    a, s = [1, 0], [1, 0]
    f = model.fields(params, a, s)
    assert f.shape == (2, 2, modes) + tuple(model.frame_shape) and np.iscomplexobj(f)
    i = intensity(f)
    np.testing.assert_allclose(i, np.sum(np.abs(f) ** 2, axis=MODE_AXIS))
    np.testing.assert_allclose(model.predict(params, a, s), i)
    # the batch order is the requested order: swapping the angles swaps the first axis
    np.testing.assert_allclose(model.fields(params, [0, 1], s), f[::-1])
    assert set(model.unknowns) >= set(model.view.names)
    assert model.name in model.describe() or "holography" in model.describe()


def test_model_kind_choices_are_the_registered_models():
    choices = ModelConfig.__dataclass_fields__["kind"].metadata["choices"]
    assert choices == ("auto", *MODEL_SETUPS)


def _dataset(modality, n_spots, distances=None, positions=None):
    frames = np.ones((1, n_spots, 8, 8), np.float32)
    return Dataset.from_arrays(frames,
                               Geometry(modality=modality, energy_ev=8000.0, pixel_size_m=1e-8,
                                        distances_m=distances, positions_px=positions))


def test_auto_picks_the_model_that_fits_the_data():
    cfg = ReconConfig()
    assert choose_model(cfg, _dataset("farfield", 2, positions=[[0, 0], [2, 2]])).name == "ptycho"
    assert choose_model(cfg, _dataset("nearfield", 2, distances=[1e-3, 2e-3])).name == "holo"
    tiled = _dataset("nearfield", 4, distances=[1e-3, 2e-3], positions=[[0, 0], [2, 2]])
    with pytest.raises(ConfigError, match="no forward model fits near-field data with 2 tile"):
        choose_model(cfg, tiled)
    cfg.model.kind = "ptycho"
    with pytest.raises(ConfigError, match="model.kind = 'ptycho' does not fit near-field data.*'holo'"):
        choose_model(cfg, _dataset("nearfield", 1, distances=[1e-3]))


def test_reader_registry_takes_a_new_format(tmp_path):
    """A format registers a sniffer and a reader; open_dataset asks them in order."""
    path = tmp_path / "frames.npz"
    np.savez(path, frames=RNG.random((1, 1, 8, 8)).astype(np.float32), energy_ev=9000.0)

    def sniff(p, h5):
        return h5 is None and p.suffix == ".npz"

    def read(p):
        z = np.load(p)
        return Dataset.from_arrays(z["frames"],
                                   Geometry(modality="farfield", energy_ev=float(z["energy_ev"]),
                                            pixel_size_m=1e-8))

    with pytest.raises(DataFileError, match="not a data file Slicewise reads.*exchange/data"):
        readers.open_dataset(path)
    before = list(readers.READERS)
    try:
        readers.register_reader(readers.Reader("npz-test", sniff, read, "NumPy .npz with frames"))
        ds = readers.open_dataset(path)
        assert ds.energy_ev == 9000.0 and ds.shape == (1, 1, 8, 8)
    finally:
        readers.READERS[:] = before
    assert [r.name for r in readers.READERS] == ["slicewise", "cxi", "dxchange", "adorym"]


def test_refined_positions_are_held_on_the_padded_grid():
    """A position refined past the vacuum margin would put its window off the padded object
    (PatchExtractor refuses it, the run would crash): the projection holds it at the edge, and the
    model evaluates there."""
    from types import SimpleNamespace

    from slicewise.engine.recon.loop.projections import Projections

    model, params = _ptycho()
    lo, hi = model.position_bounds()
    model.fields(params, [0], [0, 1, 2])
    cfg = ReconConfig()
    cfg.refine.position_max_step_px = 1e6  # no step bound: only the grid limits
    problem = SimpleNamespace(model=model, backend=BE, probe_power=None, object_shape=(2, 16, 16))
    old = params["positions"].copy()
    p = {"positions": old + np.array([[-500.0, 0.0], [0.0, 300.0], [0.0, 0.0]])}
    Projections(cfg, problem, ".").apply(p, old)
    assert np.all(p["positions"] >= lo) and np.all(p["positions"] <= hi)
    assert p["positions"][0, 0] == lo[0] and p["positions"][1, 1] == hi[1]
    f = model.fields({**params, "positions": p["positions"]}, [0], [0, 1, 2])
    assert np.all(np.isfinite(f))
    with pytest.raises(ValueError, match="leave the object grid"):
        model.fields({**params, "positions": p["positions"] + np.array([[-1.0, 0], [0, 0], [0, 0]])},
                     [0], [0])
