"""Prototypes for issue 20 on today's run loop: held-out frames and their (validation) loss, the
training misfit against the noise level (discrepancy principle), and Adam rates cut on a plateau
of the validation loss. Used by benchmarks/bench_noise.py; nothing here changes the engine.

Held-out units (``Holdout.unit``):

* ``"frames"`` -- (angle, scan position) pairs spread over the scan and the angles (every k-th
  position of each angle, shifted from angle to angle), for models whose minibatches split scan
  positions (ptychography, far and near field): the run's minibatches skip them
  (``Solver.batches`` wrapped), so the data set, the probe's scale and the object grid stay
  those of the full data set;
* ``"angles"`` -- whole angles (every k-th), for holotomography, whose distances share one exit
  wave: the run gets a data set without them (its starting guess never sees them either);
* ``"pixels"`` -- islands of detector pixels (PyNX's free pixels), for one view (holography):
  masked out of the loss, and filled from their surroundings in the frames the run sees (so the
  Paganin/CTF start does not see them either).

The validation loss is the run's own data loss (amplitude or Poisson, per pixel) of the held-out
measurements against the current model, recorded per held-out element (frame, angle, island) so
that smaller held-out sets can be judged from the same run.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from slicewise.engine import no_grad, to_host
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.noise import estimate_noise
from slicewise.engine.models.base import intensity
from slicewise.engine.recon.config import example_config, from_toml, set_value
from slicewise.engine.recon.loop.losses import POISSON_EPS_REL
from slicewise.engine.recon.run import Reconstruction

from noise_sweep import NoiseData, correlation_with_truth


@dataclass
class Holdout:
    """What is held out (see the module docstring). ``groups``: list of (angle indices, spot
    indices) whose frames are held (frames/angles); ``islands``: int label map (fy, fx), 0 =
    trained, k > 0 = island k (pixels)."""

    unit: str
    share: float
    groups: list = field(default_factory=list)
    islands: np.ndarray | None = None

    @property
    def n_elements(self) -> int:
        if self.unit == "pixels":
            return int(self.islands.max())
        if self.unit == "angles":   # one element per angle, its distances together
            return sum(len(a) for a, _ in self.groups)
        return sum(len(a) * len(s) for a, s in self.groups)


def default_unit(data: NoiseData) -> str:
    m = data.case.modality
    if m == "holotomo":
        return "angles"
    if m in ("holo1", "holo4"):
        return "pixels"
    return "frames"


def make_holdout(data: NoiseData, share: float, unit: str | None = None, seed: int = 0,
                 island_radius: float = 3.0) -> Holdout:
    """A deterministic held-out set of about ``share`` of the measurements."""
    unit = unit or default_unit(data)
    n_a, n_s = data.stored.shape[:2]
    k = max(2, int(round(1 / share)))
    if unit == "angles":
        held = np.arange(seed % k, n_a, k)
        return Holdout(unit, len(held) / n_a, [(held, np.arange(n_s))])
    if unit == "frames":
        groups = []
        for a in range(n_a):   # every k-th position, the start moving with the angle
            groups.append((np.array([a]), np.arange((seed + 3 * a) % k, n_s, k)))
        return Holdout(unit, sum(len(s) for _, s in groups) / (n_a * n_s), groups)
    fy, fx = data.stored.shape[-2:]
    rng = np.random.default_rng(seed)
    labels = np.zeros((fy, fx), int)
    yy, xx = np.mgrid[:fy, :fx]
    area = math.pi * island_radius ** 2
    for i in range(1, int(round(share * fy * fx / area)) + 1):
        for _ in range(100):   # a centre whose island does not touch another one
            cy, cx = rng.uniform(island_radius, fy - island_radius), rng.uniform(island_radius,
                                                                                 fx - island_radius)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= island_radius ** 2
            grown = (yy - cy) ** 2 + (xx - cx) ** 2 <= (island_radius + 2) ** 2
            if not np.any(labels[grown]):
                labels[disc] = i
                break
    return Holdout(unit, float(np.mean(labels > 0)), islands=labels)


def training_dataset(data: NoiseData, hold: Holdout | None) -> Dataset:
    """The data set the run fits (see the module docstring)."""
    ds = data.dataset()
    if hold is None or hold.unit == "frames":
        return ds
    meta = {"integer_counts": True, "frames_dtype": "int32"} if data.case.storage == "counts" \
        and data.case.photons is not None else {}
    g = data.geometry
    if hold.unit == "angles":
        keep = np.setdiff1d(np.arange(data.stored.shape[0]), hold.groups[0][0])
        geo = Geometry(g.modality, g.energy_ev, g.pixel_size_m, np.asarray(g.angles_rad)[keep],
                       g.positions_px, g.distances_m, g.slice_thickness_m, g.object_shape_yx)
        return Dataset.from_arrays(data.stored[keep].astype(np.float32), geo, probe=data.probe,
                                   truth=dict(data.truth), meta=meta)
    trained = (hold.islands == 0).astype(float)
    frames = data.stored.astype(float)
    # normalised convolution: the islands take the smoothed values of the pixels around them
    num = gaussian_filter(frames * trained, (0, 0, 3, 3))
    den = gaussian_filter(np.broadcast_to(trained, frames.shape), (0, 0, 3, 3))
    filled = np.where(trained > 0, frames, num / np.maximum(den, 1e-12))
    return Dataset.from_arrays(filled.astype(np.float32), g, probe=data.probe,
                               mask=trained.astype(np.float32), truth=dict(data.truth), meta=meta)


def skip_held_frames(rec: Reconstruction, hold: Holdout) -> None:
    """Wrap the run's minibatches so that held-out (angle, spot) frames are never fitted."""
    held = {int(a[0]): set(s.tolist()) for a, s in hold.groups}
    original = rec.solver.batches

    def batches(epoch):
        out = []
        for a_idx, s_idx in original(epoch):
            if len(a_idx) != 1:
                raise ValueError("held-out frames need minibatches of one angle")
            keep = np.array([s for s in s_idx if s not in held.get(int(a_idx[0]), ())], int)
            if keep.size:
                out.append((a_idx, keep))
        return out

    rec.solver.batches = batches


def pixel_loss(kind: str, model, measured, eps: float) -> np.ndarray:
    """The run's data loss per pixel (host arrays): amplitude ``(sqrt(I) - sqrt(d))^2`` or
    Poisson ``I - d - d log((I + eps) / (d + eps))``."""
    model = np.asarray(model, np.float64)
    d = np.maximum(np.asarray(measured, np.float64), 0)
    if kind == "amplitude":
        return (np.sqrt(np.maximum(model, 0)) - np.sqrt(d)) ** 2
    return model - d - d * np.log((model + eps) / (d + eps))


class Monitor:
    """Per epoch: correlation with the truth, the held-out loss per element, the training
    misfit (data loss of the fitted measurements, after the epoch's steps), the learning rate."""

    def __init__(self, rec: Reconstruction, data: NoiseData, hold: Holdout | None):
        self.rec, self.data, self.hold = rec, data, hold
        prob = rec.problem
        self.kind = prob.loss_spec.name
        self.eps = POISSON_EPS_REL * prob.mean_intensity if self.kind == "poisson" else 0.0
        self.records: list[dict] = []
        self.model = prob.model
        if hold is not None and hold.unit == "angles":   # the held angles' own views
            self.model = copy.copy(prob.model)
            self.model.angles = np.asarray(data.geometry.angles_rad, float)
        self.t0 = time.perf_counter()
        self.spent = 0.0

    def _intensities(self, a_idx, s_idx, model=None) -> np.ndarray:
        params = self.rec.problem.params
        with no_grad():
            return np.asarray(to_host(intensity((model or self.rec.problem.model).fields(
                params, a_idx, s_idx))), np.float64)

    def held_losses(self) -> tuple[np.ndarray, np.ndarray]:
        """(loss sums, pixel counts) per held-out element."""
        h, stored = self.hold, self.data.stored
        if h.unit == "pixels":
            i = self._intensities([0], np.arange(stored.shape[1]))
            per = pixel_loss(self.kind, i, stored, self.eps).sum(axis=(0, 1))
            lab = h.islands.ravel()
            sums = np.bincount(lab, per.ravel(), lab.max() + 1)[1:]
            counts = np.bincount(lab, minlength=lab.max() + 1)[1:] * stored.shape[1]
            return sums, counts.astype(float)
        sums, counts = [], []
        for a_idx, s_idx in h.groups:
            if len(s_idx) == 0:
                continue
            i = self._intensities(a_idx, s_idx, self.model)
            per = pixel_loss(self.kind, i, stored[np.ix_(a_idx, s_idx)], self.eps)
            if h.unit == "angles":   # one element per angle (its distances together)
                sums += list(per.sum(axis=(1, 2, 3)))
                counts += [per[0].size] * len(a_idx)
            else:
                sums += list(per.sum(axis=(0, 2, 3)))
                counts += [per[0, 0].size] * len(s_idx)
        return np.array(sums), np.array(counts, float)

    def train_misfit(self) -> float:
        """Mean data loss per pixel over the fitted measurements."""
        stored, h = self.data.stored, self.hold
        total, n = 0.0, 0
        ds = self.rec.dataset
        held = {} if h is None or h.unit != "frames" else {int(a[0]): s for a, s in h.groups}
        for a in range(ds.n_angles):
            spots = np.setdiff1d(np.arange(ds.n_spots), held.get(a, []))
            meas = ds.frames([a], spots)
            per = pixel_loss(self.kind, self._intensities([a], spots), meas, self.eps)
            if h is not None and h.unit == "pixels":
                per = per[..., h.islands == 0]
            total += float(per.sum())
            n += per.size
        return total / n

    def __call__(self, ev) -> None:
        if ev.kind != "epoch":
            return
        t = time.perf_counter()
        prob = self.rec.problem
        rec = {"epoch": ev.epoch, "loss": ev.loss, "time_s": t - self.t0 - self.spent,
               "corr": correlation_with_truth(self.data, prob.params, prob.initial_positions),
               "misfit": self.train_misfit(),
               "lr": next((v for k, v in self.rec.config.optimizer.lrs().items()
                           if k in ("delta", "object") and v), None)}
        if self.hold is not None:
            sums, counts = self.held_losses()
            rec["val_sums"], rec["val_counts"] = sums.tolist(), counts.tolist()
            rec["val"] = float(sums.sum() / counts.sum())
        self.records.append(rec)
        self.spent += time.perf_counter() - t


class PlateauCut:
    """Adam's object rates times ``factor`` when the validation loss has not beaten its best by
    ``min_gain`` (relative) for ``patience`` epochs; after a cut the count starts again."""

    def __init__(self, rec: Reconstruction, monitor: Monitor, patience: int = 2,
                 factor: float = 0.5, min_gain: float = 1e-3):
        self.rec, self.monitor = rec, monitor
        self.patience, self.factor, self.min_gain = patience, factor, min_gain
        self.best, self.since, self.cuts = math.inf, 0, []

    def __call__(self, ev) -> None:
        if ev.kind != "epoch" or not self.monitor.records:
            return
        val = self.monitor.records[-1]["val"]
        if val < self.best * (1 - self.min_gain):
            self.best, self.since = val, 0
            return
        self.since += 1
        if self.since >= self.patience:
            o = self.rec.config.optimizer
            changes = {f"optimizer.lr_{n}": getattr(o, f"lr_{n}") * self.factor
                       for n in ("delta", "beta", "object") if getattr(o, f"lr_{n}")}
            self.rec.apply_changes(changes)
            self.cuts.append(ev.epoch)
            self.since = 0


class WeightLadder:
    """A regularisation path in one run: the TV weight starts at ``start`` (relative to the data
    loss) and is divided by ``step`` each time the validation loss has not beaten the rung's best
    for ``patience`` epochs, as long as that rung beat the rungs before it; once a rung does not
    (or the weight would fall below ``smallest``), the weight stays and the run stops after one
    more ``patience`` without a new least validation loss (the kept state: the least one)."""

    def __init__(self, rec: Reconstruction, monitor: Monitor, start: float = 1.0,
                 step: float = 3.0, patience: int = 2, smallest: float = 0.003,
                 min_gain: float = 1e-3):
        self.rec, self.monitor = rec, monitor
        self.weight, self.step, self.patience = start, step, patience
        self.smallest, self.min_gain = smallest, min_gain
        self.overall, self.rung_best, self.since = math.inf, math.inf, 0
        self.descending, self.weights = True, []
        rec.apply_changes({"regularization.tv_weight": start})

    def __call__(self, ev) -> None:
        if ev.kind != "epoch" or not self.monitor.records:
            return
        val = self.monitor.records[-1]["val"]
        self.weights.append(self.weight)
        self.monitor.records[-1]["tv_weight"] = self.weight
        if val < self.rung_best * (1 - self.min_gain):
            self.rung_best, self.since = val, 0
        else:
            self.since += 1
        if self.since < self.patience:
            return
        improved = self.rung_best < self.overall * (1 - self.min_gain)
        self.overall = min(self.overall, self.rung_best)
        if self.descending and improved and self.weight / self.step >= self.smallest:
            self.weight /= self.step
            self.rec.apply_changes({"regularization.tv_weight": self.weight})
            self.rung_best, self.since = math.inf, 0
        else:
            self.rec.stop()


def run_trial(data: NoiseData, epochs: int, changes: dict | None = None,
              hold: Holdout | None = None, plateau: dict | None = None,
              ladder: dict | None = None) -> dict:
    """One run of the example configuration (data in memory; only the epochs and ``changes``
    set) with held-out data ``hold``; returns its per-epoch records and what was chosen."""
    cfg = from_toml(example_config(data.case.example))
    out = tempfile.mkdtemp(prefix="slicewise-noise-")
    for k, v in {"run.epochs": epochs, "run.checkpoint_every": 0, "run.save_tiff": False,
                 "run.backend": "numpy", "run.output_dir": out, **(changes or {})}.items():
        set_value(cfg, k, v)
    t0 = time.perf_counter()
    rec = Reconstruction(cfg, training_dataset(data, hold), base_dir=out)
    if hold is not None and hold.unit == "frames":
        skip_held_frames(rec, hold)
    mon = Monitor(rec, data, hold)
    rec.add_callback(mon)
    cut = None
    if plateau is not None and hold is not None:
        cut = PlateauCut(rec, mon, **plateau)
        rec.add_callback(cut)
    if ladder is not None and hold is not None:
        rec.add_callback(WeightLadder(rec, mon, **ladder))
    rec.run()
    return {"records": mon.records, "loss_kind": mon.kind,
            "wall_s": time.perf_counter() - t0, "cuts": [] if cut is None else cut.cuts,
            "chosen": {k: v for k, v in rec.automatic_choices().items()
                       if not k.startswith("run.output")}}


def noise_levels(data: NoiseData, hold: Holdout | None, loss_kind: str) -> dict:
    """The misfit at the noise level: the truth's own loss on the fitted measurements (this noise
    draw) and the noise estimate's expectation (engine/io/noise.py)."""
    est = estimate_noise(data.dataset())
    stored = data.stored.astype(float)
    clean = data.clean
    eps = POISSON_EPS_REL * float(stored.mean()) if loss_kind == "poisson" else 0.0
    per = pixel_loss(loss_kind, clean, stored, eps)
    if hold is not None and hold.unit == "pixels":
        per = per[..., hold.islands == 0]
    return {"truth_misfit": float(per.mean()), "expected_misfit":
            est.model.expected_misfit(clean, loss_kind), "noise_kind": est.kind,
            "photons_per_unit": est.photons_per_unit}
