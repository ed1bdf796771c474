"""Clean cases of issue 20 item 7 (time to quality on noise-free data), written in Adorym's layout
and reconstructed with the example configurations (only data path and epochs set). Shared by
tests/test_strong_phase_start.py and benchmarks/bench_time_to_quality.py.

* ``ptycho2d`` -- 2D far-field ptychography of a thin glass Siemens star, 1364 positions on a
  Fermat spiral (the issue's 1352), probe in the file;
* ``holotomo-weak`` -- holotomography of weak spheres (largest projected phase 0.02 rad, beta =
  delta / 1000: about half a percent of intensity contrast), 36 angles, two distances;
* ``holo4-strong`` -- 4-distance holography of a Siemens star of about 1 rad of phase
  (beta / delta = 1/30).

``size = "bench"`` is the issue's size; ``"tiny"`` a CI-sized version of each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slicewise.engine.geometry import Geometry
from slicewise.engine.io.adorym import write_adorym
from slicewise.engine.phantoms import random_spheres, siemens_star
from slicewise.engine.physics.constants import wavelength_m
from slicewise.engine.recon.config import example_config, from_toml, set_value
from slicewise.engine.simulate import SimulationConfig, simulate_arrays

CASES = ("ptycho2d", "holotomo-weak", "holo4-strong")
ENERGY_EV = 10000.0


@dataclass(frozen=True)
class QualityCase:
    name: str
    example: str                  # `slicewise reconstruct --example` configuration
    sim: SimulationConfig
    truth: dict                   # delta, beta float64 (nz, ny, nx)


def _fresnel_distances(pixel_m: float, numbers) -> tuple:
    """Distances at Fresnel numbers ``p^2 / (lambda z)`` of one pixel."""
    lam = wavelength_m(ENERGY_EV)
    return tuple(pixel_m ** 2 / (lam * n) for n in numbers)


def cell(shape, n_blobs: int, seed: int = 0) -> np.ndarray:
    """A weak biological cell, float32 occupancy ``(nz, ny, nx)`` in [0, 1]: cytoplasm (0.3) in a
    membrane (0.8, about a pixel thick), a nucleus (0.6) off centre and ``n_blobs`` dense
    protein-like spheres (1.0); large smooth regions, as the issue's cases had."""
    nz, ny, nx = shape
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[:nz, :ny, :nx]
    cz, cy, cx = (nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2
    radius = 0.42 * min(ny, nx)
    rz = min(radius, 0.45 * nz)
    r = np.sqrt(((z - cz) / rz) ** 2 + ((y - cy) / radius) ** 2 + ((x - cx) / radius) ** 2)
    inside = np.clip((1.0 - r) * radius + 0.5, 0, 1)           # anti-aliased edge
    occ = 0.3 * inside + 0.5 * np.clip(1.0 - np.abs(1.0 - r) * radius, 0, 1)
    off = rng.uniform(-0.15, 0.15, 3) * radius
    rn = 0.35 * radius
    rnuc = np.sqrt(((z - cz - off[0] * rz / radius) / max(rn * rz / radius, 1.0)) ** 2
                   + ((y - cy - off[1]) / rn) ** 2 + ((x - cx - off[2]) / rn) ** 2)
    occ = np.maximum(occ, 0.6 * np.clip((1.0 - rnuc) * rn + 0.5, 0, 1))
    if n_blobs and min(shape) >= 5:
        blobs = random_spheres(shape, n_blobs, (1.0, max(1.5, min(nx, ny) / 16)), seed=seed + 1)
        occ = np.maximum(occ, blobs * inside)
    return occ.astype(np.float32)


def _scaled(occ: np.ndarray, phase_rad: float, dz: float, beta_over_delta: float,
            axis: int = 0) -> dict:
    """delta, beta of occupancy ``occ`` whose largest projection along ``axis`` (and along x,
    for a rotating object) is ``phase_rad``."""
    k = 2 * math.pi / wavelength_m(ENERGY_EV)
    proj = max(float(occ.sum(axis=0).max()), float(occ.sum(axis=2).max()) if axis else 0.0) * dz
    delta = occ.astype(np.float64) * (phase_rad / (k * proj))
    return {"delta": delta, "beta": delta * beta_over_delta}


def make_case(name: str, size: str = "bench") -> QualityCase:
    """The case ``name`` (:data:`CASES`) at ``size`` ("bench" or "tiny")."""
    bench = size == "bench"
    if name == "ptycho2d":
        n = 119 if bench else 40
        px, dz = 10e-9, 200e-9
        occ = cell((n, n, n), 30 if bench else 10, seed=11).sum(axis=0, keepdims=True)
        sim = SimulationConfig(modality="ptycho", object_shape=(1, n, n), energy_ev=ENERGY_EV,
                               pixel_size_m=px, slice_thickness_m=dz, probe_kind="gaussian",
                               probe_shape=(16, 16), probe_size_px=6.0, scan="fermat",
                               scan_step_px=3.0)
        return QualityCase(name, "ptycho", sim, _scaled(occ, 0.02, dz, 1e-3))
    if name == "holotomo-weak":
        n, n_angles = (32, 36) if bench else (16, 12)
        px = 50e-9
        occ = cell((n, n, n), 24 if bench else 8, seed=11)
        sim = SimulationConfig(modality="holo", object_shape=(n, n, n), energy_ev=ENERGY_EV,
                               pixel_size_m=px, n_angles=n_angles,
                               distances_m=_fresnel_distances(px, (0.5, 0.25)))
        return QualityCase(name, "tomo", sim, _scaled(occ, 0.02, px, 1e-3, axis=2))
    if name == "holo4-strong":
        n = 128 if bench else 32
        px, dz = 50e-9, 1e-6
        occ = siemens_star((n, n), n_spokes=16 if bench else 8)[None]
        sim = SimulationConfig(modality="holo", object_shape=(1, n, n), energy_ev=ENERGY_EV,
                               pixel_size_m=px, slice_thickness_m=dz,
                               distances_m=_fresnel_distances(px, (1.0, 0.6, 0.35, 0.2)))
        return QualityCase(name, "holo", sim, _scaled(occ, 1.0, dz, 1e-3))
    raise ValueError(f"unknown case {name!r}: one of {CASES}")


def write_case(case: QualityCase, folder: Path) -> Path:
    """Simulate ``case`` (noise-free) into an Adorym-layout file in ``folder``; returns its path."""
    sim = simulate_arrays(case.sim, "numpy", truth=case.truth)
    path = Path(folder) / f"{case.name}.h5"
    write_adorym(path, sim["intensities"],
                 Geometry(modality=sim["modality"], energy_ev=case.sim.energy_ev,
                          pixel_size_m=case.sim.pixel_size_m, angles_rad=sim["angles_rad"],
                          positions_px=sim.get("positions_px"), distances_m=sim.get("distances_m"),
                          slice_thickness_m=sim["slice_thickness_m"]),
                 probe=sim.get("probe"), truth=sim["truth"])
    return path


def example_for(case: QualityCase, data_path: Path, epochs: int):
    """The example configuration of ``case.example`` with only data path and epochs set."""
    cfg = from_toml(example_config(case.example))
    set_value(cfg, "data.path", str(data_path))
    set_value(cfg, "run.epochs", epochs)
    return cfg
