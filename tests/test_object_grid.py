"""Adorym's files leave the object grid unstated: say so where it matters, naming the fix."""

from __future__ import annotations

import logging

import numpy as np

from slicewise.engine.geometry import Geometry
from slicewise.engine.io.adorym import write_adorym
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.object_grid import object_grid_note
from slicewise.engine.io.readers import describe_file
from slicewise.engine.recon.config import ReconConfig
from slicewise.engine.recon.run import Reconstruction


def _ptycho(positions, n_angles=1, **kw):
    inten = np.ones((n_angles, len(positions), 8, 8), np.float32)
    return Dataset.from_arrays(inten, Geometry(modality="farfield", energy_ev=8000.0,
                                               pixel_size_m=1e-8,
                                               angles_rad=np.linspace(0, np.pi, n_angles,
                                                                      endpoint=False),
                                               positions_px=np.asarray(positions, float), **kw))


def test_note_only_when_the_unstated_grid_matters():
    raster = [(y, x) for y in (0, 4, 8) for x in (0, 4, 8)]
    assert object_grid_note(_ptycho(raster)) is None                       # starts at 0: the grid
    assert object_grid_note(_ptycho(raster, object_shape_yx=(40, 40))) is None  # stated
    shifted = object_grid_note(_ptycho([(y + 5, x + 5) for y, x in raster]))
    assert "model.object_shape" in shifted and "(5, 5)" in shifted and "obj_size" in shifted
    tomo = object_grid_note(_ptycho(raster, n_angles=4))
    assert "rotation axis" in tomo and "16 x 16" in tomo


def test_info_and_run_log_say_it_once(tmp_path, caplog):
    raster = np.array([(y, x) for y in (3, 7, 11) for x in (3, 7, 11)], float)
    path = tmp_path / "adorym.h5"
    write_adorym(path, np.ones((2, 9, 8, 8), np.float32),
                 Geometry(modality="farfield", energy_ev=8000.0, pixel_size_m=1e-8,
                          angles_rad=np.array([0.0, 1.0]),
                          positions_px=raster))
    text = describe_file(path)
    assert text.count("model.object_shape") == 1 and "note:" in text
    cfg = ReconConfig()
    cfg.data.path = str(path)
    cfg.run.output_dir = str(tmp_path / "out")
    with caplog.at_level(logging.WARNING):
        Reconstruction(cfg, base_dir=tmp_path)
    assert caplog.text.count("model.object_shape") == 1
    caplog.clear()
    cfg.model.object_shape = (19, 19, 19)
    with caplog.at_level(logging.WARNING):
        Reconstruction(cfg, base_dir=tmp_path)
    assert "model.object_shape" not in caplog.text  # set: nothing to say
