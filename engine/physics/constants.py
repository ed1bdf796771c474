"""Physical constants (one place) and the photon energy <-> wavelength relation."""

from __future__ import annotations

#: Planck constant times the speed of light, eV m: ``lambda = HC_EV_M / E``.
HC_EV_M = 1.239841984e-6


def wavelength_m(energy_ev: float) -> float:
    """Photon wavelength in metres for an energy in eV."""
    if not energy_ev > 0:
        raise ValueError(f"photon energy must be positive (eV), got {energy_ev}")
    return HC_EV_M / float(energy_ev)


def energy_ev(wavelength: float) -> float:
    """Photon energy in eV for a wavelength in metres (the inverse of :func:`wavelength_m`)."""
    if not wavelength > 0:
        raise ValueError(f"wavelength must be positive (m), got {wavelength}")
    return HC_EV_M / float(wavelength)
