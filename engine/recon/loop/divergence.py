"""Divergence handled, not only reported: roll back, cut the step, carry on -- or stop, naming why.

A run diverges when a minibatch loss is not finite (or 300x the first), or when the loss of the
estimate at the end of an epoch, on a fixed check batch, rises well above the best so far
(:data:`RISE`; a stochastic optimiser's epochs fluctuate by far less). The
:class:`DivergenceGuard` then

1. restores the estimate of the start of the epoch (the last state that passed the check; the
   epoch is repeated, so a checkpoint, written only after the check, never holds a diverged state),
2. restores the optimiser's memory of that estimate (Adam's moments at the start of the epoch:
   forgetting them made Adam's next step sign-like, every element moved by the full rate, which
   near convergence diverged again -- 3-4 rollbacks in a row on the sweep's noise-free stars, now
   one) or, for L-BFGS, forgets the curvature pairs (a rate cut discards them anyway),
3. halves every refined learning rate and halves again the one whose update, applied alone to the
   good estimate, raises the loss most (the likely culprit); the new rates are written
   into the configuration, so the saved ``config.toml`` says what was actually used,
4. after :data:`MAX_ROLLBACKS` rollbacks with no new best estimate in between raises
   :class:`DivergenceError` naming the learning rate that was cut most. Rollbacks separated by
   progress do not add up: near convergence of noise-free data a fixed-rate Adam's check loss
   fluctuates by several times its value, and each such rollback halves the rates -- an annealing
   that must not end a long run (the sweep's SiO2 star, 484 positions: 3 rollbacks at epochs 20,
   29 and 121 of 150, loss down to 5e-10 of its start, each after a new best).

A rise that is not a divergence is handled too: a stochastic optimiser whose rate is too large
for where it now is wanders above its best estimate without ever tripling its loss (the cone
demo: the epoch loss rose from 4.2e-6 to 5.9e-6 over ten epochs of 25, until a rollback at
epoch 22). When the check loss has not beaten its best for :data:`STALL_EPOCHS` epochs and sits
:data:`STALL_RISE` above it, Adam's rates are halved, without a rollback (the estimate is
still good); the cut is logged and written into the configuration like a rollback's.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ...backend import to_host
from ...errors import DivergenceError
from ...io.datafile import spread_indices
from .. import config as cfgmod
from ..plan import Choice

log = logging.getLogger(__name__)

__all__ = ["DivergenceGuard", "check_batch", "RISE", "MAX_ROLLBACKS", "STALL_EPOCHS", "STALL_RISE"]

#: Frames of the check batch: one view (the middle angle), up to this many spots.
CHECK_SPOTS = 64

#: An epoch whose check-batch loss exceeds the best one's by this factor has diverged.
RISE = 3.0

#: A rise is judged only above this fraction of the starting estimate's check loss: below it the
#: fit has converged to the precision of single-precision sums (noise-free data reach 1e-9 of the
#: start, where round-off alone moves the loss by several times its value).
CONVERGED = 1e-6

#: Rollbacks allowed without a new best estimate in between before the run stops.
MAX_ROLLBACKS = 5

#: Epochs without a new best check loss, ending above ``STALL_RISE`` x the best, after which a
#: stochastic optimiser's rates are halved (a plateau above the best: the step is too large).
STALL_EPOCHS = 3
STALL_RISE = 1.25


class DivergenceGuard:
    """Decides, after each minibatch and each epoch, whether to roll back.

    The estimate at the end of an epoch is judged by its loss on a fixed small *check batch*
    (:func:`check_batch`), compared with the best such loss so far (the first is the starting
    estimate's): the step losses of an epoch are measured before each update, at different
    points and on different frames, so they cannot vouch for the final estimate, which is what a
    checkpoint stores. ``solver``: the run's :class:`~.solver.Solver`.
    """

    def __init__(self, solver):
        self.solver = solver
        self.best = math.inf
        self.start: float | None = None   # check loss of the starting estimate
        self.first: float | None = None
        self.rollbacks = 0
        self.streak = 0            # rollbacks since the best check loss last fell
        self.since_best = 0        # accepted epochs since the best check loss last fell
        self.last: float | None = None   # the last accepted check loss
        self.cuts: dict[str, int] = {}

    def state_dict(self) -> dict:
        """The guard's memory, for checkpoints: reference losses, rollbacks, rate cuts."""
        return {"best": float(self.best), "start": self.start, "first": self.first,
                "rollbacks": int(self.rollbacks), "streak": int(self.streak),
                "since_best": int(self.since_best), "last": self.last,
                "cuts": {k: int(v) for k, v in self.cuts.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` and apply its rate cuts to the configured learning rates
        (each cut halves; the checkpointed run had applied the same), so a resumed run steps as
        the interrupted one would have."""
        if not state:
            return
        self.best = float(state.get("best", math.inf))
        self.start = state.get("start")
        self.first = state.get("first")
        self.rollbacks = int(state.get("rollbacks", 0))
        self.streak = int(state.get("streak", self.rollbacks))
        self.since_best = int(state.get("since_best", 0))
        self.last = state.get("last")
        self.cuts = {k: int(v) for k, v in state.get("cuts", {}).items()}
        cfg = self.solver.config
        for n, cuts in self.cuts.items():
            lr = cfgmod.get_value(cfg, f"optimizer.lr_{n}")
            if lr:
                self.solver.plan.adopt(Choice(
                    f"optimizer.lr_{n}", lr * 0.5 ** cuts, f"the configured {lr:.4g} halved "
                    f"{cuts} time(s), as by the divergence guard of the run this one continues"))
        self.solver.update_learning_rates()

    @staticmethod
    def _above(loss: float, ref: float, factor: float) -> bool:
        # written for losses of either sign (a Poisson likelihood need not be positive)
        return math.isfinite(ref) and loss - ref > (factor - 1) * abs(ref)

    def batch_diverged(self, loss: float) -> bool:
        """A minibatch loss that is not finite, or 300x the run's first: no point finishing the
        epoch."""
        if self.first is None and math.isfinite(loss):
            self.first = loss
        ref = self.first if self.first is not None else math.inf
        return not math.isfinite(loss) or self._above(loss, ref, 100 * RISE)

    def epoch_diverged(self, check_loss: float) -> bool:
        """Whether the estimate with this check-batch loss has diverged; if not, it is accepted."""
        if not math.isfinite(check_loss):
            return True
        floor = CONVERGED * abs(self.start) if self.start is not None else 0.0
        if self._above(check_loss, self.best, RISE) and check_loss - self.best > floor:
            return True
        if self.start is None:
            self.start = check_loss
        if check_loss < self.best:
            self.streak = self.since_best = 0
        else:
            self.since_best += 1
        self.best = min(self.best, check_loss)
        self.last = check_loss
        return False

    def stalled(self) -> bool:
        """Whether the accepted estimates have wandered above the best for long enough that the
        step should be cut (:data:`STALL_EPOCHS`, :data:`STALL_RISE`); only a stochastic
        optimiser's (L-BFGS searches its step along each direction)."""
        if not self.solver.optimizer.per_element_steps or self.last is None:
            return False
        floor = CONVERGED * abs(self.start) if self.start is not None else 0.0
        return self.since_best >= STALL_EPOCHS and \
            self._above(self.last, self.best, STALL_RISE) and self.last - self.best > floor

    def cut_for_stall(self, names: list[str], when: str) -> None:
        """Halve the rates of ``names`` (no rollback: the estimate is still accepted)."""
        why = (f"the loss stayed above its best for {STALL_EPOCHS} epochs (now {self.last:.4g} "
               f"against {self.best:.4g} on the same frames)")
        self._cut(names, None, why, when)
        self.since_best = 0
        log.warning("%s: learning rates of %s halved", why, ", ".join(names))

    def _cut(self, names: list[str], culprit: str | None, why: str, when: str) -> None:
        """Halve the rates of ``names`` (quarter the ``culprit``'s), counted in :attr:`cuts` and
        adopted into the run's plan with ``why``."""
        cfg = self.solver.config
        for n in names:
            factor = 0.25 if n == culprit else 0.5
            self.cuts[n] = self.cuts.get(n, 0) + (2 if n == culprit else 1)
            lr = cfgmod.get_value(cfg, f"optimizer.lr_{n}")
            if lr:
                self.solver.plan.adopt(Choice(
                    f"optimizer.lr_{n}", lr * factor,
                    f"{'quartered' if factor == 0.25 else 'halved'} from {lr:.4g}: {why}", when),
                    quiet=True)
        self.solver.update_learning_rates()

    def roll_back(self, params: dict, good: dict, names: list[str], where: str,
                  checkpoint_hint: str, partial_loss=None, memory=None, when: str = "") -> None:
        """Restore ``good`` into ``params`` and the optimiser's ``memory`` of that estimate
        (``Solver.memory``; None: forget it), cut the rates of ``names``; raise after too many.
        ``partial_loss(trial) -> float``: the loss with ``trial`` overriding the good estimate
        (used to find the parameter whose update alone hurts most). ``when``: "epoch N", for
        the plan."""
        culprit = self._culprit(params, good, names, partial_loss)
        params.update({k: v.copy() for k, v in good.items()})
        self.solver.restore(memory)
        self.rollbacks += 1
        self.streak += 1
        self.since_best = 0
        self._cut(names, culprit, f"the loss diverged ({where})", when)
        cfg = self.solver.config
        worst = max(self.cuts, key=self.cuts.get) if self.cuts else (names[0] if names else "delta")
        if self.streak > MAX_ROLLBACKS:
            raise DivergenceError(
                f"the loss diverged again ({where}) after {MAX_ROLLBACKS} rollbacks that cut the "
                f"learning rates; optimizer.lr_{worst} was cut most (now "
                f"{cfgmod.get_value(cfg, f'optimizer.lr_{worst}')!r}). The last good estimate is in "
                f"{checkpoint_hint}: lower optimizer.lr_{worst} (or unset it to have it measured) "
                "and resume from it")
        log.warning("the loss diverged (%s): back to the start of the epoch, learning rates halved "
                    "(optimizer.lr_%s, which moved most, quartered); rollback %d of %d in a row "
                    "(%d in the run)", where, culprit, self.streak, MAX_ROLLBACKS, self.rollbacks)

    def _culprit(self, params: dict, good: dict, names: list[str], partial_loss) -> str:
        """The parameter whose failed-epoch update, applied alone to the good estimate, raises the
        loss most (a non-finite parameter first)."""
        worst, score = (names[0] if names else "delta"), -math.inf
        xp = self.solver.problem.backend.xp
        for n in names:
            if not bool(to_host(xp.isfinite(params[n]).all())):
                return n
            if partial_loss is None or len(names) == 1:
                continue
            val = float(partial_loss({n: params[n]}))
            s = math.inf if not math.isfinite(val) else val
            if s > score:
                worst, score = n, s
        return worst


def check_batch(n_angles: int, n_spots: int, splits_spots: bool) -> tuple[np.ndarray, np.ndarray]:
    """The fixed frames on which the end-of-epoch estimate is judged: the middle angle and up to
    :data:`CHECK_SPOTS` evenly spread spots (all for models that cannot split them)."""
    a = np.array([n_angles // 2])
    if not splits_spots:
        return a, np.arange(n_spots)
    return a, spread_indices(n_spots, CHECK_SPOTS)
