"""Refractive-index decrements of materials at an X-ray energy, from xraylib's tabulated data.

Slicewise writes the refractive index as ``n = 1 - delta + i beta`` (see ARCHITECTURE.md).
xraylib's ``Refractive_Index_Re(formula, E_keV, rho)`` returns ``Re(n) = 1 - delta`` and
``Refractive_Index_Im`` returns ``Im(n) = beta`` (positive: xraylib uses the absorption
convention ``beta = mu lambda / (4 pi)`` with the total attenuation cross section), so::

    delta = 1 - Refractive_Index_Re(...)      beta = Refractive_Index_Im(...)

Example: SiO2 glass (2.2 g/cm^3) at 10 keV has delta ~ 4.60e-6 and beta ~ 4.1e-8.

Densities are in g/cm^3 (xraylib's unit, and the unit every table quotes); energies in eV.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True)
class Material:
    """A compound and its mass density.

    Attributes
    ----------
    formula: chemical formula xraylib understands (``"SiO2"``, ``"C5H8O2"``) or a NIST compound
        name from ``xraylib.GetCompoundDataNISTList()`` (e.g. ``"Water, Liquid"``).
    density_g_cm3: mass density, g/cm^3.
    """

    formula: str
    density_g_cm3: float

    def optics(self, energy_ev: float) -> tuple[float, float]:
        """``(delta, beta)`` of this material at ``energy_ev`` (eV)."""
        return material_optics(self.formula, self.density_g_cm3, energy_ev)


#: Named materials (keys are matched case-insensitively). Densities: common handbook values.
NAMED_MATERIALS: dict[str, Material] = {
    "SiO2 glass": Material("SiO2", 2.2),      # fused silica
    "gold": Material("Au", 19.3),
    "silicon": Material("Si", 2.33),
    "water": Material("H2O", 1.0),
    "PMMA": Material("C5H8O2", 1.18),          # poly(methyl methacrylate)
    "tungsten": Material("W", 19.25),
    "silicon nitride": Material("Si3N4", 3.17),
    "polyimide": Material("C22H10N2O5", 1.42),  # Kapton
}


def named_material(name: str) -> Material:
    """Look up a material of :data:`NAMED_MATERIALS` by name (case-insensitive)."""
    key = str(name).strip().lower()
    for known, mat in NAMED_MATERIALS.items():
        if known.lower() == key:
            return mat
    raise ConfigError(f"unknown material name {name!r}; known materials: "
                      f"{', '.join(repr(k) for k in NAMED_MATERIALS)} "
                      "(or give a chemical formula and a density, e.g. formula='SiO2', "
                      "density_g_cm3=2.2)")


def material_optics(formula: str, density_g_cm3: float, energy_ev: float) -> tuple[float, float]:
    """Return ``(delta, beta)`` of ``formula`` at mass density ``density_g_cm3`` and ``energy_ev``.

    Parameters
    ----------
    formula: chemical formula (``"SiO2"``, ``"Au"``, ``"C5H8O2"``) or NIST compound name.
    density_g_cm3: mass density in g/cm^3, > 0.
    energy_ev: photon energy in eV, > 0 (xraylib's tables cover roughly 0.1 keV to 1 MeV).

    Raises
    ------
    ConfigError: non-positive/non-finite density or energy, or a formula xraylib cannot parse.
    """
    try:
        rho = float(density_g_cm3)
        e_ev = float(energy_ev)
    except (TypeError, ValueError):
        raise ConfigError(f"density_g_cm3 and energy_ev must be numbers, got "
                          f"{density_g_cm3!r} and {energy_ev!r}") from None
    if not (rho > 0 and rho < float("inf")):
        raise ConfigError(f"density_g_cm3 must be a positive number of g/cm^3 "
                          f"(e.g. 2.2 for SiO2 glass), got {density_g_cm3!r}")
    if not (e_ev > 0 and e_ev < float("inf")):
        raise ConfigError(f"energy_ev must be a positive photon energy in eV "
                          f"(e.g. 10000 for 10 keV), got {energy_ev!r}")
    if not isinstance(formula, str) or not formula.strip():
        raise ConfigError(f"formula must be a chemical formula such as 'SiO2', got {formula!r}")

    import xraylib  # noqa: PLC0415 - imported lazily: only simulation needs material tables

    e_kev = e_ev / 1000.0
    try:
        re_n = xraylib.Refractive_Index_Re(formula, e_kev, rho)
        im_n = xraylib.Refractive_Index_Im(formula, e_kev, rho)
    except ValueError as exc:
        msg = str(exc)
        if "formula" in msg.lower() or "compound" in msg.lower():
            raise ConfigError(f"unknown chemical formula {formula!r} (xraylib: {msg}); give a "
                              "formula such as 'SiO2', 'Au' or 'C5H8O2' (element symbols are "
                              "case-sensitive), or a named material such as 'SiO2 glass'") from None
        raise ConfigError(f"xraylib cannot compute the refractive index of {formula!r} at "
                          f"{e_ev} eV, density {rho} g/cm^3: {msg}") from None
    delta, beta = 1.0 - float(re_n), float(im_n)
    if not beta >= 0.0:  # guard against a change of sign convention in xraylib
        raise ConfigError(f"xraylib returned a negative absorption index beta={beta} for "
                          f"{formula!r}; Slicewise expects n = 1 - delta + i beta with beta >= 0")
    return delta, beta


def parse_material(spec: str) -> Material:
    """A material from its text form: a name of :data:`NAMED_MATERIALS` or ``FORMULA:DENSITY``
    (density in g/cm^3, e.g. ``"SiO2:2.2"``)."""
    if ":" in spec:
        formula, density = spec.split(":", 1)
        try:
            return Material(formula.strip(), float(density))
        except ValueError:
            raise ConfigError(f"material {spec!r}: expected FORMULA:DENSITY_g_cm3, e.g. "
                              "'SiO2:2.2'") from None
    return named_material(spec)


def absorption_ratio(spec: str, energy_ev: float) -> float:
    """``beta / delta`` of a material at ``energy_ev`` (eV). ``spec``: as :func:`parse_material`,
    or a bare chemical formula (``"C5H8O2"``): the ratio does not depend on the density."""
    spec = str(spec).strip()
    is_named = any(k.lower() == spec.lower() for k in NAMED_MATERIALS)
    mat = parse_material(spec) if (":" in spec or is_named) else Material(spec, 1.0)
    delta, beta = mat.optics(energy_ev)
    if not delta > 0:
        raise ConfigError(f"material {spec!r} has delta = {delta:.3g} at {energy_ev:g} eV (near an "
                          "absorption edge?); its beta/delta ratio is no use, set the ratio itself")
    return beta / delta
