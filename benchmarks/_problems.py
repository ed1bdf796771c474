"""Shared set-up for the benchmark scripts: synthetic data sets, problems and one solver step.

Everything goes through the engine's public path (``Dataset.from_arrays`` -> ``ReconConfig`` ->
``build_problem``), so what is timed is what ``Reconstruction`` runs. Data are simulated in the
working precision with the engine's own forward models (values do not change the timings, only
shapes do).
"""

from __future__ import annotations

import atexit
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

from slicewise.engine import no_grad, to_host, value_and_grad
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.models.common import Optics
from slicewise.engine.models.holo import HoloModel
from slicewise.engine.models.ptycho import PtychoModel
from slicewise.engine.phantoms import hollow_cone, occupancy_to_delta_beta, siemens_star
from slicewise.engine.probes import airy_probe
from slicewise.engine.recon import config as cfgmod
from slicewise.engine.recon.loop import constraints
from slicewise.engine.recon.config import ReconConfig
from slicewise.engine.recon.loop.optimizers import make_optimizer
from slicewise.engine.recon.plan import RunPlan
from slicewise.engine.recon.problem import build_problem
from slicewise.engine.scans import raster_scan

# SiO2 glass at 10 keV (order of magnitude; exact values do not matter for timing)
DELTA, BETA = 4.6e-6, 2.5e-8
ENERGY_EV, PIXEL_M = 10000.0, 10e-9


def raster_positions(n: int, probe: int, grid: int, n_positions: int | None = None) -> np.ndarray:
    """``grid x grid`` raster of integer top-left corners inside an ``n x n`` object (first
    ``n_positions`` of them if given). Integer positions: no sub-pixel probe shift is needed, as in
    the hand-written floor."""
    step = (n - probe) / max(grid - 1, 1)
    pos = np.rint(raster_scan((n, n), (probe, probe), step * (1 - 1e-9)))
    if len(pos) < grid * grid:  # rounding of the allowed box; fall back to an explicit grid
        ax = np.rint(np.linspace(0, n - probe, grid))
        yy, xx = np.meshgrid(ax, ax, indexing="ij")
        pos = np.stack([yy.ravel(), xx.ravel()], axis=1)
    return pos[:n_positions] if n_positions else pos


def ptycho_dataset(be, n: int = 256, probe: int = 72, grid: int = 26, nz: int = 1,
                   n_positions: int | None = None, dz_m: float = 200e-9) -> Dataset:
    """Siemens-star (multislice) far-field ptychography, simulated in ``be``'s precision."""
    pos = raster_positions(n, probe, grid, n_positions)
    pr = airy_probe((probe, probe), probe / 7.0, n_photons=1e6)[None]
    occ = np.broadcast_to(siemens_star((n, n)), (nz, n, n))
    delta, beta = occupancy_to_delta_beta(occ, DELTA, BETA)
    optics = Optics(ENERGY_EV, PIXEL_M, dz_m)
    model = PtychoModel((nz, n, n), (probe, probe), optics, be, positions_px=pos)
    params = {"delta": be.to_real(delta), "beta": be.to_real(beta), "probe": be.to_complex(pr),
              "positions": be.to_real(pos)}
    frames = []
    with no_grad():
        for j in range(0, len(pos), 128):  # chunks keep the simulation's memory small
            frames.append(to_host(model.predict(params, [0], np.arange(j, min(j + 128, len(pos))))))
    inten = np.concatenate(frames, axis=1)
    return Dataset.from_arrays(inten,
                               Geometry(modality="farfield", energy_ev=ENERGY_EV,
                                        pixel_size_m=PIXEL_M, slice_thickness_m=dz_m,
                                        angles_rad=np.zeros(1), positions_px=pos),
                               probe=pr,
                               truth={"delta": np.asarray(delta), "beta": np.asarray(beta)})


def holo_dataset(be, n: int = 64, n_angles: int = 36, distances_m=(1e-4,), pixel_m: float = 50e-9,
                 n_slices: int | None = None) -> Dataset:
    """Hollow-cone near-field holotomography ``n^3`` (``n_slices`` x n x n), ``n_angles`` over
    180 degrees, simulated in ``be``'s precision."""
    nz = n_slices or n
    occ = hollow_cone((nz, n, n))
    delta, beta = occupancy_to_delta_beta(occ, DELTA, BETA)
    angles = np.deg2rad(np.arange(n_angles) * 180.0 / n_angles)
    optics = Optics(ENERGY_EV, pixel_m, pixel_m)
    model = HoloModel((nz, n, n), optics, be, angles_rad=angles)
    params = {"delta": be.to_real(delta), "beta": be.to_real(beta),
              "distances": be.to_real(np.asarray(distances_m, float))}
    with no_grad():
        inten = np.concatenate([to_host(model.predict(params, [a], np.arange(len(distances_m))))
                                for a in range(n_angles)], axis=0)
    return Dataset.from_arrays(inten,
                               Geometry(modality="nearfield", energy_ev=ENERGY_EV,
                                        pixel_size_m=pixel_m, slice_thickness_m=pixel_m,
                                        angles_rad=angles,
                                        distances_m=np.asarray(distances_m, float)),
                               truth={"delta": np.asarray(delta), "beta": np.asarray(beta)})


def recon_config(backend_name: str, *, param: str = "delta_beta", batch_spots: int = 0,
                 batch_angles: int = 1, n_slices: int = 0, checkpoint_slices: int = 0,
                 precision: str = "single", output_dir: str | None = None) -> ReconConfig:
    cfg = ReconConfig()
    cfg.model.object_param = param
    cfg.model.n_slices = n_slices
    cfg.model.checkpoint_slices = checkpoint_slices
    cfg.run.batch_spots = batch_spots
    cfg.run.batch_angles = batch_angles
    cfg.run.backend = backend_name
    cfg.run.precision = precision
    cfg.run.checkpoint_every = 0
    cfg.run.save_tiff = False
    cfg.run.output_dir = output_dir or _scratch_dir()
    return cfgmod.validate(cfg)


def _scratch_dir() -> str:
    """A temporary output folder for ``Reconstruction`` runs, removed when the script exits."""
    path = tempfile.mkdtemp(prefix="slicewise-bench-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def make_problem(cfg: ReconConfig, ds: Dataset, be):
    return build_problem(RunPlan(cfg), ds, be, Path("."))


class Solver:
    """The run's inner step stripped down (``engine/recon/solver.py``'s ``Solver.step`` without
    MPI, refinement schedule, measured rates or L-BFGS reuse): ``Problem.loss`` through
    ``value_and_grad``, then the optimiser (Adam by default) on the object unknowns only."""

    def __init__(self, problem, kind: str = "adam", lrs: dict | None = None):
        self.problem = problem
        self.names = [n for n in ("delta", "beta", "object") if n in problem.params]
        self.opt = make_optimizer(kind, lrs or problem.config.optimizer.lrs())

    def step(self, a_idx, s_idx) -> float:
        prob = self.problem
        measured = prob.measured_batch(a_idx, s_idx)

        def objective(unknowns):
            total, _ = prob.loss({**prob.params, **unknowns}, a_idx, s_idx, measured)
            return total

        unknowns = {n: prob.params[n] for n in self.names}
        loss, grads = value_and_grad(objective)(unknowns)
        self.opt.step(unknowns, grads)
        for n in ("delta", "beta"):  # nonnegativity, as the run's default constraints do
            if n in unknowns:
                constraints.nonnegative(prob.params[n], inplace=True)
        return loss


def spot_batches(n_spots: int, batch: int, epoch: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffled minibatches of spot indices (sorted within a batch), reproducible per epoch."""
    rng = np.random.default_rng(seed + 7919 * epoch)
    perm = rng.permutation(n_spots)
    b = batch or n_spots
    return [np.sort(perm[j:j + b]) for j in range(0, n_spots, b)]


def angle_batches(n_angles: int, batch: int, epoch: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 7919 * epoch)
    perm = rng.permutation(n_angles)
    b = batch or n_angles
    return [np.sort(perm[j:j + b]) for j in range(0, n_angles, b)]


def correlation(a, b) -> float:
    """Pearson correlation of two volumes (flattened)."""
    a = np.asarray(to_host(a), np.float64).ravel()
    b = np.asarray(to_host(b), np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else 0.0





def run_epoch_time(cfg, ds, be, repeat: int) -> float:
    """Best per-epoch time recorded by ``Reconstruction.run()`` (history ``time_s``); the first
    epoch (kernel and index caches being built) is left out."""
    from slicewise.engine.recon.run import Reconstruction  # noqa: PLC0415

    cfg.run.epochs = repeat + 1
    rec = Reconstruction(cfg, ds, backend=be)
    rec.run()
    times = [h["time_s"] for h in rec.history[1:]]
    return min(times) if times else float("nan")
