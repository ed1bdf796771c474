"""Automatic choices at the start of a run: optimiser, minibatch sizes, learning rates.

Every choice is made from the data and the model only (no absolute constants in the parameters'
units), is logged, and is written back into the run's configuration, so that the saved
``config.toml`` reruns the same thing with every value explicit.

* :func:`choose_schedule` -- ``optimizer.kind = "auto"`` and unset ``run.batch_*``: full-batch
  L-BFGS where there is one view and the whole data set fits comfortably in memory (the issue's
  measurements: multi-distance holography stalls at 0.76 with Adam, reaches 0.95 with L-BFGS);
  Adam on minibatches otherwise, sized for the number of updates per epoch (tomography: one to a
  few angles per update; 36 angles in batches of 10 gave 0.39, one angle per update 0.94).
* :func:`estimation_batch` -- the frames on which the learning rates are measured.
* learning rates come from :mod:`.stepsize` (curvature along the gradient).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ...io.datafile import Dataset, estimate_memory_bytes, spread_indices
from ..plan import Choice

log = logging.getLogger(__name__)

__all__ = ["Schedule", "choose_schedule", "decide_schedule", "estimation_batch",
           "TARGET_UPDATES_TOMO", "TARGET_UPDATES_2D", "LBFGS_MAX_SPOTS"]

#: Stochastic tomography: about this many updates per epoch (one angle per update up to this many
#: angles; beyond, a few angles per update, which vectorise better at the same progress per epoch).
TARGET_UPDATES_TOMO = 32

#: 2D ptychography too large for full batches: about this many minibatches per epoch.
TARGET_UPDATES_2D = 16

#: ... in a run the validation loss watches (held-out data and ``run.early_stop``). Where Adam
#: must build the object up step by step (a weak cell's smooth body, seen only through the
#: overlaps), twice the steps per epoch reach it in fewer epochs at a slightly dearer epoch;
#: unwatched they would also fit the noise sooner, watched the plateau rule catches that (see
#: :data:`.stepsize.ADAM_WATCHED_FACTOR`; benchmarks/README.md, "Time to quality on clean data").
TARGET_UPDATES_2D_WATCHED = 32

#: Far-field ptychography of one view (2D or multislice) with more scan positions than this runs
#: Adam on minibatches of positions: overlapping positions make each minibatch a fair gradient and
#: an epoch gives many updates. Measured on the scale sweep's Siemens stars and 16-slice beads,
#: weak/mid/strong (benchmarks/bench_defaults.py, probe refined from epoch 2): at 289-484 positions
#: Adam reaches 0.9 in 1-3 epochs and 0.99 in 3-10, L-BFGS needs 1-3 / 10-20 epochs of several
#: evaluations each (to 0.99: 1.3-18x the time). At 36 positions L-BFGS keeps the lead on the
#: strong beads (0.9 in ~10 epochs against ~20) and stays. A probe that must be found too (none in
#: the file) keeps L-BFGS: probe and object are coupled and Adam's per-element steps drift along
#: that coupling (independent Adorym-layout files, 121 positions, defocused probe: Adam 0.82 / 0.75
#: at 10 / 30 epochs, L-BFGS 0.96 / 0.93; tests/test_adorym_stranger.py).
#: Tomography with a blind probe keeps Adam over angles (a 24^3 SiO2 cone at 1 nm, 24 angles, no
#: probe in the file: Adam 0.86 in 15 epochs / 1.6 s, full-batch L-BFGS 0.80 in 60 / 16 s).
LBFGS_MAX_SPOTS = 64

#: Full-batch L-BFGS keeps ~ (history + 3) object-sized arrays and the whole batch's tape; allow
#: it when the estimate is below this fraction of the available memory (and this absolute cap).
LBFGS_MEMORY_FRACTION = 0.25
LBFGS_MEMORY_CAP = 8 * 2 ** 30


@dataclass(frozen=True)
class Schedule:
    """The resolved optimiser and minibatch sizes (0 = all), with the reason, for the log."""

    kind: str
    batch_angles: int
    batch_spots: int
    reason: str


def choose_schedule(kind: str, batch_angles: int | None, batch_spots: int | None, ds: Dataset,
                    splits_spots: bool, object_shape: tuple, available_bytes: int,
                    dtype: str = "complex64", blind_probe: bool = False,
                    watched: bool = False) -> Schedule:
    """Resolve ``optimizer.kind`` and unset ``run.batch_angles``/``run.batch_spots``.

    ``available_bytes``: free memory of the device (0 = unknown, then 4 GiB is assumed).
    ``splits_spots``: the model's spots may be split into minibatches (``ForwardModel.splits_spots``).
    ``blind_probe``: the probe is refined from a guess (the file holds none). ``watched``: the
    validation loss watches the run (:data:`TARGET_UPDATES_2D_WATCHED`).
    Explicit settings are kept; an explicit minibatch with ``kind = "auto"`` selects Adam.
    """
    avail = available_bytes or 4 * 2 ** 30
    n_frames = ds.n_angles * ds.n_spots
    full_bytes = estimate_memory_bytes(ds, object_shape, object_shape[0], n_frames, dtype=dtype)
    fits = full_bytes <= min(LBFGS_MEMORY_FRACTION * avail, LBFGS_MEMORY_CAP)
    explicit_minibatch = bool(batch_angles) and batch_angles < ds.n_angles or \
        (splits_spots and bool(batch_spots) and batch_spots < ds.n_spots)
    if kind == "auto":
        if explicit_minibatch:
            kind, why = "adam", "minibatches were set explicitly"
        elif splits_spots and ds.n_spots > LBFGS_MAX_SPOTS \
                and not (blind_probe and ds.n_angles == 1 and fits):
            kind, why = "adam", (f"{ds.n_spots} overlapping scan positions: stochastic updates "
                                 "over positions reach the object sooner")
        elif ds.n_angles == 1 and fits:
            kind, why = "lbfgs", (f"one view and the full batch ({full_bytes / 2**20:.0f} MiB) fits "
                                  "in memory")
        else:
            kind = "adam"
            why = ("tomography: stochastic updates over angles" if ds.n_angles > 1 else
                   f"the full batch ({full_bytes / 2**20:.0f} MiB) is too large for L-BFGS")
    else:
        why = "set in the configuration"
    if kind == "lbfgs":
        ba = 0 if batch_angles is None else batch_angles
        bs = 0 if batch_spots is None else batch_spots
        return Schedule(kind, ba, bs, why)
    ba = batch_angles if batch_angles is not None else _auto_batch_angles(ds.n_angles)
    if batch_spots is not None or not splits_spots:
        bs = batch_spots if batch_spots is not None else 0
    else:
        target = TARGET_UPDATES_2D_WATCHED if watched else TARGET_UPDATES_2D
        bs = _auto_batch_spots(ds, object_shape, ba or ds.n_angles, avail, dtype, target)
    return Schedule(kind, ba, bs, why)


def decide_schedule(cfg, ds: Dataset, problem, available_bytes: int, dtype: str,
                    watched: bool = False) -> tuple[Schedule, list[Choice]]:
    """:func:`choose_schedule` for a run's configuration and problem, with a choice for each of
    ``optimizer.kind``, ``run.batch_angles``, ``run.batch_spots`` the configuration left open;
    ``watched``: the validation loss watches the run."""
    o, r = cfg.optimizer, cfg.run
    blind = bool(cfg.refine.probe) and problem.probe_is_guess
    sched = choose_schedule(o.kind, r.batch_angles, r.batch_spots, ds, problem.model.splits_spots,
                            problem.object_shape, available_bytes, dtype=dtype, blind_probe=blind,
                            watched=watched)
    choices = []
    if o.kind == "auto":
        choices.append(Choice("optimizer.kind", sched.kind, sched.reason))
    for path, asked, value in (("run.batch_angles", r.batch_angles, sched.batch_angles),
                               ("run.batch_spots", r.batch_spots, sched.batch_spots)):
        if asked is None:
            n, what = ((ds.n_angles, "angles") if path.endswith("angles")
                       else (ds.n_spots, "scan positions"))
            why = (f"full batches for {sched.kind}" if sched.kind == "lbfgs" else
                   f"all {n} {what} per update" if value == 0 else
                   f"{value} of {n} {what} per update")
            if watched and path == "run.batch_spots" and sched.kind != "lbfgs" and value:
                why += " (more updates per epoch: the validation loss watches the fit)"
            choices.append(Choice(path, value, why))
    return sched, choices


def _auto_batch_angles(n_angles: int) -> int:
    if n_angles <= 1:
        return 0
    return max(1, int(round(n_angles / TARGET_UPDATES_TOMO)))


def _auto_batch_spots(ds: Dataset, object_shape, n_angles_batch: int, avail: int, dtype: str,
                      target: int = TARGET_UPDATES_2D) -> int:
    """All spots of the batch's angles for tomography (the angles give the updates); about
    ``target`` minibatches for 2D (at least 16 spots each); fewer spots whenever memory demands
    it."""
    n = ds.n_spots
    bs = n if ds.n_angles > 1 else max(min(n, 16), int(math.ceil(n / target)))
    while bs > 1 and estimate_memory_bytes(ds, object_shape, object_shape[0], n_angles_batch * bs,
                                           dtype=dtype) > 0.5 * avail:
        bs = (bs + 1) // 2
    return 0 if bs >= n else bs


#: Spots (evenly spread) on which minibatch runs measure their learning rates.
ESTIMATION_SPOTS = 32


def estimation_batch(ds: Dataset, splits_spots: bool, schedule: Schedule,
                     max_angles: int = 2, max_spots: int = ESTIMATION_SPOTS) -> tuple[np.ndarray, np.ndarray]:
    """Angles and spots on which the learning rates are measured: the full batch for L-BFGS (its
    steps see exactly these data), else up to ``max_angles`` angles spread over 180 degrees (two
    orthogonal projections already see the object's extent; measuring costs a few evaluations of
    these frames) and ``max_spots`` evenly spread spots (32 measure the rates within about 40 % of
    64, a spread far inside the optimiser's tolerance, at half the cost: at small 2D scans the
    measurement otherwise costs more than an epoch)."""
    if schedule.kind == "lbfgs":
        return np.arange(ds.n_angles), np.arange(ds.n_spots)
    ang = np.asarray(ds.angles_rad, float)
    # directions spread over 180 degrees (a view and its opposite see the same projection)
    targets = ang[0] + np.pi * np.arange(min(ds.n_angles, max_angles)) / max(min(ds.n_angles, max_angles), 1)
    gap = np.abs((ang[None, :] - targets[:, None] + np.pi / 2) % np.pi - np.pi / 2)
    a = np.unique(gap.argmin(axis=1))
    if not splits_spots:
        s = np.arange(ds.n_spots)
    else:
        s = spread_indices(ds.n_spots, max_spots)
    return a, s
