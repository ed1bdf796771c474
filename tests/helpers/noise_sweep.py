"""The noise sweep (issue 20, item 6): every modality x photons 1e3..1e7 x weak and strong contrast
x stored as integer counts and as scaled floats, at two sizes, deterministic from a seed. Shared
by the tests and by benchmarks/bench_noise.py.

The object is a biological cell (:func:`slicewise.engine.phantoms.biological_cell`: cytoplasm,
membrane, nucleus, protein-like blobs) of weak contrast: its largest projected phase shift is
:data:`PHASE_RAD` (weak: about 0.6 % intensity contrast in holotomography at the sweep's Fresnel
numbers, the issue's first case) or ten times that (strong), with beta = delta / 1000 (protein at
~10 keV). Photons are per pattern (far-field ptychography: the probe's photons) or per pixel of
the incident beam (holography, near-field ptychography). Stored as:

* ``"counts"``: the Poisson counts, integers (``Dataset.meta["integer_counts"]``, as a CXI file of
  int32 frames reads);
* ``"floats"``: the counts divided by a common scale per data set, ``photons``, float32 (a
  flat-fielded hologram of mean ~1, far-field patterns summing to ~1): photons per data unit =
  ``photons``.

Sizes: ``"tiny"`` (CI: a reduced sweep of a few dozen cases runs in a minute or two) and
``"bench"`` (the evidence and the benchmark: holotomography 32^3 / 36 angles, ptychotomography
24^3 / 8 angles x 64 positions, 2D ptychography of 625 positions, as the issue's cases).

    data = make_data(NoiseCase("holotomo", 1e5, "weak", "floats", "bench"))
    ds = data.dataset()        # in memory, truth attached
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slicewise.engine.backend import get_backend, to_host
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.models.common import Optics
from slicewise.engine.models.nfptycho import NearFieldPtychoModel, default_pad_px
from slicewise.engine.phantoms import biological_cell
from slicewise.engine.physics.optics import wavelength_m
from slicewise.engine.scans import raster_scan
from slicewise.engine.simulate import SimulationConfig, simulate_arrays
from slicewise.engine.twin import structured_probe

MODALITIES = ("ptycho2d", "ptychoms", "nfptycho", "holo1", "holo4", "holotomo", "ptychotomo")
PHOTONS = (1e3, 1e4, 1e5, 1e6, 1e7)
CONTRASTS = ("weak", "strong")
STORAGE = ("counts", "floats")
SIZES = ("tiny", "bench")

#: Largest projected phase shift (rad) of the weak cell; strong is ten times this.
PHASE_RAD = {"weak": 0.02, "strong": 0.2}
#: beta / delta of the cell (protein near 10 keV: ~6e-4).
BETA_OVER_DELTA = 1e-3
ENERGY_EV = 10000.0
#: Object pixel (m): far-field ptychography resolves finer than full-field holography.
PIXEL_M = {"far": 10e-9, "near": 50e-9}
#: Fresnel numbers of one pixel for the holography distances (scale-free geometry).
FRESNEL = {"holo1": (0.5,), "holo4": (1.0, 0.6, 0.35, 0.2), "holotomo": (0.5, 0.25),
           "nfptycho": (0.2,)}

#: Per modality and size: object (nz, ny, nx), angles, probe/frame (px), scan step (px), blobs.
GEOMETRY = {
    "tiny": {
        "ptycho2d": dict(shape=(1, 32, 32), angles=1, probe=16, step=3.0, blobs=6),
        "ptychoms": dict(shape=(4, 32, 32), angles=1, probe=16, step=3.0, blobs=6),
        "nfptycho": dict(shape=(1, 48, 48), angles=1, probe=24, step=4.0, blobs=6),
        "holo1": dict(shape=(1, 32, 32), angles=1, blobs=6),
        "holo4": dict(shape=(1, 32, 32), angles=1, blobs=6),
        "holotomo": dict(shape=(16, 16, 16), angles=12, blobs=4),
        "ptychotomo": dict(shape=(12, 12, 12), angles=8, probe=8, step=2.0, blobs=3),
    },
    "bench": {
        "ptycho2d": dict(shape=(1, 64, 64), angles=1, probe=16, step=2.0, blobs=14),
        "ptychoms": dict(shape=(4, 48, 48), angles=1, probe=16, step=3.0, blobs=10),
        "nfptycho": dict(shape=(1, 112, 112), angles=1, probe=48, step=46 / 9, blobs=16),
        "holo1": dict(shape=(1, 64, 64), angles=1, blobs=14),
        "holo4": dict(shape=(1, 64, 64), angles=1, blobs=14),
        "holotomo": dict(shape=(32, 32, 32), angles=36, blobs=12),
        "ptychotomo": dict(shape=(24, 24, 24), angles=8, probe=12, step=12 / 7, blobs=8),
    },
}
#: Multislice ptychography: slices this thick (m), so that the cell spans about one depth of
#: focus (2 p^2 / lambda = 1.6 um at 10 nm, 10 keV) and the slices are told apart.
MULTISLICE_DZ_M = 0.4e-6
#: Which ``slicewise reconstruct --example`` configuration each modality starts from.
EXAMPLE = {"ptycho2d": "ptycho", "ptychoms": "ptycho", "nfptycho": "nearfield-ptycho",
           "holo1": "holo", "holo4": "holo", "holotomo": "tomo", "ptychotomo": "tomo"}


@dataclass(frozen=True)
class NoiseCase:
    """One case of the sweep; ``photons`` None = noise-free (stored as floats of the clean
    intensities, at the photon scale of 1e5)."""

    modality: str
    photons: float | None
    contrast: str = "weak"
    storage: str = "floats"
    size: str = "tiny"
    seed: int = 0

    def __post_init__(self):
        for name, allowed in (("modality", MODALITIES), ("contrast", CONTRASTS),
                              ("storage", STORAGE), ("size", SIZES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} {getattr(self, name)!r}: expected one of {allowed}")

    @property
    def name(self) -> str:
        ph = "clean" if self.photons is None else f"{self.photons:.0e}".replace("+0", "")
        return f"{self.modality}-{self.contrast}-{ph}-{self.storage}-{self.size}"

    @property
    def example(self) -> str:
        return EXAMPLE[self.modality]

    @property
    def far_field(self) -> bool:
        return self.modality in ("ptycho2d", "ptychoms", "ptychotomo")


def noise_cases(modalities=MODALITIES, photons=PHOTONS, contrasts=CONTRASTS, storage=STORAGE,
                size: str = "tiny", seed: int = 0) -> list[NoiseCase]:
    """Every combination of the arguments, modality-major."""
    return [NoiseCase(m, p, c, s, size, seed) for m in modalities for p in photons
            for c in contrasts for s in storage]


def reduced_cases(size: str = "tiny") -> list[NoiseCase]:
    """The CI subset: every modality at the two ends and the middle of the photon range, weak
    contrast, scaled floats (the case the issue found failing), plus integer counts at 1e4."""
    out = noise_cases(photons=(1e3, 1e5, 1e7), contrasts=("weak",), storage=("floats",), size=size)
    return out + noise_cases(photons=(1e4,), contrasts=("weak",), storage=("counts",), size=size)


@dataclass
class NoiseData:
    """A simulated case: stored frames, the clean intensities, truth and geometry."""

    case: NoiseCase
    stored: np.ndarray            # (A, S, fy, fx) model convention: int32 counts or float32
    clean: np.ndarray             # float64 noise-free intensities in the stored units
    photons_per_unit: float       # photons per stored unit (1 for counts)
    geometry: Geometry
    truth: dict                   # delta, beta (nz, ny, nx) float64; nfptycho: positions too
    probe: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def dataset(self) -> Dataset:
        """The data set in memory (integers: marked as integer counts, as a CXI file is)."""
        meta = {"integer_counts": True, "frames_dtype": "int32"} \
            if self.case.storage == "counts" and self.case.photons is not None else {}
        return Dataset.from_arrays(self.stored.astype(np.float32), self.geometry,
                                   probe=self.probe, truth=dict(self.truth), meta=meta)

    def write(self, path: Path) -> Path:
        """The data set as a Slicewise HDF5 file (frames float32: whole numbers for counts)."""
        from slicewise.engine.io.slicewise_format import write_dataset  # noqa: PLC0415

        write_dataset(Path(path), self.dataset(), truth=dict(self.truth))
        return Path(path)


def cell_truth(case: NoiseCase) -> tuple[dict, float]:
    """The cell's delta and beta (float64 ``(nz, ny, nx)``) scaled to the case's contrast, and
    the slice thickness (m)."""
    g = GEOMETRY[case.size][case.modality]
    nz, ny, nx = g["shape"]
    occ = biological_cell(g["shape"], g["blobs"], (1.0, max(1.5, nx / 16)), seed=case.seed + 11)
    px = PIXEL_M["far" if case.far_field else "near"]
    dz = MULTISLICE_DZ_M if case.modality == "ptychoms" else px
    if nz == 1:   # a section of a cell as thick as the field is wide
        dz = nx * px
    k = 2 * math.pi / wavelength_m(ENERGY_EV)
    proj = float(occ.sum(axis=0).max()) * dz
    if g["angles"] > 1:   # the largest projection over the rotation: about the widest chord
        proj = max(proj, float(occ.sum(axis=2).max()) * dz)
    delta = occ.astype(np.float64) * (PHASE_RAD[case.contrast] / (k * proj))
    return {"delta": delta, "beta": delta * BETA_OVER_DELTA}, dz


def _angles(n: int) -> np.ndarray:
    return np.zeros(1) if n == 1 else np.deg2rad(np.arange(n) * 180.0 / n)


def _distances(modality: str, pixel_m: float) -> tuple:
    lam = wavelength_m(ENERGY_EV)
    return tuple(pixel_m ** 2 / (lam * n) for n in FRESNEL[modality])


def _simulate_clean(case: NoiseCase, truth: dict, dz: float) -> dict:
    """Noise-free intensities for one incident photon per pixel (holography) or ``photons``
    per pattern set later (ptychography: the probe's own normalisation is undone here)."""
    g = GEOMETRY[case.size][case.modality]
    px = PIXEL_M["far" if case.far_field else "near"]
    if case.modality == "nfptycho":
        return _simulate_nfptycho(case, truth, dz)
    common = dict(object_shape=g["shape"], energy_ev=ENERGY_EV, pixel_size_m=px,
                  slice_thickness_m=dz, n_angles=g["angles"], seed=case.seed)
    if case.far_field:
        sim = SimulationConfig(modality="ptycho", probe_kind="gaussian",
                               probe_shape=(g["probe"], g["probe"]), probe_size_px=g["probe"] / 2.6,
                               scan_step_px=g["step"], **common)
    else:
        sim = SimulationConfig(modality="holo", distances_m=_distances(case.modality, px), **common)
    out = simulate_arrays(sim, "numpy", truth=truth)
    if case.far_field:   # one photon per pattern: intensities and probe scaled together
        power = float(np.sum(np.abs(out["probe"]) ** 2))
        out["intensities"] = out["intensities"].astype(np.float64) / power
        out["probe"] = out["probe"] / math.sqrt(power)
    return out


def _simulate_nfptycho(case: NoiseCase, truth: dict, dz: float) -> dict:
    """Near-field ptychography of the cell with a structured probe (plane wave, one distance):
    the engine's own model, mean frame intensity one photon per pixel."""
    g = GEOMETRY[case.size][case.modality]
    px, frame = PIXEL_M["near"], g["probe"]
    z = _distances("nfptycho", px)[0]
    lam = wavelength_m(ENERGY_EV)
    pad = default_pad_px((frame, frame), px, z, lam)
    nz, ny, nx = g["shape"]
    room = pad + 2
    pos = raster_scan((ny - 2 * room, nx - 2 * room), (frame, frame), g["step"]) + room
    rng = np.random.default_rng(case.seed + 101)
    probe = structured_probe((frame + 2 * pad,) * 2, rng, px, z, lam)[None]
    be = get_backend("numpy", "double")
    optics = Optics(ENERGY_EV, px, dz)
    model = NearFieldPtychoModel(g["shape"], (frame, frame), optics, be, distance_m=z, pad_px=pad,
                                 positions_px=pos, margin_px=2)
    params = {"delta": be.asarray(truth["delta"]), "beta": be.asarray(truth["beta"]),
              "probe": be.asarray(probe), "positions": be.asarray(pos)}
    inten = to_host(model.predict(params, [0], np.arange(len(pos)))).astype(np.float64)
    empty = to_host(model.predict({**params, "delta": 0 * params["delta"],
                                   "beta": 0 * params["beta"]}, [0], np.arange(len(pos))))
    level = float(inten.mean())
    return {"intensities": inten / level, "empty": empty / level, "probe": probe / math.sqrt(level), "positions_px": pos,
            "angles_rad": np.zeros(1), "distances_m": np.array([z]), "modality": "nearfield",
            "slice_thickness_m": dz}


def make_data(case: NoiseCase) -> NoiseData:
    """Simulate ``case`` (deterministic for its seed)."""
    truth, dz = cell_truth(case)
    sim = _simulate_clean(case, truth, dz)
    photons = case.photons or 1e5
    rng = np.random.default_rng([case.seed, int(round(math.log10(photons) * 100)),
                                 MODALITIES.index(case.modality), CONTRASTS.index(case.contrast)])
    expected = np.maximum(sim["intensities"], 0) * photons   # photons per pixel
    counts = rng.poisson(expected) if case.photons is not None else expected
    if case.storage == "counts" and case.photons is not None:
        stored, ppu, clean = counts.astype(np.int32), 1.0, expected
    else:
        stored, ppu, clean = (counts / photons).astype(np.float32), photons, expected / photons
    g = GEOMETRY[case.size][case.modality]
    px = PIXEL_M["far" if case.far_field else "near"]
    geo = Geometry(modality=sim.get("modality", "farfield" if case.far_field else "nearfield"),
                   energy_ev=ENERGY_EV, pixel_size_m=px, slice_thickness_m=dz,
                   angles_rad=_angles(g["angles"]), positions_px=sim.get("positions_px"),
                   distances_m=sim.get("distances_m"),
                   object_shape_yx=None if case.modality == "nfptycho" else tuple(g["shape"][1:]))
    probe = None
    if case.far_field:   # probe known: the file's, in the stored units
        probe = sim["probe"] * math.sqrt(photons / ppu)
    truth = dict(truth)
    if case.modality == "nfptycho":
        truth["positions_px"] = np.asarray(sim["positions_px"], float)
    if case.modality == "nfptycho":
        empty, extra = sim["empty"], {"true_probe": sim["probe"]}
    elif case.far_field:
        empty, extra = np.abs(np.fft.fft2(sim["probe"][0], norm="ortho")) ** 2, {}
    else:
        empty, extra = np.ones(1), {}
    extra["empty"] = np.broadcast_to(empty * photons / ppu, stored.shape)
    return NoiseData(case, stored, clean, ppu, geo, truth, probe, extra)


def intensity_contrast(data: NoiseData) -> float:
    """The largest change the object makes to a clean frame, relative to the brightest pixel of
    the frames without it (holography: the flat beam; ptychography: the probe's own frame)."""
    empty = data.extra["empty"]
    return float(np.abs(data.clean - empty).max() / empty.max())


def correlation_with_truth(data: NoiseData, params: dict, initial_positions=None) -> float:
    """Pearson correlation of the reconstruction with the true delta: delta, or for a complex
    object minus its phase; projections along the beam when the grids differ along z;
    near-field ptychography on the truth's grid, placed by the scan (``initial_positions``: the
    run's starting positions, ``problem.initial_positions``)."""
    truth = np.asarray(data.truth["delta"], float)
    if "delta" in params and params["delta"] is not None:
        rec = np.asarray(to_host(params["delta"]), float)
    else:
        rec = -np.angle(np.asarray(to_host(params["object"])))
    if data.case.modality == "nfptycho":
        off = np.round(np.asarray(initial_positions, float)[0]
                       - data.truth["positions_px"][0]).astype(int)
        ny, nx = truth.shape[1:]
        rec = rec[:, off[0]:off[0] + ny, off[1]:off[1] + nx]
        frame = GEOMETRY[data.case.size]["nfptycho"]["probe"]
        pos = data.truth["positions_px"]
        lo = np.floor(pos.min(axis=0)).astype(int)
        hi = np.ceil(pos.max(axis=0)).astype(int) + frame
        rec, truth = rec[:, lo[0]:hi[0], lo[1]:hi[1]], truth[:, lo[0]:hi[0], lo[1]:hi[1]]
    if rec.shape != truth.shape:
        rec, truth = rec.sum(axis=0), truth.sum(axis=0)
    a, b = rec.ravel() - rec.mean(), truth.ravel() - truth.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / den) if den > 0 else float("nan")
