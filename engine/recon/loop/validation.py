"""Held-out data and the validation loss: how a run sees that it has started to fit the noise.

A small share of the measurements is left out of the fit (:class:`Holdout`); after every epoch
their data loss on the current estimate is the **validation loss**. While the estimate improves,
it falls with the training loss; once the fit moves on to the noise of the frames it sees, it
turns up (the held-out frames' noise is independent). :class:`BestState` keeps the estimate of
the best validation loss, which is the run's result.

What is held out depends on what the data offer (:func:`choose_holdout`):

* ``"frames"`` -- scan positions (ptychography): a stratified random choice of ``share`` of the
  positions, a different choice at each angle in tomography (every region and every angle keeps
  most of its data). In 2D the held-out positions are simply left out of the minibatches; in
  tomography a minibatch holding some carries them with zero weight.
* ``"angles"`` -- views of full-field tomography (holotomography): whole angles, spread.
* ``"pixels"`` -- one full-field view (holography): scattered detector pixels in every frame
  (:data:`ISLAND_PX`), as PyNX holds out "free pixels" in CDI; the training loss ignores them,
  the validation loss uses only them.

Everything is deterministic from ``run.shuffle_seed``: a resumed run, every MPI rank and a rerun
of the saved configuration hold out the same data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...autodiff import no_grad
from ...backend import to_host
from ...models.base import intensity
from ...errors import ConfigError

__all__ = ["Holdout", "choose_holdout", "watches_fit", "BestState", "Validator", "ValidationWatch",
           "ISLAND_PX", "MIN_UNITS", "PATIENCE", "MIN_EPOCHS", "NOISE_GATE", "PLATEAU", "MIN_GAIN",
           "SMALL_SCAN_FRAMES", "small_scan"]

#: Side of the square islands of held-out detector pixels. Single pixels: in the near field an
#: object pixel reaches only the detector pixels of its Fresnel zone (one or two pixels at the
#: usual Fresnel numbers), so the object behind a larger island gets no data at all, stays as it
#: started, and its island's loss rises while the object improves everywhere else (measured:
#: 3x3 islands on noise-free four-distance holography, validation loss up 50 % from the first
#: epoch while the correlation went 0.29 -> 0.75; PyNX's islands of radius 3 suit far-field CDI,
#: where every object pixel reaches every detector pixel).
ISLAND_PX = 1
#: Fewest held-out units (positions, angles) for a validation loss worth reading.
MIN_UNITS = 2
#: Epochs without a new best validation loss after which the run stops (``run.early_stop``).
#: Halving Adam's rates instead was measured to gain nothing: once the noise is in the estimate,
#: smaller steps keep it (benchmarks/README.md, "Counting noise", rule d).
PATIENCE = 4
#: The fit is watched for noise fitting only once its training data misfit is within this factor
#: of the loss expected at the noise level: above it, the model explains the data worse than the
#: noise allows (a probe, positions or the object still far off), so a validation loss that rises
#: is the fit's own transient (a probe being refined, an object built from vacuum), not noise
#: (a blind far-field probe: the validation loss rose over the first epochs while the correlation
#: went 0 -> 0.9). Weak noisy data reach the noise level within the first epochs
#: (benchmarks/README.md, "Counting noise", c).
NOISE_GATE = 1.5
#: ... and never before this many epochs: a fit built from an empty start can predict the held-out
#: data worse for a few epochs before it predicts them better (noise-free four-distance holography
#: from vacuum: the validation loss rose for three epochs, then fell 13x while the correlation
#: went 0.31 -> 0.99). The result is the best state whenever the run stops.
MIN_EPOCHS = 2 * PATIENCE
#: ... or once the training misfit has stopped falling (by less than this share over
#: :data:`PATIENCE` epochs): the fit is then as near the data as its model gets, and on data the
#: model cannot fit to the noise level (model error: real detectors, a mismatched probe) the
#: validation loss would otherwise never count.
PLATEAU = 0.02
#: A new least validation loss restarts the patience only if it beats the last one that did by
#: more than this share of that one's excess over the noise floor (of the loss itself where the
#: floor is unknown): a fit creeping towards the noise by tiny steps has stopped finding structure.
MIN_GAIN = 0.01


@dataclass(frozen=True)
class Holdout:
    """What is held out: ``held`` bool ``(n_angles, n_spots)`` (frames, for units "frames" and
    "angles"), or ``pixels`` float32 ``(fy, fx)``, 1 on held-out detector pixels (unit "pixels").
    ``unit`` is "frames", "angles", "pixels" or "none"; ``share`` the fraction held out."""

    unit: str
    share: float
    held: np.ndarray
    pixels: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return self.unit != "none"

    @property
    def train_angles(self) -> np.ndarray:
        """Angles with at least one frame in the fit."""
        return np.flatnonzero(~self.held.all(axis=1))

    @property
    def train_spots(self) -> np.ndarray:
        """Spots with at least one frame in the fit."""
        return np.flatnonzero(~self.held.all(axis=0))

    def frame_weights(self, angle_idx, spot_idx, held: bool = False) -> np.ndarray | None:
        """``(A, S)`` 0/1 weights of the minibatch's frames in the training loss (``held=False``)
        or the validation loss (``held=True``); None when every frame counts fully."""
        sub = self.held[np.ix_(np.asarray(angle_idx), np.asarray(spot_idx))]
        w = sub if held else ~sub
        return None if w.all() else w.astype(np.float32)

    def validation_batches(self, max_frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Minibatches ``(angle indices, spot indices)`` covering the held-out frames (with the
        non-held frames of a batch weighted out), at most about ``max_frames`` frames each."""
        if self.unit == "pixels":
            n_a, n_s = self.held.shape
            step = max(1, max_frames // max(n_s, 1))
            return [(np.arange(a, min(a + step, n_a)), np.arange(n_s)) for a in range(0, n_a, step)]
        out = []
        for a in np.flatnonzero(self.held.any(axis=1)):
            spots = np.flatnonzero(self.held[a])
            for j in range(0, len(spots), max(max_frames, 1)):
                out.append((np.array([a]), spots[j:j + max_frames]))
        return out

    def describe(self) -> str:
        n_a, n_s = self.held.shape
        if self.unit == "frames":
            return (f"{int(self.held.sum())} of {n_a * n_s} frames (scan positions spread over the "
                    f"scan{', different at each angle' if n_a > 1 else ''})")
        if self.unit == "angles":
            return f"{len(np.flatnonzero(self.held.all(axis=1)))} of {n_a} angles, spread"
        if self.unit == "pixels":
            return (f"{100 * float(self.pixels.mean()):.1f} % of the detector pixels"
                    + ("" if ISLAND_PX == 1 else f", in {ISLAND_PX}x{ISLAND_PX} islands"))
        return "nothing"

    def state_dict(self) -> dict:
        """For checkpoints: enough to check that a resumed run holds out the same data."""
        return {"unit": self.unit, "share": float(self.share), "n_held": int(self.held.sum()),
                "n_pixels": 0 if self.pixels is None else int(self.pixels.sum())}


def _stratified(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` of ``range(n)``, one random index in each of ``k`` equal strata: spread over the
    range (a raster or spiral scan's index order is spatial) yet not on a regular lattice."""
    edges = np.linspace(0, n, k + 1)
    lo, hi = np.ceil(edges[:-1]).astype(int), np.ceil(edges[1:]).astype(int)
    return np.unique(np.minimum(lo + (rng.random(k) * np.maximum(hi - lo, 1)).astype(int), n - 1))


#: At least this many held-out frames (ptychography) or angles
#: (full-field tomography), up to :data:`MAX_SHARE` of them: fewer rank the weights unreliably
#: (benchmarks/README.md, "Counting noise": 6 frames 0.62 of the best weight at worst, 26 0.96).
MIN_FRAMES, MIN_ANGLES, MAX_SHARE = 25, 4, 0.2
#: Scans with fewer frames (angles of full-field tomography) hold nothing out: a validation loss
#: of a handful of frames ranks nothing reliably (30 frames hold out 6, the fewest measured: 0.62
#: of the best weight at worst, better than no stop at all). Below :data:`SMALL_SCAN_FRAMES`
#: frames each frame still shapes the fit (a blind far-field probe from 64 frames: correlation
#: 0.96 with every frame, 0.18 with 13 held out), so their final fit always uses every frame
#: (:mod:`.weight_search`); without a held-out share such scans fitted the noise with nothing to
#: stop them (81 positions at 1e5 photons: correlation 0.63 at epoch 3, 0.32 at 60, 0.16 at 240).
MIN_TOTAL_FRAMES, MIN_TOTAL_ANGLES = 30, 20
#: Scans with fewer frames than this are refitted on every frame whatever the weight search found.
SMALL_SCAN_FRAMES = 100


def small_scan(unit: str, n_angles: int, n_spots: int) -> bool:
    """Whether frames (``unit`` of a :class:`Holdout`) are held out of a scan of fewer than
    :data:`SMALL_SCAN_FRAMES` frames, whose final fit must use them all."""
    return unit == "frames" and n_angles * n_spots < SMALL_SCAN_FRAMES


def choose_holdout(share: float, n_angles: int, n_spots: int, frame_shape: tuple,
                   splits_spots: bool, seed: int, automatic: bool = False) -> Holdout:
    """The held-out data of a run (see the module docstring); ``share`` in [0, 0.5), raised to
    :data:`MIN_FRAMES` / :data:`MIN_ANGLES` (at most :data:`MAX_SHARE` of the data) where it
    gives fewer. ``automatic`` (the share was not set): nothing is held out of scans smaller
    than :data:`MIN_TOTAL_FRAMES` / :data:`MIN_TOTAL_ANGLES`."""
    none = Holdout("none", 0.0, np.zeros((n_angles, n_spots), bool))
    if share <= 0:
        return none
    rng = np.random.default_rng([seed, 0x5EED])
    held = np.zeros((n_angles, n_spots), bool)
    total = max(share * n_angles * n_spots, min(MIN_FRAMES, MAX_SHARE * n_angles * n_spots))
    k_spots = min(int(math.ceil(total / n_angles - 1e-9)), n_spots // 2)
    if automatic and splits_spots and n_angles * n_spots < MIN_TOTAL_FRAMES:
        return none
    if splits_spots and k_spots >= MIN_UNITS:
        for a in range(n_angles):
            held[a, _stratified(n_spots, k_spots, rng)] = True
        return Holdout("frames", share, held)
    k_angles = max(int(round(share * n_angles)), min(MIN_ANGLES, int(MAX_SHARE * n_angles)))
    if automatic and not splits_spots and 1 < n_angles < MIN_TOTAL_ANGLES:
        return none
    if not splits_spots and k_angles >= MIN_UNITS:
        held[_stratified(n_angles, k_angles, rng)] = True
        return Holdout("angles", share, held)
    fy, fx = frame_shape
    cells = (fy // ISLAND_PX) * (fx // ISLAND_PX)
    k = int(round(share * cells))
    if k < MIN_UNITS:
        return none
    pixels = np.zeros((fy, fx), np.float32)
    for c in rng.choice(cells, size=k, replace=False):
        y, x = divmod(int(c), fx // ISLAND_PX)
        pixels[y * ISLAND_PX:(y + 1) * ISLAND_PX, x * ISLAND_PX:(x + 1) * ISLAND_PX] = 1
    return Holdout("pixels", share, held, pixels)


class BestState:
    """The estimate with the best validation loss so far, and how long ago it was.

    ``update(epoch, loss, params)`` after each epoch: a new best keeps a host copy of ``params``
    (only the unknowns that change: all of them). ``since_best``: epochs since then.
    """

    def __init__(self):
        self.loss = math.inf
        self.epoch = 0
        self.params: dict | None = None
        self.since_best = 0

    def update(self, epoch: int, loss: float, params: dict, copy) -> bool:
        """Record epoch ``epoch``'s validation ``loss``; ``copy(params)`` makes the kept copy.
        Returns whether it is a new best."""
        if math.isfinite(loss) and loss < self.loss:
            self.loss, self.epoch, self.params, self.since_best = loss, epoch, copy(params), 0
            return True
        self.since_best += 1
        return False

    def state_dict(self) -> dict:
        out = {"loss": float(self.loss), "epoch": int(self.epoch),
               "since_best": int(self.since_best)}
        if self.params is not None:
            out["params"] = dict(self.params)
        return out

    def load_state_dict(self, state: dict, to_device) -> None:
        if not state:
            return
        self.loss = float(state.get("loss", math.inf))
        self.epoch = int(state.get("epoch", 0))
        self.since_best = int(state.get("since_best", 0))
        params = state.get("params")
        self.params = None if not params else {k: to_device(k, v) for k, v in params.items()}


def watches_fit(holdout: Holdout | None, config, params: dict) -> bool:
    """Whether the validation loss guards the fit enough for a faster object (Adam's rate, more
    minibatches: :mod:`..setup.stepsize`, :mod:`..setup.schedule`): held-out data, early
    stopping on, and no probe, positions or distances refined with it (those are not watched so:
    a blind probe's weak cone at twice the rate reached correlation 0.78 instead of 0.82)."""
    refines = any(getattr(config.refine, n) for n in ("probe", "positions", "distances")
                  if n in params)
    return holdout is not None and holdout.active and config.run.early_stop and not refines


class Validator:
    """The validation loss of a run's estimates: the amplitude misfit of the held-out data.

    ``problem``: the run's :class:`~..problem.Problem` (its ``validation_mask`` holds the
    held-out pixel islands for unit "pixels"); ``distributed``: the MPI helper or None (each
    rank evaluates its share of every batch; one reduction per evaluation).
    """

    #: Frames per validation batch (no tape is kept: larger than a training batch is fine).
    BATCH_FRAMES = 64

    def __init__(self, holdout: Holdout, problem, distributed=None, noise=None):
        self.holdout, self.problem, self.distributed = holdout, problem, distributed
        self.noise = noise          # the data's NoiseModel (io/noise.py), or None
        self._batches = holdout.validation_batches(self.BATCH_FRAMES) if holdout.active else []
        #: the training loss expected at the noise level, from the last evaluation's predicted
        #: intensities (NaN: unknown); the fit's misfit is compared with it
        self.expected_misfit = float("nan")
        #: the validation loss expected at the noise level (the amplitude loss's; NaN: unknown)
        self.floor = float("nan")

    def loss(self, params: dict) -> float:
        """Mean amplitude misfit per held-out pixel of ``params`` (NaN without a holdout); the
        amplitude loss whatever loss the fit uses (:meth:`..problem.Problem.amplitude_misfit`).
        Also updates :attr:`expected_misfit` and :attr:`floor` from the model's intensities of the
        held-out data (the measured frames would misjudge it where counts are sparse: a pixel measured at 0
        or 1 photon says little about its mean)."""
        if not self._batches:
            return float("nan")
        prob, dist = self.problem, self.distributed
        sums = np.zeros(4)     # weighted: loss, expected misfit, expected validation; weight
        for a_idx, s_idx in self._batches:
            if dist is not None:
                a_idx, s_idx = dist.share(a_idx, s_idx, prob.model.splits_spots)
                if not (len(a_idx) and len(s_idx)):
                    continue
            sums += self._batch(params, a_idx, s_idx)
        w = sums[3]
        if dist is not None:
            loss, terms, _ = dist.combine(sums[0] / w if w else 0.0,
                                          {"expected": sums[1] / w if w else 0.0,
                                           "floor": sums[2] / w if w else 0.0}, {}, w)
            known = self.noise is not None
            self.expected_misfit = terms.get("expected", float("nan")) if known else float("nan")
            self.floor = terms.get("floor", float("nan")) if known else float("nan")
            return loss
        known = bool(w) and self.noise is not None
        self.expected_misfit = sums[1] / w if known else float("nan")
        self.floor = sums[2] / w if known else float("nan")
        return sums[0] / w if w else float("nan")

    def _batch(self, params, a_idx, s_idx) -> np.ndarray:
        """``(w * loss, w * expected misfit, w * expected validation loss, w)`` of one batch,
        ``w`` its held-out frames."""
        prob, held = self.problem, self.holdout
        frames = None
        if held.unit == "pixels":
            mask, w = prob.validation_mask, float(len(a_idx) * len(s_idx))
        else:
            frames = held.frame_weights(a_idx, s_idx, held=True)
            w = float(len(a_idx) * len(s_idx)) if frames is None else float(frames.sum())
            if w == 0:
                return np.zeros(4)
            mask = prob.weighted_mask(prob.mask, frames)
        with no_grad():
            val, fields = prob.amplitude_misfit(params, a_idx, s_idx, mask)
            expected = floor = 0.0
            if self.noise is not None:
                inten = np.asarray(to_host(intensity(fields)), np.float64)
                used = np.broadcast_to(np.asarray(to_host(mask)) > 0, inten.shape) \
                    if mask is not None else np.ones(inten.shape, bool)
                floor = self.noise.expected_misfit(inten[used], "amplitude")
                expected = floor if prob.loss_spec.name == "amplitude" else \
                    self.noise.expected_misfit(inten[used], prob.loss_spec.name)
        return np.array([w * float(to_host(val)), w * expected, w * floor, w])


class ValidationWatch:
    """After each epoch: the validation loss, the best estimate so far, and with
    ``run.early_stop`` whether to stop (:data:`PATIENCE` epochs without a new best that gains
    :data:`MIN_GAIN`). It counts from the first epoch near the noise level, or once the misfit has
    stopped falling (:data:`PLATEAU`). Checkpoints keep all of it."""

    def __init__(self, holdout: Holdout, validator: Validator, early_stop: bool,
                 from_epoch: int | None = None):
        self.holdout, self.validator, self.early_stop = holdout, validator, early_stop
        self.from_epoch = from_epoch        # None: from the first epoch near the noise level
        self.first_counted = 0              # the first epoch that counted (0: none yet)
        self.last_noise_ratio = float("nan")
        self.best = BestState()
        self.stopped = False
        self.misfits: list[float] = []      # the training misfit of every epoch so far
        self.mark = math.inf                # the last validation loss that restarted the patience
        self.since_mark = 0

    @property
    def active(self) -> bool:
        return self.holdout.active

    def after_epoch(self, epoch: int, params: dict, copy, misfit: float) -> tuple[float, str]:
        """``(validation loss, why the run stops or "")`` for the estimate ``params`` of
        ``epoch``; ``copy(params)`` keeps a new best; ``misfit``: the epoch's training data loss,
        compared with the one expected at the noise level (:data:`NOISE_GATE`)."""
        value = self.validator.loss(params)
        expected = self.validator.expected_misfit
        noise_ratio = misfit / expected if expected > 0 else float("nan")
        self.last_noise_ratio = noise_ratio
        self.misfits.append(float(misfit))
        if self.from_epoch is not None:
            counts = epoch >= self.from_epoch
        else:
            counts = self.first_counted > 0 or noise_ratio <= NOISE_GATE or \
                not math.isfinite(noise_ratio) or (epoch >= MIN_EPOCHS and self._plateau())
        if not counts:
            return value, ""     # not near the noise yet: nothing to keep or stop for
        self.first_counted = self.first_counted or epoch
        self.best.update(epoch, value, params, copy)
        self._count_gain(value)
        if not self.early_stop or self.since_mark < PATIENCE or epoch < MIN_EPOCHS:
            return value, ""
        self.stopped = True
        return value, (f"the validation loss has not improved by {100 * MIN_GAIN:g} % of its "
                       f"excess over the noise floor for {PATIENCE} epochs (best "
                       f"{self.best.loss:.4g} at epoch {self.best.epoch})")

    def _plateau(self) -> bool:
        """Whether the training misfit fell by less than :data:`PLATEAU` over the last
        :data:`PATIENCE` epochs."""
        if len(self.misfits) <= PATIENCE:
            return False
        before, now = self.misfits[-1 - PATIENCE], self.misfits[-1]
        return math.isfinite(before) and before > 0 and before - now <= PLATEAU * before

    def _count_gain(self, value: float) -> None:
        """Restart the patience where ``value`` beats :attr:`mark` by :data:`MIN_GAIN`."""
        floor = self.validator.floor
        base = floor if math.isfinite(floor) and 0 <= floor < self.mark else 0.0
        if math.isfinite(value) and (not math.isfinite(self.mark)
                                     or value < self.mark - MIN_GAIN * (self.mark - base)):
            self.mark, self.since_mark = value, 0
        else:
            self.since_mark += 1

    def result_params(self, last_epoch: int) -> dict | None:
        """The host copies the result should hold instead of the last estimate (the best
        validation state, when early stopping keeps it and it is not the last), else None."""
        if self.early_stop and self.best.params is not None and self.best.epoch != last_epoch:
            return self.best.params
        return None

    def state_dict(self) -> dict:
        if not self.active:
            return {}
        return {"holdout": self.holdout.state_dict(), "best": self.best.state_dict(),
                "stopped_early": bool(self.stopped), "first_counted": int(self.first_counted),
                "misfits": [float(x) for x in self.misfits], "mark": float(self.mark),
                "since_mark": int(self.since_mark)}

    def load_state_dict(self, state: dict, to_device) -> None:
        """Restore :meth:`state_dict`; a checkpoint that held out other data is refused (its
        validation loss would not be comparable)."""
        held = state.get("holdout", {})
        mine = self.holdout.state_dict()
        if held and any(held.get(k) != mine[k] for k in ("unit", "n_held", "n_pixels")):
            raise ConfigError("--resume: the checkpoint held out other data for its validation "
                              f"loss ({held.get('unit')}, run.validation_share = "
                              f"{held.get('share')}); set run.validation_share and "
                              "run.shuffle_seed as in its config.toml")
        self.best.load_state_dict(state.get("best", {}), to_device)
        self.stopped = bool(state.get("stopped_early", False))
        self.first_counted = int(state.get("first_counted", 0))
        self.misfits = [float(x) for x in state.get("misfits", [])]
        self.mark = float(state.get("mark", self.best.loss))
        self.since_mark = int(state.get("since_mark", self.best.since_best))
