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
from ...backend import Backend, to_host
from ...errors import ConfigError
from ..setup import schedule
from ..setup import stepsize
from .. import config as cfgmod
from . import positions
from .optimizers import make_optimizer
from ..problem import Problem

log = logging.getLogger(__name__)


def choose_schedule(config, dataset, problem: Problem, available_bytes: int,
                    backend: Backend) -> schedule.Schedule:
    """Resolve ``optimizer.kind = auto`` and unset minibatch sizes, writing them into ``config``."""
    o, r = config.optimizer, config.run
    sched = schedule.choose_schedule(o.kind, r.batch_angles, r.batch_spots, dataset,
                                     problem.model.splits_spots, problem.object_shape,
                                     available_bytes, dtype=np.dtype(backend.complex_dtype).name,
                                     blind_probe=_blind_probe(config, dataset, problem))
    if (o.kind, r.batch_angles, r.batch_spots) != (sched.kind, sched.batch_angles, sched.batch_spots):
        log.info("optimizer.kind = %s, run.batch_angles = %d, run.batch_spots = %d (%s)",
                 sched.kind, sched.batch_angles, sched.batch_spots, sched.reason)
    o.kind, r.batch_angles, r.batch_spots = sched.kind, sched.batch_angles, sched.batch_spots
    return sched


def _probe_is_guess(config, dataset, problem: Problem) -> bool:
    """Whether the model's probe starts from a guess: neither the file nor init.probe_path gives it."""
    return "probe" in problem.params and dataset.probe is None and not config.init.probe_path


def _blind_probe(config, dataset, problem: Problem) -> bool:
    """Whether the probe is refined from a guess."""
    return bool(config.refine.probe) and _probe_is_guess(config, dataset, problem)


def resolve_probe_refinement(config, dataset, problem: Problem) -> None:
    """``refine.probe`` unset: refine a scanned probe that starts from a guess, written into
    ``config``. A weak object barely changes the frames, so a probe guessed from their mean is
    wrong by more than the object's own signal: fixed, it leaves a correlation with the truth of
    0.6 on a 1 nm SiO2 cone (tests/test_adorym_stranger.py); a holography illumination stays
    flat unless asked for."""
    if config.refine.probe is not None:
        return
    on = problem.model.splits_spots and _probe_is_guess(config, dataset, problem)
    cfgmod.set_value(config, "refine.probe", bool(on))
    if on:
        log.info("refine.probe = true (no probe in the data file or init.probe_path: it starts "
                 "from %s and is refined)", "the data" if config.init.probe in ("auto", "data")
                 else "a guess")


class Solver:
    """Steps of one run (see the module docstring). ``lock`` guards ``problem.params`` against
    concurrent snapshots; ``distributed`` is the MPI helper or None."""

    def __init__(self, config, dataset, problem: Problem, projections, schedule, lock,
                 distributed=None):
        self.config, self.dataset, self.problem = config, dataset, problem
        self.projections, self.schedule, self.lock = projections, schedule, lock
        self.distributed = distributed
        o = config.optimizer
        # the probe rate is relative to the initial probe's peak amplitude: fixed once, so that
        # rates handed over again later (a rollback, a change, a resumed run) mean the same step
        self._probe_ref = self._probe_peak()
        self.optimizer = make_optimizer(o.kind, self.learning_rates(), momentum=o.momentum,
                                        betas=(o.beta1, o.beta2), history=o.lbfgs_history,
                                        boost=o.lr_boost or 1.0)
        self.n_evaluations = 0        # loss + gradient evaluations of this process (steps)
        self._last_eval = None        # (names, point, (loss, terms, grads)) for L-BFGS's reuse
        if o.kind == "lbfgs":
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

    def _store_lr(self, name: str, lr_optimizer_units: float) -> None:
        """Write a measured rate into the configuration (in its units) and the optimiser."""
        value = lr_optimizer_units / self._probe_ref if name == "probe" else lr_optimizer_units
        cfgmod.set_value(self.config, f"optimizer.lr_{name}", float(value))
        self.optimizer.set_lr(name, lr_optimizer_units)

    def resolve_learning_rates(self, names: list[str]) -> bool:
        """Measure the unset learning rates of ``names`` (curvature along the gradient, see
        :mod:`.stepsize`) on a few frames; log them and write them into the configuration.
        Returns whether any rate was measured."""
        lrs = self.config.optimizer.lrs()
        missing = [n for n in names if lrs.get(n, 0) is None]
        self._resolve_boost(names, missing)
        if not missing:
            return False
        prob = self.problem
        a_idx, s_idx = schedule.estimation_batch(self.dataset, prob.model.splits_spots, self.schedule)
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
        kind = self.config.optimizer.kind
        rates = stepsize.learning_rates(scales, kind, sizes)
        floors = {} if kind == "lbfgs" else self._rate_floors(missing)
        for n, floor in floors.items():
            if rates[n] < floor:
                rates[n] = self._floored_rate(n, floor, rates[n], grads[n], f0, loss_only)
        for n in missing:
            self._store_lr(n, rates[n])
            log.info("optimizer.lr_%s = %.3g (measured: optimal steepest-descent step changes an "
                     "element by up to %.3g and lowers the loss by %.0f %%)", n,
                     cfgmod.get_value(self.config, f"optimizer.lr_{n}"), scales[n].max_change,
                     100 * scales[n].decrease)
        return True

    def _resolve_boost(self, names: list[str], missing: list[str]) -> None:
        """Unset ``optimizer.lr_boost`` (Adam only), decided when the object's refinement starts:
        :func:`stepsize.adam_boost` of whether every refined object unknown starts flat and has its
        rate measured, and whether the run refines an experimental parameter; written into the
        configuration and the optimiser."""
        o = self.config.optimizer
        obj = [n for n in names if n in ("delta", "beta", "object")]
        if o.lr_boost is not None or o.kind != "adam" or not obj:
            return
        xp = self.problem.backend.xp
        with self.lock:
            flat = all(float(to_host(xp.abs(p - p.ravel()[0]).max())) == 0
                       for p in (self.problem.params[n] for n in obj))
        refines = any(getattr(self.config.refine, n) for n in ("probe", "positions", "distances")
                      if n in self.problem.params)
        boost = stepsize.adam_boost(flat, all(n in missing for n in obj), refines)
        cfgmod.set_value(self.config, "optimizer.lr_boost", boost)
        self.optimizer.boost = boost
        if boost != 1:
            log.info("optimizer.lr_boost = %g (the object starts without structure: its measured "
                     "rates start %g times higher and decay to them over ~%d updates)", boost,
                     boost, self.optimizer.boost_updates)

    def _floored_rate(self, n: str, floor: float, measured: float, g, f0: float,
                      loss_only) -> float:
        """``floor`` instead of a smaller measured rate -- for Adam only as far as its first step
        does not raise the loss (:func:`stepsize.safe_adam_floor`), unless the probe starts from a
        guess: that one is wrong in what the mean pattern cannot show (its Fourier phase: a shift,
        a defocus), which only the object's signal reveals later, and it must keep moving (the
        engine's blind 24^3 SiO2 cone at 1 nm, 30 epochs: the full floor 0.93, the safe one
        0.81)."""
        rate = floor
        guessed = n == "probe" and _probe_is_guess(self.config, self.dataset, self.problem)
        if self.config.optimizer.kind == "adam" and not guessed:
            with self.lock:
                rate = stepsize.safe_adam_floor(lambda v: loss_only({n: v}), self.problem.params[n],
                                                g, f0, floor, measured, self.optimizer.eps)
        if rate > measured:
            log.info("optimizer.lr_%s: the measured rate %.3g is below %.3g (the parameter starts "
                     "near its optimum, where the measured step would freeze it); using that",
                     n, measured, rate)
        else:
            log.info("optimizer.lr_%s: keeping the measured rate %.3g (Adam's first step at a "
                     "thousandth of the parameter itself, %.3g, and at smaller fractions down to "
                     "the measured one raise the loss: the data's signal is far smaller)",
                     n, measured, floor)
        return max(rate, measured)

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
        ds, run = self.dataset, self.config.run
        rng = np.random.default_rng(run.shuffle_seed + 7919 * epoch)
        angles = rng.permutation(ds.n_angles)
        ba = run.batch_angles or ds.n_angles
        out = []
        for i in range(0, ds.n_angles, ba):
            a = np.sort(angles[i:i + ba])
            if not self.problem.model.splits_spots:
                out.append((a, np.arange(ds.n_spots)))
                continue
            spots = rng.permutation(ds.n_spots)
            bs = run.batch_spots or ds.n_spots
            for j in range(0, ds.n_spots, bs):
                out.append((a, np.sort(spots[j:j + bs])))
        if self.config.optimizer.kind == "lbfgs" and len(out) > 1:
            raise ConfigError("optimizer.kind = 'lbfgs' needs full batches: set run.batch_angles = 0 and "
                              "run.batch_spots = 0, or choose adam")
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
        lbfgs = self.config.optimizer.kind == "lbfgs"
        accepted = {}

        def closure(trial):  # L-BFGS's line search re-evaluates on the same minibatch
            val, t_terms, g = evaluate(trial)
            accepted.update(point=trial, value=(val, t_terms, g))
            return val, g

        with self.lock:
            old_pos = prob.params["positions"].copy() if "positions" in names else None
            new = self.optimizer.step(unknowns, grads, loss=loss, closure=closure if lbfgs else None)
            prob.params.update(new)
            self.projections.apply(prob.params, old_pos)
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
        weight = len(a_idx) * len(s_idx)
        measured = prob.measured_batch(a_idx, s_idx) if weight else None
        vg = value_and_grad(lambda u: prob.loss({**prob.params, **u}, a_idx, s_idx, measured),
                            has_aux=True)

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
        self.optimizer.load_state_dict(state)
        o = self.config.optimizer
        if o.kind == "adam":  # the configuration's boost wins; unset, the checkpoint's is kept
            if o.lr_boost is not None:
                self.optimizer.boost = float(o.lr_boost)
            elif "boost" in state.get("hyper", {}):
                cfgmod.set_value(self.config, "optimizer.lr_boost", float(self.optimizer.boost))
        for name, lr in state.get("lrs", {}).items():
            if self.config.optimizer.lrs().get(name, 0) is None and lr > 0:
                self._store_lr(name, float(lr))

    def reset(self) -> None:
        """Forget the optimiser's memory (moments, curvature pairs) and any reusable evaluation."""
        self.optimizer.reset()
        self._last_eval = None

    def memory(self):
        """A copy of the optimiser's memory to go back to (Adam's moments, momentum; None for
        L-BFGS, whose curvature pairs a rate cut discards anyway), on the device."""
        if self.config.optimizer.kind == "lbfgs":
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
