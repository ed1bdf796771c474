"""The simulation configuration goes through the same metadata-driven schema as the
reconstruction's: typed fields with unit, help, choices and range; errors name the field."""

import pytest

from slicewise.cli.main import main
from slicewise.engine.errors import ConfigError
from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.simulate import PRESETS, SCHEMA, SimulationConfig


def test_every_field_carries_metadata_for_the_form():
    infos = {i.path: i for i in SCHEMA.fields(SimulationConfig())}
    assert infos["energy_ev"].unit == "eV" and infos["energy_ev"].min == 100
    assert infos["modality"].choices == ("ptycho", "holo")
    assert infos["phantom.kind"].choices == ("cone", "siemens", "spheres", "cell")
    assert infos["distances_m"].type_name == "tuple[float, ...]"
    assert all(i.help for i in infos.values())


@pytest.mark.parametrize("d, field", [
    ({"energy_ev": 5.0}, "energy_ev"),
    ({"phantom": {"n_spheres": 0}}, "phantom.n_spheres"),
    ({"object_shape": [8, 8]}, "object_shape"),
    ({"distances_m": [1e-4, -1e-4]}, "distances_m[1]"),
    ({"scan": "zigzag"}, "scan"),
    ({"material": "unobtainium"}, "material"),
    ({"probe_kind": "gaussian", "probe_defocus_m": 1e-6}, "probe_defocus_m"),
    ({"energy": 1e4}, "energy"),
])
def test_invalid_values_are_refused_naming_the_field(d, field):
    with pytest.raises(ConfigError) as err:
        SimulationConfig.from_dict(d)
    assert str(err.value).startswith(field + ":")


def test_text_from_a_form_is_parsed_and_round_trips():
    cfg = SimulationConfig()
    SCHEMA.set(cfg, "distances_m", "4e-5, 8e-5")
    SCHEMA.set(cfg, "phantom.kind", "spheres")
    assert cfg.distances_m == (4e-5, 8e-5) and cfg.phantom.kind == "spheres"
    assert SimulationConfig.from_dict(cfg.to_dict()) == cfg


def test_presets_validate():
    for name, preset in PRESETS.items():
        cfg = SimulationConfig.from_dict(preset)
        assert isinstance(cfg.phantom, PhantomSpec), name


def test_cli_simulate_reports_the_field(tmp_path, capsys):
    conf = tmp_path / "sim.toml"
    conf.write_text("n_angles = 0\n")
    assert main(["simulate", str(tmp_path / "x.h5"), "--config", str(conf)]) == 2
    assert "n_angles" in capsys.readouterr().err


def test_commented_toml_round_trips_and_drives_the_cli(tmp_path):
    cfg = SimulationConfig.from_dict(PRESETS["spheres-holo"])
    SCHEMA.set(cfg, "object_shape", "16, 16, 16")
    text = SCHEMA.to_toml(cfg)
    assert "# photon energy [eV] (>= 100, <= 200000)" in text and "\n[phantom]\n" in text
    assert SCHEMA.from_toml(text) == cfg
    conf = tmp_path / "sim.toml"
    conf.write_text(text)
    assert main(["simulate", str(tmp_path / "x.h5"), "--config", str(conf)]) == 0
