"""One optimiser step of a run, and the solver state a checkpoint must hold.

:class:`Solver` owns the optimiser and knows, for a minibatch: which unknowns are refined (by
epoch), their learning rates (configured, or measured from the loss the first time a parameter is
refined, :mod:`.stepsize`), the loss and its gradient (averaged over MPI ranks), the update, and
the projections after it (:class:`~.projections.Projections`). The loop (:mod:`.run`) calls
:meth:`Solver.step` once per minibatch; the solver's state is :meth:`Solver.state_dict`.

L-BFGS works on full batches, so consecutive steps see the same data: the evaluation at the point
a step accepted is the first evaluation of the next step, unless a projection moved the point.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ...autodiff import no_grad, value_and_grad
from ...backend import to_host
from ...errors import ConfigError
from ..plan import Choice, RunPlan
from ..problem import Problem
from ..setup import stepsize
from ..setup.schedule import estimation_batch
from . import positions
from .optimizers import make_optimizer
from .validation import Holdout, watches_fit

log = logging.getLogger(__name__)


class Solver:
    """Steps of one run (see the module docstring). ``plan``: the run's :class:`RunPlan`, whose
    configuration the solver reads and into which it adopts the rates it measures; ``lock``
    guards ``problem.params`` against concurrent snapshots; ``distributed`` is the MPI helper or
    None."""

    def __init__(self, plan: RunPlan, dataset, problem: Problem, projections, schedule, lock,
                 distributed=None, holdout: Holdout | None = None):
        self.plan, self.config = plan, plan.config
        self.dataset, self.problem = dataset, problem
        self.projections, self.schedule, self.lock = projections, schedule, lock
        self.distributed = distributed
        # the frames left out of the fit (the validation loss's), or None: every frame is fitted
        self.holdout = holdout if holdout is not None and holdout.active else None
        o = self.config.optimizer
        # the probe rate is relative to the initial probe's peak amplitude: fixed once, so that
        # rates handed over again later (a rollback, a change, a resumed run) mean the same step
        self._probe_ref = self._probe_peak()
        self.optimizer = make_optimizer(o.kind, self.learning_rates(), momentum=o.momentum,
                                        betas=(o.beta1, o.beta2), history=o.lbfgs_history,
                                        boost=o.lr_boost or 1.0)
        self.n_evaluations = 0        # loss + gradient evaluations of this process (steps)
        self._last_eval = None        # (names, point, (loss, terms, grads)) for L-BFGS's reuse
        self.in_update = False        # within the optimiser's update of the unknowns (step)
        if self.optimizer.full_batch:
            self.batches(0)  # refuses minibatches now, before anything is written

    # ---- what is refined, how fast -----------------------------------------------------------
    def refined(self, epoch: int) -> list[str]:
        """Names of the unknowns updated during ``epoch`` (0-based)."""
        p, r = self.problem.params, self.config.refine
        names = [n for n in ("delta", "beta", "object") if n in p]
        if r.probe and "probe" in p and epoch >= r.probe_start_epoch:
            names.append("probe")
        if r.positions and "positions" in p and epoch >= r.positions_start_epoch \
                and not positions.searches(self.config, self.problem):
            names.append("positions")
        if r.distances and "distances" in p and epoch >= r.distances_start_epoch:
            names.append("distances")
        return names

    def learning_rates(self) -> dict:
        """Rates in the optimiser's units; an unset (not yet measured) rate is 0 for now."""
        lrs = {k: (0.0 if v is None else v) for k, v in self.config.optimizer.lrs().items()}
        if lrs["probe"]:  # probe rate is relative to the probe's peak amplitude
            lrs["probe"] = lrs["probe"] * self._probe_ref
        return lrs

    def update_learning_rates(self) -> None:
        """Hand the configuration's rates to the optimiser (after a change during the run)."""
        for name, lr in self.learning_rates().items():
            self.optimizer.set_lr(name, lr)

    def _probe_peak(self) -> float:
        probe = self.problem.params.get("probe")
        return float(to_host(abs(probe).max())) if probe is not None else 1.0

    def _store_lr(self, name: str, lr_optimizer_units: float, reason: str, when: str) -> None:
        """Adopt a rate chosen by the run (in the configuration's units) and hand it to the
        optimiser."""
        value = lr_optimizer_units / self._probe_ref if name == "probe" else lr_optimizer_units
        self.plan.adopt(Choice(f"optimizer.lr_{name}", float(value), reason, when))
        self.optimizer.set_lr(name, lr_optimizer_units)

    def resolve_learning_rates(self, names: list[str], when: str = "setup") -> bool:
        """Measure the unset learning rates of ``names`` (curvature along the gradient, see
        :mod:`.stepsize`) on a few frames and adopt them into the plan (``when``: "setup" or
        "epoch N"). Returns whether any rate was measured."""
        lrs = self.config.optimizer.lrs()
        missing = [n for n in names if lrs.get(n, 0) is None]
        self._resolve_boost(names, missing, when)
        if not missing:
            return False
        prob = self.problem
        a_idx, s_idx = estimation_batch(self.dataset, prob.model.splits_spots, self.schedule,
                                        angles=prob.fit_angles)
        measured = prob.measured_batch(a_idx, s_idx)

        def evaluate(trial):
            (val, _), g = value_and_grad(lambda u: prob.loss({**prob.params, **u}, a_idx, s_idx, measured),
                                         has_aux=True)(trial)
            return float(to_host(val)), g

        def loss_only(trial):
            with no_grad():
                return float(to_host(prob.loss({**prob.params, **trial}, a_idx, s_idx, measured)[0]))

        with self.lock:
            scales, f0, grads = stepsize.estimate_scales(evaluate, prob.params, missing, loss_only)
        xp = prob.backend.xp
        sizes = {n: float(to_host(xp.abs(prob.params[n]).max())) for n in missing
                 if n in ("delta", "beta")}  # the object's present scale (a starting guess's)
        watched = watches_fit(self.holdout, self.config, prob.params)
        rates = stepsize.learning_rates(scales, self.optimizer.kind, sizes, watched)
        floors = {} if self.optimizer.scales_own_steps else self._rate_floors(missing)
        reasons = {n: (f"measured: the optimal steepest-descent step changes an element by up to "
                       f"{scales[n].max_change:.3g} and lowers the loss by "
                       f"{100 * scales[n].decrease:.0f} %") for n in missing}
        if watched and self.optimizer.per_element_steps:
            for n in set(missing) & {"delta", "beta", "object"}:
                reasons[n] += (f"; {stepsize.ADAM_WATCHED_FACTOR:g}x Adam's usual share of it: the "
                               "validation loss watches the fit")
        for n, floor in floors.items():
            if rates[n] < floor:
                rates[n], reasons[n] = self._floored_rate(n, floor, rates[n], grads[n], f0,
                                                          loss_only)
        for n in missing:
            self._store_lr(n, rates[n], reasons[n], when)
        return True

    def _resolve_boost(self, names: list[str], missing: list[str], when: str) -> None:
        """Unset ``optimizer.lr_boost`` (Adam only), decided when the object's refinement starts:
        :func:`stepsize.adam_boost` of whether every refined object unknown starts flat and has its
        rate measured, and whether the run refines an experimental parameter; written into the
        configuration and the optimiser."""
        o = self.config.optimizer
        obj = [n for n in names if n in ("delta", "beta", "object")]
        if o.lr_boost is not None or not self.optimizer.per_element_steps or not obj:
            return
        xp = self.problem.backend.xp
        with self.lock:
            flat = all(float(to_host(xp.abs(p - p.ravel()[0]).max())) == 0
                       for p in (self.problem.params[n] for n in obj))
        refines = any(getattr(self.config.refine, n) for n in ("probe", "positions", "distances")
                      if n in self.problem.params)
        boost = stepsize.adam_boost(flat, all(n in missing for n in obj), refines)
        why = (f"the object starts without structure: its measured rates start {boost:g} times "
               f"higher and decay to them over ~{self.optimizer.boost_updates} updates"
               if boost != 1 else "constant rates: " + (
                   "the object starts from a guess with structure" if not flat else
                   "its rates were set by hand" if not all(n in missing for n in obj) else
                   "probe, positions or distances are refined too"))
        self.plan.adopt(Choice("optimizer.lr_boost", boost, why, when))
        self.optimizer.boost = boost

    def _floored_rate(self, n: str, floor: float, measured: float, g, f0: float,
                      loss_only) -> tuple[float, str]:
        """The rate and its reason: ``floor`` instead of a smaller measured rate -- for Adam only as far as its first step
        does not raise the loss (:func:`stepsize.safe_adam_floor`), unless the probe starts from a
        guess: that one is wrong in what the mean pattern cannot show (its Fourier phase: a shift,
        a defocus), which only the object's signal reveals later, and it must keep moving (the
        engine's blind 24^3 SiO2 cone at 1 nm, 30 epochs: the full floor 0.93, the safe one
        0.81)."""
        rate = floor
        guessed = n == "probe" and self.problem.probe_is_guess
        if self.optimizer.per_element_steps and not guessed:
            with self.lock:
                rate = stepsize.safe_adam_floor(lambda v: loss_only({n: v}), self.problem.params[n],
                                                g, f0, floor, measured, self.optimizer.eps)
        if rate > measured:
            return rate, (f"the measured rate {measured:.3g} is raised to a floor: the parameter "
                          "starts near its optimum, where the measured step would freeze it")
        return measured, (f"measured; kept below the floor {floor:.3g}: Adam's first step at a "
                          "thousandth of the parameter itself, and at smaller fractions down to "
                          "the measured one, raise the loss (the data's signal is far smaller)")

    def _rate_floors(self, names: list[str]) -> dict:
        """Smallest automatic rates of the experimental parameters, relative to their own size
        (:data:`stepsize.REFINE_FLOOR`): a probe or distance read from the file starts near its
        optimum, where the measured curvature step -- the distance to that optimum -- is ~0 and
        would freeze it under Adam or momentum (L-BFGS's measured step is its preconditioner,
        and its own curvature pairs scale it up)."""
        p, out = self.problem.params, {}
        if "probe" in names:
            out["probe"] = stepsize.REFINE_FLOOR * self._probe_peak()
        if "distances" in names:
            out["distances"] = stepsize.REFINE_FLOOR * float(to_host(abs(p["distances"]).mean()))
        return out

    # ---- minibatches -------------------------------------------------------------------------
    def batches(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Minibatches of (angle indices, spot indices), shuffled per epoch with the seed."""
        ds, run, held = self.dataset, self.config.run, self.holdout
        rng = np.random.default_rng(run.shuffle_seed + 7919 * epoch)
        # only angles and spots with frames in the fit (all of them without a holdout)
        train_a = np.arange(ds.n_angles) if held is None else held.train_angles
        train_s = np.arange(ds.n_spots) if held is None else held.train_spots
        angles = rng.permutation(train_a)
        ba = run.batch_angles or len(train_a)
        out = []
        for i in range(0, len(angles), ba):
            a = np.sort(angles[i:i + ba])
            if not self.problem.model.splits_spots:
                out.append((a, train_s))
                continue
            spots = rng.permutation(train_s)
            bs = run.batch_spots or len(train_s)
            for j in range(0, len(spots), bs):
                out.append((a, np.sort(spots[j:j + bs])))
        if self.optimizer.full_batch and len(out) > 1:
            raise ConfigError(f"optimizer.kind = {self.optimizer.kind!r} needs full batches: set "
                              "run.batch_angles = 0 and run.batch_spots = 0, or choose adam")
        return out

    # ---- one step ----------------------------------------------------------------------------
    def step(self, a_idx, s_idx, names: list[str]) -> tuple[float, dict]:
        """Update the unknowns ``names`` on one minibatch; returns the loss and its terms at the
        point *before* the update (a non-finite loss leaves the unknowns untouched)."""
        prob = self.problem
        evaluate = self._evaluator(a_idx, s_idx)
        with self.lock:
            unknowns = {n: prob.params[n] for n in names}
        reused = self._reusable(names, unknowns)
        loss, terms, grads = reused if reused is not None else evaluate(unknowns)
        self._last_eval = None
        if not math.isfinite(loss):
            return loss, {}
        lbfgs = self.optimizer.full_batch
        accepted = {}

        def closure(trial):  # L-BFGS's line search re-evaluates on the same minibatch
            val, t_terms, g = evaluate(trial)
            accepted.update(point=trial, value=(val, t_terms, g))
            return val, g

        with self.lock:
            old_pos = prob.params["positions"].copy() if "positions" in names else None
            self.in_update = True  # a failure from here on leaves a half-updated state
            new = self.optimizer.step(unknowns, grads, loss=loss, closure=closure if lbfgs else None)
            prob.params.update(new)
            self.projections.apply(prob.params, old_pos)
            self.in_update = False
            xp = prob.backend.xp
            if lbfgs and accepted and all(xp.array_equal(prob.params[n], accepted["point"][n])
                                          for n in names):
                # the last trial was the accepted point and no projection moved it
                self._last_eval = (tuple(names), {n: prob.params[n] for n in names},
                                   accepted["value"])
        return loss, terms

    def _reusable(self, names, unknowns):
        last = self._last_eval
        if last is None or last[0] != tuple(names):
            return None
        if any(unknowns[n] is not last[1][n] for n in names):
            return None  # the unknowns were replaced (resume, rollback, a change during the run)
        return last[2]

    def _evaluator(self, a_idx, s_idx):
        """``evaluate(unknowns) -> (loss, terms, grads)`` on this minibatch (this rank's share
        of it under MPI, averaged over the ranks)."""
        prob, dist = self.problem, self.distributed
        if dist is not None:
            a_idx, s_idx = dist.share(a_idx, s_idx, prob.model.splits_spots)
        frames = None if self.holdout is None else self.holdout.frame_weights(a_idx, s_idx)
        weight = len(a_idx) * len(s_idx) if frames is None else float(frames.sum())
        measured = prob.measured_batch(a_idx, s_idx) if weight else None
        vg = value_and_grad(lambda u: prob.loss({**prob.params, **u}, a_idx, s_idx, measured,
                                                frames), has_aux=True)

        def evaluate(trial):
            self.n_evaluations += 1
            if weight:
                (val, terms), g = vg(trial)
                terms = {k: float(to_host(v)) for k, v in terms.items()}
            else:  # this rank has no frames in this minibatch
                val, terms = 0.0, {}
                g = {n: prob.backend.xp.zeros_like(v) for n, v in trial.items()}
            if dist is not None:
                val, terms, g = dist.combine(val, terms, g, weight)
            return float(val), terms, g

        return evaluate

    # ---- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What a checkpoint keeps of the solver: the optimiser's state (moments, L-BFGS pairs,
        learning rates)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; rates measured by the earlier run are kept."""
        if not state:
            return
        kind = state.get("kind")
        if kind != self.config.optimizer.kind:
            raise ConfigError(f"--resume: the checkpoint continues optimizer.kind = {kind!r} but this "
                              f"configuration sets {self.config.optimizer.kind!r}; set optimizer.kind = "
                              f"{kind!r}, or start a new run from it with init.object_path")
        # the measured rates first: setting a rate resets L-BFGS's curvature pairs, which the
        # optimiser's state restores next (tests/test_resume_exact.py)
        for name, lr in state.get("lrs", {}).items():
            if self.config.optimizer.lrs().get(name, 0) is None and lr > 0:
                self._store_lr(name, float(lr), "as in the checkpoint (measured by the run it "
                               "continues)", "setup")
        self.optimizer.load_state_dict(state)
        o = self.config.optimizer
        if self.optimizer.per_element_steps:  # the configuration's boost wins, else the checkpoint's
            if o.lr_boost is not None:
                self.optimizer.boost = float(o.lr_boost)
            elif "boost" in state.get("hyper", {}):
                self.plan.adopt(Choice("optimizer.lr_boost", float(self.optimizer.boost),
                                       "the checkpoint's"))

    def reset(self) -> None:
        """Forget the optimiser's memory (moments, curvature pairs) and any reusable evaluation."""
        self.optimizer.reset()
        self._last_eval = None

    def memory(self):
        """A copy of the optimiser's memory to go back to (Adam's moments, momentum; None for
        L-BFGS, whose curvature pairs a rate cut discards anyway), on the device."""
        if self.optimizer.full_batch:
            return None
        return _copy_tree(self.optimizer.state)

    def restore(self, memory) -> None:
        """Back to :meth:`memory` (None: forget everything, :meth:`reset`)."""
        if memory is None:
            self.reset()
            return
        self.optimizer.state = _copy_tree(memory)
        self._last_eval = None


def _copy_tree(obj):
    if isinstance(obj, dict):
        return {k: _copy_tree(v) for k, v in obj.items()}
    return obj.copy() if hasattr(obj, "copy") and hasattr(obj, "shape") else obj
