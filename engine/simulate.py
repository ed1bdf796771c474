"""Simulated data sets: phantom -> forward model -> (noisy) intensities -> data file.

``slicewise simulate`` is the command-line face; :func:`simulate` the library one. A
:class:`SimulationConfig` (TOML-serialisable) describes phantom, material, modality, geometry,
probe, scan and noise; the written file keeps the ground truth in a separate group (``/truth``)
that reconstructions never read as input.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__
from .backend import get_backend, to_host
from .config_schema import Schema, field_factory
from .errors import ConfigError
from .geometry import Geometry
from .io.adorym import write_adorym
from .io.datafile import Dataset
from .io.slicewise_format import write_dataset
from .materials import parse_material
from .models.common import Optics
from .models.holo import HoloModel
from .models.ptycho import PtychoModel
from .phantoms import PHANTOM_KINDS, PhantomSpec, make_phantom, occupancy_to_delta_beta
from .probes import airy_probe, gaussian_probe
from .scans import (STAGE_ERROR_CUT, fermat_spiral_scan, overlap_to_step, perturb_positions,
                    raster_scan, stage_errors)

log = logging.getLogger(__name__)

MODALITIES = ("ptycho", "holo")


_sample = field_factory("sample")
_beam = field_factory("experiment")
_scan = field_factory("ptychography")
_out = field_factory("noise and output")


@dataclass
class SimulationConfig:
    """Everything that defines a simulated data set. Lengths in metres unless named ``_px``."""

    modality: str = _beam("holo", "ptycho: far field, scanned probe; holo: near field, full "
                          "field", choices=MODALITIES)
    phantom: PhantomSpec = field(default_factory=PhantomSpec)
    material: str = _sample("SiO2 glass", "a named material, or FORMULA:DENSITY with the density "
                            "in g/cm3, e.g. SiO2:2.2")
    object_shape: tuple[int, int, int] = _sample((32, 32, 32), "object grid (nz, ny, nx); the "
                                                 "beam runs along z", "voxels", min=1, max=4096)
    energy_ev: float = _beam(10000.0, "photon energy", "eV", min=100, max=200_000)
    pixel_size_m: float = _sample(50e-9, "pixel (voxel) size", "m", min=1e-12, max=1e-3)
    slice_thickness_m: float | None = _sample(None, "slice thickness along the beam; unset: "
                                              "cubic voxels (= pixel size)", "m", min=0,
                                              min_exclusive=True)
    n_angles: int = _beam(1, "number of tomographic angles (1: no tomography)", min=1)
    angle_range_deg: float = _beam(180.0, "angles spread over [0, range)", "deg", min=0, max=360)
    distances_m: tuple[float, ...] = _beam((5e-5, 1e-4), "holography: sample-to-detector "
                                           "distance(s)", "m", min=0, min_exclusive=True)
    probe_kind: str = _scan("airy", "the probe: a (defocused) Airy disc or a Gaussian",
                            choices=("airy", "gaussian"))
    probe_shape: tuple[int, int] = _scan((32, 32), "probe window (py, px)", "px", min=2)
    probe_size_px: float = _scan(6.0, "Airy first-ring radius, or Gaussian FWHM", "px", min=0,
                                 min_exclusive=True)
    probe_defocus_m: float = _scan(0.0, "Airy probe: distance from the focus", "m")
    scan: str = _scan("raster", "scan pattern", choices=("raster", "fermat"))
    scan_step_px: float = _scan(4.0, "scan step", "px", min=0, min_exclusive=True)
    position_error_px: float = _scan(0.0, "random error added to the positions written to the "
                                     "file (the true ones go to /truth)", "px", min=0)
    stage_error_std_px: float = _scan(0.0, "a stage that misses its targets: the frames are made at "
                                      "the scan pattern plus normal errors of this standard "
                                      "deviation per coordinate (cut at 2.5 std), the file holds "
                                      "the pattern, the true positions go to /truth", "px", min=0)
    photons: float | None = _out(None, "Poisson noise: photons per frame (ptycho) or per pixel "
                                 "(holo); unset: noise-free", min=0, min_exclusive=True)
    seed: int = _out(0, "random seed of the noise and position errors", min=0)
    layout: str = _out("slicewise", "file layout", choices=("slicewise", "adorym"))

    def validate(self) -> "SimulationConfig":
        """Check every field (errors name it) and the rules between fields; returns self."""
        return SCHEMA.validate(self)

    def to_dict(self) -> dict:
        return SCHEMA.to_dict(self, drop_none=True)

    @classmethod
    def from_dict(cls, d: dict, source: str = "") -> "SimulationConfig":
        """Build and validate from a (TOML) table; unknown keys are refused by name."""
        d = {k: (dataclasses.asdict(v) if isinstance(v, PhantomSpec) else v) for k, v in d.items()}
        return SCHEMA.from_dict(d, source)

    def copy(self) -> "SimulationConfig":
        return copy.deepcopy(self)

    @property
    def angles_rad(self) -> np.ndarray:
        if self.n_angles == 1:
            return np.zeros(1)
        return np.deg2rad(np.arange(self.n_angles) * self.angle_range_deg / self.n_angles)


def _check_value(path: str, v) -> None:
    if path == "material":
        try:
            parse_material(v)
        except ConfigError as exc:
            raise ConfigError(f"material: {exc}") from None


def _check_config(cfg: SimulationConfig) -> None:
    """Rules between fields (each message starts with the field to fix)."""
    if cfg.probe_kind == "gaussian" and cfg.probe_defocus_m:
        raise ConfigError("probe_defocus_m: applies to the Airy probe only (probe_kind = airy); "
                          "set it to 0")
    if cfg.phantom.radius_min_px > cfg.phantom.radius_max_px:
        raise ConfigError(f"phantom.radius_min_px: must not exceed radius_max_px "
                          f"({cfg.phantom.radius_max_px:g}), got {cfg.phantom.radius_min_px:g}")
    try:
        parse_material(cfg.material).optics(cfg.energy_ev)
    except ConfigError as exc:
        raise ConfigError(f"material: {exc}") from None


SCHEMA = Schema(SimulationConfig, _check_value, _check_config)


def ground_truth(cfg: SimulationConfig) -> dict:
    """The phantom's ``delta`` and ``beta`` volumes ``(nz, ny, nx)`` float64."""
    occ = make_phantom(cfg.phantom, cfg.object_shape)
    delta, beta = parse_material(cfg.material).optics(cfg.energy_ev)
    d, b = occupancy_to_delta_beta(occ, delta, beta)
    return {"delta": np.asarray(d, np.float64), "beta": np.asarray(b, np.float64)}


def make_probe(cfg: SimulationConfig, optics: Optics) -> np.ndarray:
    """Ptychography probe ``(1, py, px)``, normalised to ``photons`` per frame (or 1e6)."""
    n = cfg.photons or 1e6
    if cfg.probe_kind == "airy":
        p = airy_probe(cfg.probe_shape, cfg.probe_size_px, defocus_m=cfg.probe_defocus_m,
                       wavelength_m=optics.wavelength_m, pixel_m=cfg.pixel_size_m, n_photons=n)
    elif cfg.probe_kind == "gaussian":
        if cfg.probe_defocus_m:
            raise ConfigError("probe_defocus_m applies to the Airy probe only (probe_kind = 'airy')")
        p = gaussian_probe(cfg.probe_shape, cfg.probe_size_px, n_photons=n)
    else:
        raise ConfigError(f"probe_kind must be 'airy' or 'gaussian', got {cfg.probe_kind!r}")
    return p[None]


def make_positions(cfg: SimulationConfig) -> np.ndarray:
    """The scan pattern ``(n, 2)``, kept far enough from the object's edges that the stage's
    errors (``stage_error_std_px``) cannot move a window off it."""
    yx = cfg.object_shape[1:]
    margin = STAGE_ERROR_CUT * cfg.stage_error_std_px
    if cfg.scan == "raster":
        return raster_scan(yx, cfg.probe_shape, cfg.scan_step_px, margin)
    if cfg.scan == "fermat":
        return fermat_spiral_scan(yx, cfg.probe_shape, cfg.scan_step_px, margin)
    raise ConfigError(f"scan must be 'raster' or 'fermat', got {cfg.scan!r}")


def simulate_arrays(cfg: SimulationConfig, backend_name: str = "auto", progress=None,
                    truth: dict | None = None, true_positions_px=None) -> dict:
    """Run the forward model. Returns a dict with ``intensities`` ``(n_angles, n_spots, fy, fx)``
    float32 in the model convention (see docs/ARCHITECTURE.md), geometry and ``truth``.

    ``truth``: optional ``{"delta", "beta"}`` volumes ``cfg.object_shape`` to image instead of the
    phantom that ``cfg.phantom`` and ``cfg.material`` describe (objects no phantom kind builds,
    e.g. separated layers for multislice tests). ``true_positions_px``: ptychography, optional
    ``(n, 2)`` positions the frames are made at instead of the scan pattern plus
    ``stage_error_std_px`` (one per point of the pattern, which the file holds): a scan with
    errors no option describes, e.g. a miscalibrated stage."""
    cfg.validate()
    be = get_backend(backend_name, "double")
    dz = cfg.slice_thickness_m or cfg.pixel_size_m
    optics = Optics(cfg.energy_ev, cfg.pixel_size_m, dz)
    if truth is None:
        truth = ground_truth(cfg)
    else:
        truth = {k: np.asarray(truth[k], np.float64) for k in ("delta", "beta")}
        if any(v.shape != tuple(cfg.object_shape) for v in truth.values()):
            raise ConfigError(f"truth: delta and beta must both have object_shape {tuple(cfg.object_shape)}, "
                              f"got {truth['delta'].shape} and {truth['beta'].shape}")
    params = {"delta": be.asarray(truth["delta"]), "beta": be.asarray(truth["beta"])}
    angles = cfg.angles_rad
    rng = np.random.default_rng(cfg.seed)
    out = {"truth": truth, "angles_rad": angles, "energy_ev": cfg.energy_ev,
           "pixel_size_m": cfg.pixel_size_m, "slice_thickness_m": dz}
    if cfg.modality == "ptycho":
        probe = make_probe(cfg, optics)
        pos = make_positions(cfg)
        true_pos = pos + stage_errors(len(pos), cfg.stage_error_std_px, cfg.seed + 2)
        if true_positions_px is not None:
            true_pos = np.asarray(true_positions_px, dtype=float)
            if true_pos.shape != pos.shape:
                raise ConfigError(f"true_positions_px: the scan pattern has {len(pos)} positions "
                                  f"(shape {pos.shape}), got shape {true_pos.shape}")
        model = PtychoModel(cfg.object_shape, cfg.probe_shape, optics, be, angles_rad=angles,
                            positions_px=true_pos)
        params.update(probe=be.asarray(probe), positions=be.asarray(true_pos))
        spots = np.arange(len(pos))
        out.update(probe=probe, positions_px=pos, modality="farfield")
        if not np.array_equal(true_pos, pos):
            out["true_positions_px"] = true_pos
    else:
        dist = np.asarray(cfg.distances_m, float)
        model = HoloModel(cfg.object_shape, optics, be, angles_rad=angles)
        params["distances"] = be.asarray(dist)
        spots = np.arange(len(dist))
        out.update(distances_m=dist, modality="nearfield")
    frames = []
    for a in range(len(angles)):
        inten = to_host(model.predict(params, [a], spots))[0]
        if cfg.modality == "holo" and cfg.photons:
            inten = inten * cfg.photons
        if cfg.photons:
            inten = rng.poisson(np.maximum(inten, 0)).astype(np.float64)
            if cfg.modality == "holo":
                inten /= cfg.photons  # keep unit incident intensity; noise level set by photons
        frames.append(inten.astype(np.float32))
        if progress:
            progress(a + 1, len(angles))
    out["intensities"] = np.stack(frames)
    if cfg.modality == "ptycho" and cfg.position_error_px > 0:
        out.setdefault("true_positions_px", out["positions_px"])
        out["positions_px"] = perturb_positions(out["positions_px"], cfg.position_error_px, cfg.seed + 1)
    return out


def simulate(cfg: SimulationConfig, path: str | Path, backend_name: str = "auto", progress=None) -> Path:
    """Simulate and write the data file at ``path`` (atomic). Returns the path."""

    t0 = time.perf_counter()
    sim = simulate_arrays(cfg, backend_name, progress)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    truth = dict(sim["truth"])
    if "true_positions_px" in sim:
        truth["positions_px"] = sim["true_positions_px"]
    if cfg.layout == "adorym":
        write_adorym(path, sim["intensities"],
                     Geometry(modality=sim["modality"], energy_ev=cfg.energy_ev,
                              pixel_size_m=cfg.pixel_size_m,
                              angles_rad=sim["angles_rad"], positions_px=sim.get("positions_px"),
                              distances_m=sim.get("distances_m"),
                              slice_thickness_m=sim["slice_thickness_m"]),
                     probe=sim.get("probe"), truth=truth)
    else:
        ds = Dataset.from_arrays(sim["intensities"],
                                 Geometry(modality=sim["modality"], energy_ev=cfg.energy_ev,
                                          pixel_size_m=cfg.pixel_size_m,
                                          slice_thickness_m=sim["slice_thickness_m"],
                                          angles_rad=sim["angles_rad"],
                                          positions_px=sim.get("positions_px"),
                                          distances_m=sim.get("distances_m"),
                                          object_shape_yx=tuple(cfg.object_shape[1:])),
                                 probe=sim.get("probe"))
        prov = {"software": "slicewise", "version": __version__, "simulation": json.dumps(cfg.to_dict()),
                "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_dataset(path, ds, truth=truth, provenance=prov)
    log.info("simulated %s data %s in %.1f s -> %s", cfg.modality, sim["intensities"].shape,
             time.perf_counter() - t0, path)
    return path


# ---- command line --------------------------------------------------------------------------------

PRESETS = {
    "cone-holotomo": dict(modality="holo", n_angles=60, object_shape=(48, 48, 48)),
    "cone-ptychotomo": dict(modality="ptycho", n_angles=24, object_shape=(24, 24, 24), probe_shape=(16, 16),
                            probe_size_px=3.0, scan_step_px=4.0, pixel_size_m=2e-9, energy_ev=5000.0),
    "star-ptycho": dict(modality="ptycho", phantom=PhantomSpec(kind="siemens"), object_shape=(1, 96, 96),
                        material="gold", pixel_size_m=10e-9, slice_thickness_m=200e-9, probe_shape=(32, 32),
                        probe_size_px=6.0, scan_step_px=5.0, photons=1e6),
    "spheres-holo": dict(modality="holo", phantom=PhantomSpec(kind="spheres"), object_shape=(32, 64, 64)),
}


def add_simulate_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Simulate a data set (hollow glass cone by default) and write it as HDF5."
    p.add_argument("output", help="data file to write (.h5)")
    p.add_argument("--config", help="simulation TOML (keys of SimulationConfig); flags override it")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a ready-made data set")
    p.add_argument("--phantom", choices=PHANTOM_KINDS)
    p.add_argument("--modality", choices=MODALITIES)
    p.add_argument("--material", help="named material or FORMULA:DENSITY (default SiO2 glass)")
    p.add_argument("--shape", type=int, nargs=3, metavar=("NZ", "NY", "NX"))
    p.add_argument("--energy-ev", type=float)
    p.add_argument("--pixel-m", type=float, help="pixel (voxel) size, metres")
    p.add_argument("--angles", type=int, help="number of tomographic angles (1: none)")
    p.add_argument("--angle-range-deg", type=float)
    p.add_argument("--distances-m", type=float, nargs="+", help="near-field distances, metres")
    p.add_argument("--probe", choices=("airy", "gaussian"))
    p.add_argument("--probe-shape", type=int, nargs=2)
    p.add_argument("--probe-size-px", type=float)
    p.add_argument("--probe-defocus-m", type=float, help="Airy probe defocus, metres")
    p.add_argument("--scan", choices=("raster", "fermat"))
    p.add_argument("--step-px", type=float, help="scan step, pixels")
    p.add_argument("--overlap", type=float,
                   help="scan step from the probe overlap instead (fraction, e.g. 0.6 = 60 %%)")
    p.add_argument("--position-error-px", type=float,
                   help="uniform error of up to this many px added to the positions in the file")
    p.add_argument("--stage-error-px", type=float,
                   help="frames made off the scan pattern by normal errors of this std (px); the "
                        "file holds the pattern")
    p.add_argument("--photons", type=float, help="Poisson noise at this photon count")
    p.add_argument("--seed", type=int)
    p.add_argument("--layout", choices=("slicewise", "adorym"))
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "cupy"))
    p.set_defaults(func=run_simulate_cli)


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    d: dict = {}
    if args.config:
        import tomllib  # noqa: PLC0415 - tomli on Python 3.10, only when a TOML file is given

        try:
            d.update(tomllib.loads(Path(args.config).read_text(encoding="utf-8-sig")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read simulation config {args.config}: {exc}") from None
    if args.preset:
        d.update(PRESETS[args.preset])
    flags = {"modality": args.modality, "material": args.material, "object_shape": args.shape,
             "energy_ev": args.energy_ev, "pixel_size_m": args.pixel_m, "n_angles": args.angles,
             "angle_range_deg": args.angle_range_deg, "distances_m": args.distances_m,
             "probe_kind": args.probe, "probe_shape": args.probe_shape, "probe_size_px": args.probe_size_px,
             "probe_defocus_m": args.probe_defocus_m,
             "scan": args.scan, "scan_step_px": args.step_px, "position_error_px": args.position_error_px,
             "stage_error_std_px": args.stage_error_px,
             "photons": args.photons, "seed": args.seed, "layout": args.layout}
    d.update({k: v for k, v in flags.items() if v is not None})
    if args.overlap is not None:
        if args.step_px is not None:
            raise ConfigError("give either --step-px or --overlap, not both")
        size = d.get("probe_size_px", SimulationConfig.probe_size_px)
        # the probe's diameter: twice the Airy first-ring radius, or the Gaussian FWHM
        diameter = 2 * size if d.get("probe_kind", "airy") == "airy" else size
        d["scan_step_px"] = overlap_to_step(diameter, args.overlap)
    if args.phantom:
        ph = d.get("phantom")
        ph = dataclasses.asdict(ph) if isinstance(ph, PhantomSpec) else dict(ph or {})
        ph["kind"] = args.phantom
        d["phantom"] = ph
    if isinstance(d.get("phantom"), PhantomSpec):
        d["phantom"] = dataclasses.asdict(d["phantom"])
    return SimulationConfig.from_dict(d)


def run_simulate_cli(args: argparse.Namespace) -> int:

    cfg = config_from_args(args)
    cfg.validate()
    with tqdm(total=cfg.n_angles, desc="simulating", unit="angle") as bar:
        path = simulate(cfg, args.output, args.backend, progress=lambda i, n: bar.update(1))
    print(f"wrote {path} ({cfg.modality}, {cfg.n_angles} angle(s), object {cfg.object_shape})")
    return 0
