"""Scan-position correction by registration: every frame is searched for on the current object.

Gradient refinement of the positions converges only from within about a feature size: from a
few pixels off, the object first grows around the wrong positions (a mosaic of misplaced
patches) and each position's gradient then points nowhere in particular. Registration looks
further. A *pass*, every :data:`PASS_EVERY` epochs from epoch :data:`FIRST_PASS_EPOCH` (or
``refine.positions_start_epoch``) on, works on the object as it stands
(:class:`PositionCorrection`):

1. the data misfit of each frame at candidate positions (:mod:`.registration`): a pattern search
   from its current estimate on the integer pixel lattice (the centre and its four neighbours,
   stepping to the best until the centre wins, then a parabola through them for the sub-pixel
   minimum), and, for frames that fit much worse than their neighbours in the scan, the
   lattice within ``refine.position_search_px`` of the frame's *anchor* (its recorded position
   through the scan's affine map) followed by the same pattern search;
2. each candidate's cost is ``N/2 m/m_typ + |p - anchor|^2 / (2 s^2)``: the misfit ``m`` in units
   of the typical misfit ``m_typ`` of the frame's neighbours (``N`` detector pixels: a
   chi-square-like scale that needs no noise model) plus a prior on the stage error, whose
   spread ``s`` is that of the displacements of the well-placed frames. No frame ends further
   than the search radius from its anchor;
3. frames that barely see the object (replacing the object by vacuum hardly changes their fit:
   a featureless region) stay where they are: they fit the noise the object has learnt there,
   sharply but meaninglessly;
4. the scan as a whole (:mod:`.scan_map`): the common offset is removed (it only moves the
   object); the affine map of the displacements is fitted and kept where its linear part stands
   out from the frames' own errors, else taken out (the data barely fix the scan's scale and
   rotation: the object scales and turns with them); and smooth displacements over a region
   about a frame wide, *domains* (a group of frames off by the same amount, with an object patch
   grown around them, consistent inside), are taken out of the positions with the object warped
   along, which changes no frame's fit but lets the conflicting edges of the domains pull the
   right way;
5. frames that fit worse than their neighbours get less weight in the loss
   (``Problem.set_frame_weights``, ``(m_typ / m)^4``, at least :data:`MIN_WEIGHT`): until they are
   placed they would smear their misplaced signal over the object the others are being
   registered on.

``refine.positions`` unset: after :data:`FIRST_PASS_EPOCH` epochs a trial registration of a few
hundred frames decides (:meth:`PositionCorrection.choose`, a :class:`~..plan.Choice`).

Candidates are evaluated with the model's own forward pass (no gradient), so this works for
every scanned model of one view (2D and multislice far-field ptychography, near-field
ptychography); ptychotomography keeps the gradient refinement. While passes run, the optimiser
leaves the positions alone (:func:`searches`). A pass costs about five forward passes over all
frames per pattern-search step, and about 80 per frame searched over the whole radius.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ...backend import to_host
from ...io.datafile import spread_indices
from .. import config as cfgmod
from ..plan import Choice
from . import scan_map
from .registration import Block, frame_misfits, lattice_search, pattern_search
from .scan_map import Affine

log = logging.getLogger(__name__)

__all__ = ["PositionCorrection", "search_radius", "searches",
           "FIRST_PASS_EPOCH", "PASS_EVERY", "TRIAL_FRAMES", "TRIAL_MOVE_PX", "TRIAL_SHARE",
           "TRIAL_GAP"]

#: The first pass comes after this many epochs: frames are placed on an object that must exist.
FIRST_PASS_EPOCH = 5
#: Epochs between passes; doubled (up to :data:`MAX_EVERY`) after a quiet pass.
PASS_EVERY = 2
MAX_EVERY = 16
#: A pass whose median move is below this (px) is quiet.
QUIET_MOVE_PX = 0.1
#: Default search radius (px), unless a third of the frame is smaller.
DEFAULT_RADIUS_PX = 10.0
#: Neighbours in the scan whose median misfit is a frame's typical one.
NEIGHBOURS = 12
#: Frames whose misfit is this many times the typical one are searched over the whole radius.
SUSPECT_MISFIT = 2.0
#: Smallest weight of a frame in the loss, and the power of ``m_typ / m`` that gives the weights.
MIN_WEIGHT = 0.05
WEIGHT_POWER = 4.0
#: A frame whose data curvature (cost per px^2) exceeds this is placed to better than 1 px; only
#: such frames inform the scan's affine map and the prior's spread.
INFORMATIVE = 1.0
#: A frame sees the object when its misfit with the object replaced by vacuum exceeds its own by
#: more than this factor of its own (its own still holds the model's other errors: in near-field
#: ptychography early on, the probe's).
SIGNAL = 0.1
#: The affine map is kept when the rms of its linear part exceeds this fraction of the frames'
#: spread around it.
AFFINE_SIGNIFICANT = 0.5
#: Width of the smooth displacements taken out with the object (Gaussian sigma), in frame sizes.
DOMAIN_FRAMES = 0.75
#: Smooth displacements below this rms (px) are left alone (no warp of the object).
DOMAIN_MIN_PX = 0.5
#: ``refine.positions`` unset: after :data:`FIRST_PASS_EPOCH` epochs up to this many frames, spread
#: over the scan, are registered on the object as it stands; when more than :data:`TRIAL_SHARE` of
#: those that see the object fit best over :data:`TRIAL_MOVE_PX` from their positions, the data
#: show position errors and passes start (sub-pixel errors stay below it; the shares measured
#: with and without errors: benchmarks/README.md, bench_auto_positions.py).
TRIAL_FRAMES = 256
TRIAL_MOVE_PX = 0.5
TRIAL_SHARE = 0.5
#: Scans with fewer positions are not judged (refine.positions unset = off).
TRIAL_MIN_FRAMES = 200
#: Epochs between the two trials; of the frames that move in both, more than :data:`TRIAL_SHARE`
#: must move the same way (directions within 60 degrees).
TRIAL_GAP = 5
#: Floor of the prior's spread, px.
MIN_PRIOR_PX = 0.5


def search_radius(config, frame_shape) -> float:
    """``refine.position_search_px``, or when unset :data:`DEFAULT_RADIUS_PX` (at most a third
    of the frame's smaller side)."""
    r = config.refine.position_search_px
    return float(r) if r is not None else min(DEFAULT_RADIUS_PX, min(frame_shape) / 3)


def searches(config, problem) -> bool:
    """Whether the run places its positions by registration passes: refined positions, a search
    radius, one view, recorded positions. The optimiser then leaves them alone (its gradient
    steps wander on featureless regions and follow the mosaic's local fits)."""
    return bool(config.refine.positions) and problem.dataset.n_angles == 1 \
        and search_radius(config, problem.model.frame_shape) > 0 \
        and problem.initial_positions is not None and "positions" in problem.params


@dataclass
class _Placed:
    """What a pass found: positions ``(n, 2)``, misfits ``(n,)`` and the data's curvature there
    ``(n,)`` (cost per px^2, the smaller axis; 0 where a frame is still moving)."""

    positions: np.ndarray
    misfit: np.ndarray
    sharpness: np.ndarray
    typical: np.ndarray       # (n,) the neighbours' median misfit before the pass
    searched: int             # frames searched over the whole radius


#: What a pass changes besides the unknowns: one set per fit (see :meth:`PositionCorrection._follow`).
_FIT_STATE = ("affine", "fitted", "affine_kept", "prior_px", "every", "next_pass", "passes",
              "weights", "trial")


class PositionCorrection:
    """Registration passes during a run (see the module docstring). The run calls
    :meth:`after_epoch` at the end of every epoch (under its lock) and keeps :meth:`state_dict`
    in its checkpoints; ``plan``: the run's :class:`~..plan.RunPlan`, which takes the choice of
    an unset ``refine.positions``. The configuration read is the problem's (that of the fit the
    run holds: a weight search's trial fit has its own)."""

    def __init__(self, plan, problem):
        self.plan, self.problem = plan, problem
        init = problem.initial_positions
        self.recorded = None if init is None else np.array(init, dtype=float)
        self._neighbours = None              # (n, k) nearest recorded positions of each
        self._saved: dict[int, dict] = {}    # the state of other fits, by their unknowns
        self._key = id(problem.params)
        self._reset()

    def _reset(self) -> None:
        identity = None if self.recorded is None else Affine.identity(self.recorded)
        self.affine = self.fitted = identity  # the anchors' map; the last fit, kept or not
        self.affine_kept = False
        self.prior_px: float | None = None   # spread of the stage errors, from the last pass
        self.every = PASS_EVERY
        self.next_pass: int | None = None    # finished epochs at which the next pass runs
        self.passes = 0
        self.weights: np.ndarray | None = None
        self.trial: tuple | None = None      # (epoch, moves (k, 2)) of a first trial (choose)

    def _follow(self) -> None:
        """Keep one state per fit: a weight search's trial fit (:mod:`.weight_search`) holds its
        own unknowns (``problem.params`` is another dict) and starts its passes afresh; going
        back to a fit brings its state back."""
        key = id(self.problem.params)
        if key == self._key:
            return
        self._saved[self._key] = {f: getattr(self, f) for f in _FIT_STATE}
        self._reset()
        for f, v in self._saved.pop(key, {}).items():
            setattr(self, f, v)
        self._key = key

    @property
    def config(self):
        return self.problem.config

    @property
    def radius(self) -> float:
        return search_radius(self.config, self.problem.model.frame_shape)

    def due(self, finished: int) -> bool:
        """Whether a pass runs after ``finished`` epochs."""
        if not searches(self.config, self.problem):
            return False
        if self.next_pass is None:
            return finished >= max(FIRST_PASS_EPOCH, self.config.refine.positions_start_epoch)
        return finished >= self.next_pass

    def after_epoch(self, finished: int) -> bool:
        """Decide ``refine.positions`` when it is unset and the time has come
        (:meth:`choose`), then run a pass if one is due after ``finished`` epochs. Returns
        whether the configuration changed (an automatic choice was made)."""
        self._follow()
        choice = self.choose(finished)
        if choice is not None:
            self.plan.adopt(choice)
            if self.config is not self.plan.config:   # a weight search's trial fit
                cfgmod.set_value(self.config, choice.path, choice.value)
        if self.due(finished):
            moved = self.run_pass(finished)
            self.every = min(2 * self.every, MAX_EVERY) if moved < QUIET_MOVE_PX else PASS_EVERY
            self.next_pass = finished + self.every
        return choice is not None

    def choose(self, finished: int) -> Choice | None:
        """``refine.positions`` for a run that left it unset, or None while it stays open: off
        for several views (ptychotomography: gradient steps only when asked), for scans under
        :data:`TRIAL_MIN_FRAMES` and with the probe refined (a probe still wrong, or a small
        scan's young object, moves frames consistently too: benchmarks/README.md); else a trial
        registration (:meth:`trial_moves`) after :data:`FIRST_PASS_EPOCH` epochs and again
        :data:`TRIAL_GAP` epochs later: on when most frames move both times, the same way."""
        p, when = self.problem, f"epoch {finished}"
        if self.config.refine.positions is not None or "positions" not in p.params \
                or self.recorded is None:
            return None
        if p.dataset.n_angles > 1:
            return Choice("refine.positions", False, "several views: their positions are refined "
                          "only when asked", when)
        if self.config.refine.probe:
            return Choice("refine.positions", False, "the probe is refined: a probe still wrong "
                          "moves frames too, consistently; positions are refined only when "
                          "asked", when)
        if len(self.recorded) < TRIAL_MIN_FRAMES:
            return Choice("refine.positions", False, f"{len(self.recorded)} scan positions: on a "
                          f"scan under {TRIAL_MIN_FRAMES} every frame still shapes the object "
                          "under it, and a trial cannot tell its errors; positions are refined "
                          "only when asked", when)
        if finished < FIRST_PASS_EPOCH or self.radius <= 0 or (
                self.trial is not None and finished < self.trial[0] + TRIAL_GAP):
            return None
        spots = spread_indices(len(self.recorded), TRIAL_FRAMES)
        moves = self._without_affine(spots, self.trial_moves(spots))  # (k, 2), NaN: unseen
        seen = np.isfinite(moves[:, 0])
        share = float((np.hypot(*moves[seen].T) > TRIAL_MOVE_PX).mean()) if seen.any() else 0.0
        words = (f"{100 * share:.0f} % of {int(seen.sum())} frames registered on the object "
                 f"after {finished} epochs fit best over {TRIAL_MOVE_PX:g} px from their positions "
                 "(the moves' affine part aside)")
        if not seen.any():
            return Choice("refine.positions", False, "no frame sees enough of the object to tell",
                          when)
        if share <= TRIAL_SHARE:
            return Choice("refine.positions", False, words, when)
        if self.trial is None:
            self.trial = (finished, moves)                    # asked again TRIAL_GAP epochs on
            return None
        agree = _agreement(self.trial[1], moves)
        words += (f", {100 * agree:.0f} % of those moving both times the same way as after "
                  f"{self.trial[0]} epochs")
        if agree > TRIAL_SHARE:
            return Choice("refine.positions", True, f"{words}: the scan has position errors", when)
        return Choice("refine.positions", False, f"{words}: the object is still forming", when)

    def _without_affine(self, spots: np.ndarray, moves: np.ndarray) -> np.ndarray:
        """``moves`` less their affine part over the recorded positions of ``spots``: a
        stage's own errors hardly have one, an object still forming (or a scan's scale) moves
        frames smoothly."""
        seen = np.isfinite(moves[:, 0])
        rec = self.recorded[spots]
        fit = scan_map.fit_affine(rec, rec + np.nan_to_num(moves), seen.astype(float))
        return moves - (fit.apply(rec) - rec)

    def trial_moves(self, spots: np.ndarray) -> np.ndarray:
        """Moves ``(len(spots), 2)`` (px; NaN for frames that do not see the object) of frames
        ``spots`` registered on the current object (the pattern search of a pass, prior centred
        on their positions). Nothing is changed."""
        params = self.problem.params
        pos = np.array(to_host(params["positions"]), dtype=float)
        amps = self._amplitudes(spots)
        misfit = frame_misfits(self.problem, params, spots, pos[spots], amps, self._chunk())
        typical = np.full(len(spots), max(float(np.median(misfit)), 1e-30))
        block = Block(spots, amps, pos[spots], self._pixels() / (2 * typical), self.radius / 2)
        found, found_misfit, cost, _ = self._register(params, block, pos[spots],
                                                      np.zeros(len(spots), bool))
        # a frame whose position fits at least as well as every lattice point tried has not
        # moved (the parabola between lattice points only guesses where a sub-pixel minimum
        # lies: on data without errors it lands ~0.3 px off)
        stay = block.cost(misfit, pos[spots], np.arange(len(spots))) <= cost
        found[stay], found_misfit[stay] = pos[spots][stay], misfit[stay]
        empty = {**params, **self.problem.model.view.vacuum()}
        vacuum = frame_misfits(self.problem, empty, spots, found, amps, self._chunk())
        moves = found - pos[spots]
        moves[~(vacuum > (1 + SIGNAL) * found_misfit)] = np.nan
        return moves

    # ---- one pass -----------------------------------------------------------------------------
    def run_pass(self, finished: int) -> float:
        """Place every frame (module docstring, steps 1-5): new positions, object (warped along
        domains), anchors, prior and frame weights. Returns the median move (px)."""
        prob = self.problem
        params = prob.params
        old = np.array(to_host(params["positions"]), dtype=float)
        anchors = self.affine.apply(self.recorded)
        if self.prior_px is None:
            self.prior_px = self.radius / 2
        placed = self._search(params, old, anchors)
        new = self._constrain(placed.positions, anchors)
        seen = self._sees_object(params, new, placed.misfit)
        new[~seen] = old[~seen]   # and nothing below moves them
        common = (new - old)[seen].mean(axis=0) if seen.any() else np.zeros(2)
        new[seen] -= common       # the common translation only moves the object
        self.weights = np.clip((placed.typical / np.maximum(placed.misfit, 1e-30)) ** WEIGHT_POWER,
                               MIN_WEIGHT, 1.0)
        trusted = self.weights * (seen & (placed.sharpness > INFORMATIVE))
        new[seen] = self._fit_scan(new, trusted)[seen]
        new, domains = self._align_domains(params, new, trusted, seen)
        lo, hi = prob.model.position_bounds()
        new = np.clip(self._constrain(new, self.affine.apply(self.recorded)), lo, hi)
        spread = scan_map.robust_spread((new - self.affine.apply(self.recorded))[trusted > 0])
        self.prior_px = max(MIN_PRIOR_PX, spread if np.isfinite(spread) else self.prior_px)
        params["positions"] = prob.backend.to_real(new).astype(params["positions"].dtype, copy=False)
        prob.set_frame_weights(self.weights)
        self.passes += 1
        step = np.sqrt(((new - old) ** 2).sum(axis=1))
        self._log(finished, step, placed.searched, int((trusted > 0).sum()), int((~seen).sum()),
                  common, domains, new)
        return float(np.median(step))

    def _search(self, params, old: np.ndarray, anchors: np.ndarray) -> _Placed:
        """Step 1-2 for all frames, block by block."""
        n, chunk = len(old), self._chunk()
        current = self._misfits_all(params, old, chunk)
        typical = self._typical(current)
        wide = current > SUSPECT_MISFIT * typical
        pos, misfit, sharp = old.copy(), current.copy(), np.zeros(n)
        for start in range(0, n, chunk):
            spots = np.arange(start, min(n, start + chunk))
            block = Block(spots, self._amplitudes(spots), anchors[spots],
                           self._pixels() / (2 * typical[spots]), self.prior_px)
            pos[spots], misfit[spots], _, sharp[spots] = self._register(params, block, old[spots],
                                                                        wide[spots])
        return _Placed(pos, misfit, sharp, typical, int(wide.sum()))

    def _register(self, params, block: Block, start: np.ndarray, wide: np.ndarray):
        """Positions, misfits, costs and curvatures (see :class:`_Placed`) of one block: the
        pattern search from the current estimates ``start``, and for ``wide`` frames also from
        the best lattice point around their anchors, whichever costs less."""
        prob = self.problem
        pos, mis, cost, sharp = pattern_search(prob, params, block, np.rint(start),
                                               np.arange(len(start)))
        idx = np.flatnonzero(wide)
        if len(idx):
            w_pos, w_mis, w_cost, w_sharp = pattern_search(
                prob, params, block, lattice_search(prob, params, block, idx, self.radius), idx)
            better = w_cost < cost[idx]
            b = idx[better]
            pos[b], mis[b], cost[b], sharp[b] = (w_pos[better], w_mis[better], w_cost[better],
                                                 w_sharp[better])
        return pos, mis, cost, sharp

    def _constrain(self, positions: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """Positions at most the search radius from their anchors."""
        d = positions - anchors
        length = np.sqrt((d ** 2).sum(axis=1, keepdims=True))
        return anchors + d * np.minimum(1.0, self.radius / np.maximum(length, 1e-12))

    def _sees_object(self, params, positions: np.ndarray, misfit: np.ndarray) -> np.ndarray:
        """Frames ``(n,)`` bool whose misfit with the object replaced by vacuum exceeds their own
        by more than :data:`SIGNAL` times their own (step 3)."""
        empty = {**params, **self.problem.model.view.vacuum()}
        return self._misfits_all(empty, positions, self._chunk()) > (1 + SIGNAL) * misfit

    # ---- the scan as a whole ------------------------------------------------------------------
    def _fit_scan(self, positions: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """:func:`.scan_map.settle_affine` (threshold :data:`AFFINE_SIGNIFICANT`); sets
        :attr:`affine` (the anchors' map), :attr:`fitted` and :attr:`affine_kept`."""
        positions, self.fitted, self.affine_kept = scan_map.settle_affine(
            self.recorded, positions, weights, AFFINE_SIGNIFICANT, MIN_PRIOR_PX)
        self.affine = self.fitted if self.affine_kept else \
            Affine(np.zeros((2, 2)), self.fitted.offset, self.fitted.centre)
        return positions

    def _align_domains(self, params, positions: np.ndarray, weights: np.ndarray,
                       seen: np.ndarray):
        """Take the smooth displacements from the anchors (:func:`.scan_map.domains`, Gaussian of
        :data:`DOMAIN_FRAMES` frames) out of the positions of the frames that see the object,
        warping the object along so that their views do not change. Returns the positions and
        the rms taken out (px; 0: none)."""
        prob = self.problem
        frame = np.asarray(prob.model.frame_shape, float)
        field, moves = scan_map.domains(positions + frame / 2,
                                        positions - self.affine.apply(self.recorded), weights,
                                        prob.object_shape[-2:], DOMAIN_FRAMES * frame.min())
        moves *= seen[:, None]
        size = float(np.sqrt((moves[seen] ** 2).sum(axis=1).mean())) if seen.any() else 0.0
        if size < DOMAIN_MIN_PX:
            return positions, 0.0
        for name in prob.model.view.names:
            vol = np.asarray(to_host(params[name]))
            params[name] = prob.backend.asarray(scan_map.warp(vol, field), dtype=params[name].dtype)
        return positions - moves, size

    # ---- helpers ------------------------------------------------------------------------------
    def _typical(self, misfit: np.ndarray) -> np.ndarray:
        """Each frame's typical misfit ``(n,)``: the median over its :data:`NEIGHBOURS` nearest
        neighbours in the scan. The object fits some regions better than others (vacuum
        perfectly); a frame is judged against frames that see the same kind of region."""
        if self._neighbours is None:
            k = min(NEIGHBOURS + 1, len(self.recorded))
            self._neighbours = cKDTree(self.recorded).query(self.recorded, k)[1][:, 1:]
        if self._neighbours.shape[1] == 0:
            return np.maximum(misfit, 1e-30)
        return np.maximum(np.median(misfit[self._neighbours], axis=1), 1e-30)

    def _misfits_all(self, params, positions: np.ndarray, chunk: int) -> np.ndarray:
        n = len(positions)
        out = np.empty(n)
        for start in range(0, n, chunk):
            spots = np.arange(start, min(n, start + chunk))
            out[spots] = frame_misfits(self.problem, params, spots, positions[spots],
                                       self._amplitudes(spots), chunk)
        return out

    def _amplitudes(self, spots: np.ndarray):
        """Measured amplitudes ``(1, b, fy, fx)`` of frames ``spots`` (the loss's prepared
        frames are amplitudes or intensities)."""
        m = self.problem.measured_batch([0], spots)
        if self.problem.loss_spec.name == "amplitude":
            return m
        xp = self.problem.backend.xp
        return xp.sqrt(xp.maximum(m, 0))

    def _pixels(self) -> float:
        """Detector pixels a frame's misfit sums over (the mask's weight)."""
        mask = self.problem.mask
        if mask is None:
            return float(np.prod(self.problem.model.frame_shape))
        return float(to_host(mask.sum()))

    def _chunk(self) -> int:
        """Frames per model evaluation: a few minibatches' worth (no gradient tape is kept)."""
        return max(64, 4 * int(self.config.run.batch_spots or 0))

    def _log(self, finished: int, step: np.ndarray, n_wide: int, n_trusted: int, n_blind: int,
             common, domains: float, new: np.ndarray) -> None:
        total = np.sqrt(((new - self.recorded) ** 2).sum(axis=1))
        worst = int(np.argmax(step))
        log.info("positions, pass %d after epoch %d: moved rms %.2f px, median %.2f px, max %.2f "
                 "px (frame %d); from the file: rms %.2f px, max %.2f px; scan affine %s (%s); "
                 "common shift (%+.2f, %+.2f) px%s taken out with the object; %d frame(s) "
                 "searched within %.3g px, %d placed to better than 1 px, %d see no object and "
                 "stay, %d fit worse than their neighbours and count less", self.passes,
                 finished, float(np.sqrt((step ** 2).mean())), float(np.median(step)),
                 float(step[worst]), worst, float(np.sqrt((total ** 2).mean())),
                 float(total.max()), self.fitted.words(),
                 "kept" if self.affine_kept else "within the frames' own errors: taken out",
                 common[0], common[1], f" and domains of rms {domains:.2f} px" if domains else "",
                 n_wide, self.radius, n_trusted, n_blind, int((self.weights < 0.5).sum()))

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What a resumed run needs to continue the passes (and a pending trial) exactly."""
        self._follow()
        if self.passes == 0:
            return {} if self.trial is None else {
                "positions_trial": {"epoch": self.trial[0], "moves": self.trial[1]}}
        return {"positions_pass": {"passes": self.passes, "every": self.every,
                                   "next_pass": self.next_pass, "prior_px": self.prior_px,
                                   "matrix": self.affine.matrix, "offset": self.affine.offset},
                "frame_weights": self.weights}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (and the frame weights it set in the problem)."""
        s = state.get("positions_pass")
        self._follow()
        t = state.get("positions_trial")
        if t:
            self.trial = (int(t["epoch"]), np.asarray(t["moves"], float))
        if not s or self.recorded is None:
            return
        self.passes, self.every = int(s["passes"]), int(s["every"])
        self.next_pass, self.prior_px = int(s["next_pass"]), float(s["prior_px"])
        self.affine = Affine(np.asarray(s["matrix"], float), np.asarray(s["offset"], float),
                             self.recorded.mean(axis=0))
        self.fitted = self.affine
        self.weights = np.asarray(state["frame_weights"], float)
        self.problem.set_frame_weights(self.weights)


def _agreement(first: np.ndarray, second: np.ndarray) -> float:
    """Share of the frames moving over :data:`TRIAL_MOVE_PX` in both trials (moves ``(k, 2)``,
    NaN where unseen) whose two moves are within 60 degrees of each other (0 for none)."""
    a, b = np.hypot(*first.T), np.hypot(*second.T)
    both = (a > TRIAL_MOVE_PX) & (b > TRIAL_MOVE_PX)          # NaN compares False
    if not both.any():
        return 0.0
    cos = (first[both] * second[both]).sum(axis=1) / (a[both] * b[both])
    return float((cos > 0.5).mean())
