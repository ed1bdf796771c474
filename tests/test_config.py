"""Reconstruction configuration: metadata, validation, coercion and TOML/JSON round trips."""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib

import numpy as np
import pytest

from slicewise.engine.errors import ConfigError
from slicewise.engine.recon import config as C
from slicewise.engine.recon.config import ReconConfig


def test_every_field_has_default_and_metadata():
    infos = C.iter_fields(ReconConfig())
    assert len(infos) > 40
    groups = {f.name for f in dataclasses.fields(ReconConfig)}
    for info in infos:
        assert info.help and "\n" not in info.help, info.path
        assert info.group == info.path.split(".")[0] and info.group in groups
        assert info.value == info.default
        if info.choices:
            assert info.value in info.choices
    paths = [i.path for i in infos]
    assert len(paths) == len(set(paths))
    for expected in ("data.energy_ev", "model.checkpoint_slices", "optimizer.lr_object",
                     "constraints.support", "run.snapshot_every_s", "refine.position_max_step_px"):
        assert expected in paths
    by = {i.path: i for i in infos}
    assert by["optimizer.lr_object"].safe_while_paused and not by["run.backend"].safe_while_paused
    assert by["data.energy_ev"].unit == "eV" and by["data.energy_ev"].optional
    assert by["data.path"].path_kind == "file" and by["run.output_dir"].path_kind == "dir"
    assert by["model.object_shape"].type_name == "tuple[int, int, int] | None"


def test_defaults_validate():
    C.validate(ReconConfig())
    assert set(ReconConfig().optimizer.lrs()) == {"delta", "beta", "object", "probe", "positions",
                                                  "distances"}


@pytest.mark.parametrize("path,text,expected", [
    ("optimizer.lr_object", "1e-3", 1e-3),
    ("optimizer.lr_object", " 2 ", 2.0),
    ("run.epochs", "12", 12),
    ("run.epochs", "1e2", 100),
    ("run.save_tiff", "False", False),
    ("refine.probe", "yes", True),
    ("refine.probe", "false", False),
    ("refine.probe", "", None),        # unset = refined when the probe is a guess
    ("data.energy_ev", "", None),
    ("data.energy_ev", "None", None),
    ("data.energy_ev", "8000", 8000.0),
    ("data.distances_m", "0.1, 0.25", [0.1, 0.25]),
    ("data.distances_m", "[0.1]", [0.1]),
    ("model.object_shape", "64, 128, 96", (64, 128, 96)),
    ("model.object_shape", "64x128x96", (64, 128, 96)),
    ("loss.mask_path", "", None),
    ("loss.mask_path", "mask.npy", "mask.npy"),
    ("constraints.support", "auto", "auto"),
    ("model.kind", "holo", "holo"),
])
def test_set_value_parses_gui_text(path, text, expected):
    cfg = ReconConfig()
    assert C.set_value(cfg, path, text) == expected
    assert C.get_value(cfg, path) == expected


def test_set_value_accepts_python_and_numpy_values():
    cfg = ReconConfig()
    C.set_value(cfg, "run.epochs", np.int64(7))
    C.set_value(cfg, "optimizer.lr_delta", 3)  # an int is a fine float
    C.set_value(cfg, "model.object_shape", [4, 5, 6])
    assert cfg.run.epochs == 7 and type(cfg.run.epochs) is int
    assert cfg.optimizer.lr_delta == 3.0 and type(cfg.optimizer.lr_delta) is float
    assert cfg.model.object_shape == (4, 5, 6)


@pytest.mark.parametrize("path,value,fragment", [
    ("run.epochs", "abc", "expected a whole number, got 'abc'"),   # GUI text: plain words
    ("run.epochs", "1.5", "expected a whole number, got '1.5'"),
    ("run.epochs", 0, ">= 1"),
    ("run.epochs", True, "expected a whole number"),
    ("optimizer.lr_probe", -1.0, ">= 0"),
    ("optimizer.lr_probe", float("nan"), "finite"),
    ("optimizer.momentum", 1.0, "< 1"),
    ("data.energy_ev", 0.0, ">= 100 eV"),
    ("data.energy_ev", 1e-3, ">= 100 eV"),           # keV or J typed as eV
    ("data.pixel_size_m", 1.0, "<= 0.001 m"),        # a unit mix-up, refused like in a data file
    ("data.slice_thickness_m", 0.0, ">= 1e-12 m"),
    ("data.distances_m", "0.1, -2", "data.distances_m[1]"),
    ("model.object_shape", "4, 5", "expected 3 whole numbers"),
    ("model.kind", "tomo", "one of auto, ptycho, holo"),
    ("run.save_tiff", "maybe", "true or false"),
    ("run.backend", None, "cannot be unset"),
    ("constraints.support", "mask.txt", "none, auto or a path"),
    ("loss.mask_path", "mask.png", ".npy or .h5"),
    ("optimizer.lr_objct", 1.0, "did you mean 'optimizer.lr_object'"),
])
def test_set_value_refuses_with_path(path, value, fragment):
    cfg = ReconConfig()
    before = C.get_value(cfg, path) if "objct" not in path else None
    with pytest.raises(ConfigError) as info:
        C.set_value(cfg, path, value)
    msg = str(info.value)
    assert msg.startswith(path.split("[")[0]) and fragment in msg, msg
    if before is not None:
        assert C.get_value(cfg, path) == before  # unchanged on failure


def test_toml_round_trip_with_none_and_tuples(tmp_path):
    cfg = ReconConfig()
    cfg.data.path = "a dir/data.h5"
    cfg.data.distances_m = [0.01, 0.02]
    cfg.model.object_shape = (3, 4, 5)
    cfg.optimizer.lr_delta = 1.5e-7
    cfg.run.precision = "double"
    for comments in (True, False):
        text = C.to_toml(cfg, comments=comments)
        parsed = tomllib.loads(text)
        assert "energy_ev" not in parsed["data"]  # None is omitted, TOML has no null
        assert C.from_toml(text) == cfg
    p = tmp_path / "cfg.toml"
    C.to_toml(cfg, p)
    assert C.from_toml(p) == cfg and C.from_toml(str(p)) == cfg
    assert [f for f in os.listdir(tmp_path)] == ["cfg.toml"]  # no temp file left behind


def test_unset_probe_refinement_round_trips_and_explicit_values_stay():
    cfg = ReconConfig()
    assert cfg.refine.probe is None
    assert C.from_toml(C.to_toml(cfg)).refine.probe is None
    for value in (True, False):
        assert C.from_toml(f"[refine]\nprobe = {str(value).lower()}\n").refine.probe is value
    assert C.preset("ptycho").refine.probe is True and C.preset("tomo").refine.probe is None


def test_json_round_trip(tmp_path):
    cfg = C.preset("holo")
    cfg.data.distances_m = [0.1, 0.2, 0.3]
    text = C.to_json(cfg)
    assert json.loads(text)["data"]["energy_ev"] is None
    assert C.from_json(text) == cfg
    p = tmp_path / "c.json"
    C.to_json(cfg, p)
    assert C.from_json(p) == cfg
    assert C.from_dict(C.to_dict(cfg)) == cfg


def test_missing_keys_take_defaults():
    cfg = C.from_toml("[optimizer]\nlr_probe = 0.5\n")
    assert cfg.optimizer.lr_probe == 0.5 and cfg.run == ReconConfig().run


@pytest.mark.parametrize("text,fragment", [
    ("[optimizer]\nlr_objet = 1.0\n", "optimizer.lr_objet: unknown configuration key"),
    ("[optimiser]\nlr_object = 1.0\n", "optimiser: unknown group (did you mean 'optimizer'?)"),
    ("[run]\nepochs = \"10\"\n", "run.epochs: expected int, got '10' (str)"),
    ("[run]\nepochs = 10.0\n", "run.epochs: expected int"),
    ("[data]\ndistances_m = [0.1, \"x\"]\n", "data.distances_m[1]: expected float"),
    ("[model]\nobject_shape = [1, 2]\n", "model.object_shape: expected tuple[int, int, int] | None"),
    ("run = 3\n", "run: expected a table [run]"),
    ("[run\n", "invalid TOML"),
    ("[model]\nkind = \"holo\"\n[refine]\npositions = true\n", "refine.positions"),
])
def test_from_toml_refuses_bad_input(text, fragment):
    with pytest.raises(ConfigError) as info:
        C.from_toml(text)
    assert fragment in str(info.value), str(info.value)


def test_errors_from_file_name_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[run]\nepochs = -1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: run\.epochs: must be >= 1"):
        C.from_toml(p)
    with pytest.raises(ConfigError, match="cannot read"):
        C.from_toml(tmp_path / "missing.toml")


@pytest.mark.parametrize("kind", ["ptycho", "holo", "tomo"])
def test_example_config_is_commented_and_parses_back(kind):
    text = C.example_config(kind)
    assert C.from_toml(text) == C.preset(kind)
    assert "# photon energy" in text and "[eV]" in text and "(auto | adam | momentum | lbfgs)" in text
    assert "# energy_ev = <float>" in text  # unset optional shown commented out
    with pytest.raises(ConfigError):
        C.example_config("xrf")


def test_configuration_and_data_files_accept_the_same_energies_and_pixel_sizes():
    """One rule: a value a data file may not hold cannot be set as an override either."""
    from slicewise.engine.errors import DataFileError
    from slicewise.engine.geometry import ENERGY_RANGE_EV, PIXEL_RANGE_M, Geometry
    from slicewise.engine.io.datafile import Dataset

    frames = np.ones((1, 1, 8, 8), np.float32)
    for path, key, (lo, hi) in (("data.energy_ev", "energy_ev", ENERGY_RANGE_EV),
                                ("data.pixel_size_m", "pixel_size_m", PIXEL_RANGE_M)):
        geo = {"energy_ev": 8000.0, "pixel_size_m": 1e-8}
        for bad in (lo * 0.5, hi * 2):
            with pytest.raises(ConfigError, match=path):
                C.set_value(ReconConfig(), path, bad)
            with pytest.raises(DataFileError, match=key):
                Dataset.from_arrays(frames, Geometry("farfield", **{**geo, key: bad}))
        for good in (lo, hi):
            C.set_value(ReconConfig(), path, good)
            Dataset.from_arrays(frames, Geometry("farfield", **{**geo, key: good}))


def test_a_toml_file_with_a_byte_order_mark_is_read(tmp_path):
    """Windows editors save UTF-8 with a byte-order mark; it is not part of the TOML."""
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff[run]\nepochs = 7\n".encode("utf-8"))
    assert C.from_toml(path).run.epochs == 7
    assert C.from_toml("\ufeff[run]\nepochs = 8\n").run.epochs == 8
