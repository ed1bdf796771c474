"""Starting guesses (engine/recon/initial_guess.py) as a run sets them up: the choice by the data
loss, the ratio from ``init.material``, what is written back into the configuration."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from scale_sweep import cases, correlation, example_for, write_case  # noqa: E402

from slicewise.engine.backend import to_host  # noqa: E402
from slicewise.engine.errors import ConfigError  # noqa: E402
from slicewise.engine.materials import absorption_ratio, material_optics  # noqa: E402
from slicewise.engine.recon.config import set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402


def test_absorption_ratio_of_names_formulas_and_densities():
    named = absorption_ratio("SiO2 glass", 10000)
    assert named == pytest.approx(absorption_ratio("SiO2", 10000), rel=1e-6)
    assert named == pytest.approx(absorption_ratio("SiO2:1.0", 10000), rel=1e-6)
    d, b = material_optics("SiO2", 2.2, 10000)
    assert named == pytest.approx(b / d, rel=1e-6)
    # absorption grows faster than phase towards low energies
    assert absorption_ratio("SiO2", 2000) > 10 * named
    with pytest.raises(ConfigError, match="formula"):
        absorption_ratio("Xx9", 10000)


def _holo1(tmp_path, scale="mid"):
    case = next(c for c in cases((scale,)) if c.name == f"holo1-{scale}")
    path, truth = write_case(case, tmp_path)
    cfg = example_for(case, path, 1)
    set_value(cfg, "run.checkpoint_every", 0)
    set_value(cfg, "run.save_tiff", False)
    return case, cfg, truth


def _level(rec, truth) -> float:
    """Least-squares factor of the started delta on the true one (1 = the right level)."""
    d = np.asarray(to_host(rec.problem.params["delta"]), float).sum(0)
    t = np.asarray(truth["delta"], float).sum(0)
    return float((d * t).sum() / (t * t).sum())


def test_material_sets_the_ratio_of_a_single_distance_guess(tmp_path, caplog):
    case, cfg, truth = _holo1(tmp_path)
    set_value(cfg, "init.material", case.sim.material)
    with caplog.at_level(logging.INFO, logger="slicewise"):
        rec = Reconstruction(cfg, base_dir=tmp_path)
    ratio = absorption_ratio(case.sim.material, case.sim.energy_ev)
    assert rec.config.init.guess in ("paganin", "ctf", "iterative")
    # written back, so that the saved configuration rebuilds the same start
    assert rec.config.init.absorption_ratio == pytest.approx(ratio, rel=1e-6)
    assert "init.material" in caplog.text and "one propagation distance" not in caplog.text
    c = correlation(to_host(rec.problem.params["delta"]), truth["delta"])
    assert c >= 0.95, c       # measured 0.998 before any iteration: margin 0.048
    level = _level(rec, truth)
    # measured 0.985 (without init.material: 1.16, the ratio 0.01 of the decade grid)
    assert 0.85 <= level <= 1.15, level


def test_single_distance_without_a_ratio_warns_that_the_level_is_assumed(tmp_path, caplog):
    _, cfg, _ = _holo1(tmp_path)
    with caplog.at_level(logging.INFO, logger="slicewise"):
        rec = Reconstruction(cfg, base_dir=tmp_path)
    assert rec.config.init.guess in ("paganin", "ctf", "iterative")
    assert rec.config.init.absorption_ratio in (0.01, 0.1, 1.0)
    warned = [r for r in caplog.records if "one propagation distance" in r.getMessage()]
    assert warned and "init.material" in warned[0].getMessage()


def test_an_unknown_material_is_refused_naming_the_field(tmp_path):
    _, cfg, _ = _holo1(tmp_path)
    set_value(cfg, "init.material", "Qz7")
    with pytest.raises(ConfigError, match=r"init\.material = 'Qz7'"):
        Reconstruction(cfg, base_dir=tmp_path)


def test_vacuum_start_is_left_alone(tmp_path):
    _, cfg, _ = _holo1(tmp_path)
    set_value(cfg, "init.guess", "vacuum")
    rec = Reconstruction(cfg, base_dir=tmp_path)
    assert float(np.abs(to_host(rec.problem.params["delta"])).max()) == 0.0
    assert rec.config.init.absorption_ratio is None
