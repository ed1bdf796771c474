"""Material optical constants (xraylib) and the named-material table."""

from __future__ import annotations

import math

import pytest
import xraylib

from slicewise.engine.errors import ConfigError
from slicewise.engine.materials import NAMED_MATERIALS, material_optics, named_material

# Henke/CXRO tables: fused silica SiO2 (2.2 g/cm^3) at 10 keV has delta = 4.60e-6.
SIO2_10KEV_DELTA_LITERATURE = 4.60e-6


def free_electron_delta(electrons_per_molecule, molar_mass_g, density_g_cm3, energy_ev):
    """delta = r_e lambda^2 n_e / (2 pi), valid far from absorption edges (f1 ~ Z)."""
    r_e, n_a = 2.8179403262e-15, 6.02214076e23
    lam = 1.239841984e-6 / energy_ev
    n_e = density_g_cm3 / molar_mass_g * n_a * electrons_per_molecule * 1e6  # per m^3
    return r_e * lam ** 2 * n_e / (2 * math.pi)


def test_sio2_at_10kev_matches_xraylib_and_literature():
    delta, beta = material_optics("SiO2", 2.2, 10_000.0)
    assert delta == pytest.approx(1 - xraylib.Refractive_Index_Re("SiO2", 10.0, 2.2), rel=1e-12)
    assert beta == pytest.approx(xraylib.Refractive_Index_Im("SiO2", 10.0, 2.2), rel=1e-12)
    assert delta == pytest.approx(SIO2_10KEV_DELTA_LITERATURE, rel=0.02)
    assert delta == pytest.approx(free_electron_delta(30, 60.08, 2.2, 10_000.0), rel=0.02)
    assert 0 < beta < delta / 10  # glass at 10 keV: a phase object, weak absorption


def test_signs_and_scaling():
    d1, b1 = material_optics("Au", 19.3, 10_000.0)
    d2, b2 = material_optics("Au", 9.65, 10_000.0)
    assert d1 > 0 and b1 > 0
    assert d2 == pytest.approx(d1 / 2, rel=1e-9) and b2 == pytest.approx(b1 / 2, rel=1e-9)
    d_hi, _ = material_optics("SiO2", 2.2, 20_000.0)  # delta ~ E^-2 away from edges
    assert d_hi == pytest.approx(material_optics("SiO2", 2.2, 10_000.0)[0] / 4, rel=0.03)


def test_named_materials():
    glass = named_material("SiO2 glass")
    assert glass.formula == "SiO2" and glass.density_g_cm3 == 2.2
    assert named_material("pmma").formula == "C5H8O2"  # case-insensitive
    assert glass.optics(10_000.0) == material_optics("SiO2", 2.2, 10_000.0)
    for mat in NAMED_MATERIALS.values():
        delta, beta = mat.optics(8_000.0)
        assert delta > 0 and beta > 0
    with pytest.raises(ConfigError, match="unobtainium"):
        named_material("unobtainium")


@pytest.mark.parametrize("formula, rho, energy, match", [
    ("Xq2O", 2.2, 1e4, "Xq2O.*SiO2"),
    ("sio2", 2.2, 1e4, "sio2"),
    ("", 2.2, 1e4, "formula"),
    ("SiO2", 0.0, 1e4, "density_g_cm3"),
    ("SiO2", -1.0, 1e4, "density_g_cm3"),
    ("SiO2", 2.2, 0.0, "energy_ev"),
    ("SiO2", 2.2, -5.0, "energy_ev"),
    ("SiO2", 2.2, float("nan"), "energy_ev"),
])
def test_bad_inputs_raise_config_error(formula, rho, energy, match):
    with pytest.raises(ConfigError, match=match):
        material_optics(formula, rho, energy)
