"""The scale sweep: every modality at several energies/materials spanning >= 4 decades of phase per
voxel, written in Adorym's layout and reconstructed with the example configuration (only the data
path and the number of epochs changed). Shared by tests/test_defaults_sweep.py and
benchmarks/bench_defaults.py.

Objects, sizes and scales differ from the demo (a 48^3 hollow SiO2 cone at 10 keV, 50 nm): random
spheres, a Siemens star and a small cone at 16-40 px, from a PMMA foam at 20 keV with 1 nm voxels
(6e-6 rad per voxel) to gold at 1.5 keV with 10 nm voxels (0.07 rad per voxel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from slicewise.engine.geometry import Geometry
from slicewise.engine.io.adorym import write_adorym
from slicewise.engine.materials import Material, named_material, parse_material
from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.physics.constants import wavelength_m
from slicewise.engine.recon.config import example_config, from_toml, set_value
from slicewise.engine.simulate import SimulationConfig, simulate_arrays


@dataclass(frozen=True)
class Case:
    name: str          # "<modality>-<scale>"
    example: str       # which `slicewise reconstruct --example` configuration
    sim: SimulationConfig
    epochs: int

    @property
    def phase_per_voxel(self) -> float:
        d, _ = parse_material(self.sim.material).optics(self.sim.energy_ev)
        dz = self.sim.slice_thickness_m or self.sim.pixel_size_m
        return 2 * math.pi / wavelength_m(self.sim.energy_ev) * d * dz


#: (material, energy eV, voxel m): weak (PMMA foam of 0.1 g/cm^3 at 20 keV, 1 nm voxels: delta
#: 6e-8, 6e-6 rad per voxel) .. strong (gold at 1.5 keV, 10 nm voxels: 0.07 rad per voxel): 4.1
#: decades of phase per voxel (2D cases use slices of 4 voxels: 2e-5 .. 0.3 rad).
SCALES = {
    "weak": ("C5H8O2:0.1", 20000.0, 1e-9),
    "mid": ("SiO2 glass", 8000.0, 10e-9),
    "strong": ("gold", 1500.0, 10e-9),
}

_SPHERES = PhantomSpec(kind="spheres", n_spheres=6, radius_min_px=2.0, radius_max_px=4.0, seed=3)
_BEADS = PhantomSpec(kind="spheres", n_spheres=8, radius_min_px=1.5, radius_max_px=3.0, seed=5)
_STAR = PhantomSpec(kind="siemens", n_spokes=8)
_CONE = PhantomSpec(kind="cone")


def _fresnel_distances(energy_ev: float, pixel_m: float, n_fresnel: tuple) -> tuple:
    """Distances at given Fresnel numbers N = p^2 / (lambda z) of one pixel (scale-free geometry)."""
    lam = wavelength_m(energy_ev)
    return tuple(pixel_m ** 2 / (lam * n) for n in n_fresnel)


def _base(modality_kind: str, scale: str) -> dict:
    mat, e, px = SCALES[scale]
    return dict(material=mat, energy_ev=e, pixel_size_m=px)


def cases(scales=("weak", "mid", "strong"), grow: int = 1, field: int = 1) -> list[Case]:
    """The sweep's cases; ``grow`` multiplies every length in pixels (objects, probes, scan steps,
    feature sizes, number of angles) for benchmarks on larger grids; ``field`` multiplies the
    lateral size of the single-view ptychography objects only (2D and multislice) at the same
    probe and scan step (the beads at the same density; the star fills the wider field): more scan
    positions, as real scans have (2D / multislice with grow 2: 81 / 36 at field 1, 484 / 289 at
    field 2, 2401 / 1444 at field 4). Holography keeps its field: a wider star has coarser
    features, where one or a few Fresnel distances see little phase contrast (at 256^2, field 4,
    the weak foam's star reached 0.69 / 0.89 from one / four distances in 200 epochs, with the
    defaults as with every hand configuration)."""
    g, f = int(grow), int(field)
    spheres = replace(_SPHERES, radius_min_px=2.0 * g, radius_max_px=4.0 * g)
    beads = replace(_BEADS, radius_min_px=1.5 * g, radius_max_px=3.0 * g,
                    n_spheres=_BEADS.n_spheres * f * f)   # the same density of beads
    out = []
    for s in scales:
        b = _base("", s)
        e, px = b["energy_ev"], b["pixel_size_m"]
        ptycho = dict(modality="ptycho", probe_kind="gaussian", probe_shape=(16 * g, 16 * g),
                      probe_size_px=6.0 * g, scan_step_px=3.0 * g)
        out += [
            Case(f"ptycho2d-{s}", "ptycho", SimulationConfig(
                phantom=_STAR, object_shape=(1, 40 * g * f, 40 * g * f), slice_thickness_m=4 * px,
                **ptycho, **b), 60),
            Case(f"ptychoms-{s}", "ptycho", SimulationConfig(
                phantom=beads, object_shape=(8 * g, 32 * g * f, 32 * g * f), **ptycho, **b), 60),
            Case(f"holo1-{s}", "holo", SimulationConfig(
                modality="holo", phantom=_STAR, object_shape=(1, 32 * g, 32 * g), slice_thickness_m=4 * px,
                distances_m=_fresnel_distances(e, px, (0.5,)), **b), 120),
            Case(f"holo4-{s}", "holo", SimulationConfig(
                modality="holo", phantom=_STAR, object_shape=(1, 32 * g, 32 * g), slice_thickness_m=4 * px,
                distances_m=_fresnel_distances(e, px, (1.0, 0.6, 0.35, 0.2)), **b), 80),
            Case(f"holotomo-{s}", "tomo", SimulationConfig(
                modality="holo", phantom=spheres, object_shape=(24 * g,) * 3, n_angles=24 * g,
                distances_m=_fresnel_distances(e, px, (0.5, 0.25)), **b), 15),
            Case(f"ptychotomo-{s}", "tomo", SimulationConfig(
                phantom=_CONE, object_shape=(16 * g,) * 3, n_angles=16 * g,
                **dict(ptycho, probe_shape=(12 * g, 12 * g), probe_size_px=4.0 * g,
                       scan_step_px=2.0 * g), **b), 15),
        ]
    return out


def write_case(case: Case, folder: Path, with_probe: bool = True) -> tuple[Path, dict]:
    """Simulate ``case`` and write it in Adorym's layout; returns (path, truth). ``with_probe``:
    keep the probe in the file (ptychography)."""
    sim = simulate_arrays(case.sim, "numpy")
    path = Path(folder) / f"{case.name}.h5"
    write_adorym(path, sim["intensities"],
                 Geometry(modality=sim["modality"], energy_ev=case.sim.energy_ev,
                          pixel_size_m=case.sim.pixel_size_m,
                          angles_rad=sim["angles_rad"], positions_px=sim.get("positions_px"),
                          distances_m=sim.get("distances_m"),
                          slice_thickness_m=sim["slice_thickness_m"]),
                 probe=sim.get("probe") if with_probe else None, truth=sim["truth"])
    return path, sim["truth"]


def example_for(case: Case, data_path: Path, epochs: int | None = None):
    """The example configuration of ``case.example``, only data path and epochs changed."""
    cfg = from_toml(example_config(case.example))
    set_value(cfg, "data.path", str(data_path))
    set_value(cfg, "run.epochs", epochs or case.epochs)
    return cfg


def correlation(recon: np.ndarray, truth: np.ndarray) -> float:
    """Pearson correlation; when the grids differ along z (Adorym's files do not say how many
    slices the object had), of the projections along the beam."""
    recon, truth = np.asarray(recon), np.asarray(truth)
    if recon.shape != truth.shape and recon.shape[1:] == truth.shape[1:]:
        recon, truth = recon.sum(axis=0), truth.sum(axis=0)
    a, b = np.ravel(recon).astype(float), np.ravel(truth).astype(float)
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def delta_scale(recon: np.ndarray, truth: np.ndarray) -> float:
    """Least-squares factor ``s = <r, t> / <t, t>`` of the reconstructed delta ``r`` on the true
    ``t`` (1 = the right level; correlation is blind to it); projections along the beam when the
    grids differ along z, as :func:`correlation`."""
    recon, truth = np.asarray(recon, float), np.asarray(truth, float)
    if recon.shape != truth.shape and recon.shape[1:] == truth.shape[1:]:
        recon, truth = recon.sum(axis=0), truth.sum(axis=0)
    return float((recon * truth).sum() / (truth * truth).sum())
