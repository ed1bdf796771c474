"""The regularisation weight chosen by the data: trial fits ranked by their validation loss.

With ``regularization.tv_weight`` unset and data held out (:mod:`.validation`), the run first fits
without a penalty. If that fit's validation loss keeps improving to the end, nothing is fitting
noise and the weight stays 0 (noise-free or bright data: no cost). If it stops improving -- the
fit has turned to the noise -- fits at relative TV weights from :data:`LADDER` follow, each a run
of its own from the same start with the same rules (measured rates, early stopping on the
validation loss), visited from :data:`FIRST` towards the lower validation loss; the weight whose
fit reached the lowest validation loss wins. That fit is then repeated from the start on every
measurement, held-out ones included, from the rates the winner started from, for the epochs at
which its validation loss was least or, under a penalty, no worse in earnest (:data:`TIE_EXCESS`)
(item 5 of issue 20: the held-out tenth of the data is worth having; not for Poisson fits,
:data:`VALIDATED_LOSS`), or where pixels were held out, for the requested epochs unless its
progress falls below the noise's first (:mod:`.noise_stop`); the refit's last estimate is the
result. A scan of fewer than :data:`.validation.SMALL_SCAN_FRAMES` frames is refitted on every
frame whatever the search found.

Every fit is the loop a run with its settings would go through, so the saved ``config.toml``
(which states the weight, the rates, ``run.validation_share = 0`` and the refit's epochs) reruns
the final fit exactly. The evidence for the rule (a grid of weights against the truth on the
noise sweep: 0.90-1.00 of the best weight's correlation in 16 of 19 cases) is in
benchmarks/README.md, "Counting noise".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from .. import config as cfgmod
from ..events import ProgressEvent
from ..plan import Choice, RunPlan
from .checkpoint import Progress
from .divergence import DivergenceGuard
from .noise_stop import NoiseResolutionStop
from .projections import Projections
from .solver import Solver
from .validation import NOISE_GATE, ValidationWatch, choose_holdout, small_scan

log = logging.getLogger(__name__)

__all__ = ["Fit", "LADDER", "FIRST", "next_weight", "RunFits", "WeightSearch"]

#: Relative TV weights tried (a weight of 0.1 starts the penalty at a tenth of the data loss).
LADDER = (0.01, 0.03, 0.1, 0.3, 1.0)
#: The first weight tried after the unpenalised fit.
FIRST = 0.1
#: The optimiser settings a fit starts from (see :attr:`Fit.start_rates`).
RATE_PATHS = tuple(f"optimizer.lr_{n}" for n in ("delta", "beta", "object", "probe", "positions",
                                                  "distances", "boost"))
#: Frames and angles are refitted with every measurement (for the winner's best epochs) only where
#: the fit minimises the loss the validation measures: a Poisson fit's validation (amplitude)
#: minimum falls early on sparse counts (a far-field scan at 1e4 photons: epoch 1), and a refit
#: that stops there lost 0.43 -> 0.36 where the winner's selected state is kept.
VALIDATED_LOSS = "amplitude"
#: A penalised fit's later epochs count as no worse than its best one while their validation loss
#: exceeds the best by less than this share of the best's own excess over the noise floor (the
#: held-out data's expected misfit at the noise level). Under a penalty the held-out misfit is
#: mostly the penalty's bias, and it drifts by a few % while the estimate still improves (weak
#: holotomography at weight 1: least at epoch 2, within 11 % of it to epoch 8, correlation 0.52 ->
#: 0.56); a fit turning to the noise leaves the band within an epoch or two (unpenalised: +10 %
#: per epoch).
TIE_EXCESS = 0.15


@dataclass
class Fit:
    """One trajectory of the run's loop: the weight, its plan (configuration and choices), the
    solver, divergence guard, validation watch, projections, progress, the position within an
    epoch, the unknowns and the regularisation scale (:meth:`..problem.Problem.state_dict`)."""

    weight: float
    plan: object
    solver: object
    guard: object
    watch: object
    projections: object
    progress: object
    partial: dict | None
    params: dict
    penalty: dict
    #: the optimiser's rates when the fit started (path -> value): a refit starts from them, not
    #: from the rates its cuts after a divergence left
    start_rates: dict

    @staticmethod
    def rates(config) -> dict:
        """The optimiser's rates in ``config`` (dotted path -> value)."""
        return {p: cfgmod.get_value(config, p) for p in RATE_PATHS}

    @property
    def validation(self) -> float:
        """The least validation loss the fit reached."""
        return self.watch.best.loss

    def refit_epochs(self) -> int:
        """The epochs a refit of this fit on every measurement takes: the best-validation epoch,
        or for a penalised fit the last epoch before its validation loss first leaves the band of
        :data:`TIE_EXCESS` of the best one's excess over the noise floor (see there)."""
        best = max(self.watch.best.epoch, 1)
        hist = self.progress.history
        if self.weight <= 0 or not 1 <= best <= len(hist):
            return best
        floor = float(hist[best - 1].get("validation_floor", float("nan")))
        excess = self.watch.best.loss - floor
        if not (math.isfinite(excess) and excess > 0):
            return best
        band = self.watch.best.loss + TIE_EXCESS * excess
        last = best
        while last < len(hist) and hist[last].get("validation", math.inf) <= band:
            last += 1
        return last

    def misfit_at_best(self) -> float:
        """The training data misfit of the best-validation epoch over the one expected at the
        noise level (NaN when unknown)."""
        e = self.watch.best.epoch
        if not 1 <= e <= len(self.progress.history):
            return float("nan")
        return float(self.progress.history[e - 1].get("noise_ratio", float("nan")))


def next_weight(tried: dict) -> float | None:
    """The next weight of :data:`LADDER` to try, given ``tried`` (weight -> least validation
    loss), or None when the best is bracketed: start at :data:`FIRST`, then step towards the
    lower validation loss until it rises again or the ladder ends."""
    ladder = [w for w in LADDER]
    if FIRST not in tried:
        return FIRST
    best = min((w for w in tried if w > 0), key=lambda w: tried[w])
    i = ladder.index(best)
    for j in (i - 1, i + 1):
        if 0 <= j < len(ladder) and ladder[j] not in tried:
            return ladder[j]
    return None


class WeightSearch:
    """Runs the trials on a :class:`~..run.Reconstruction` (``run``), which provides
    ``current_fit(weight)``, ``fresh_fit(weight, start)``, ``use_fit(fit)``, ``loop()`` (its
    epochs until they end, stop early or a stop is requested), ``stop_requested`` and
    ``announce(message)``; see :meth:`run`."""

    def __init__(self, run):
        self.run_obj = run
        self.tried: dict[float, Fit] = {}

    def run(self) -> None:
        """The unpenalised fit, then trials while the validation loss asks for them; leaves the
        winner's fit in place and adopts the weight (with every trial's validation loss in the
        reason) into the run's plan."""
        r = self.run_obj
        start = r.start_state()
        first = r.current_fit(0.0)
        r.announce("choosing the regularisation weight: fit without a penalty")
        r.loop()
        self.tried[0.0] = first
        if r.stop_requested or not first.watch.stopped:
            why = ("without a penalty the validation loss kept improving to the end (nothing was "
                   "fitting noise)" if not r.stop_requested else
                   "stopped during the weight search: the best fit so far")
            if r.holdout.unit == "pixels" and not r.stop_requested:
                self._refit_all_data(first, self._every_pixel(start), why, epochs=None)
            elif self._small_scan() and not r.stop_requested:
                # nothing was fitting noise: the final fit is the run a scan without held-out
                # frames would make, rates measured for it (not the watched fit's 2x Adam share:
                # a blind probe from 81 frames recovered to 0.87 with those, 0.90 with these)
                self._refit_all_data(first, start, why, epochs=None, measure_rates=True)
            else:
                self._adopt(first, why)
            return
        # penalised fits stay further from the noise than the unpenalised one did: their
        # validation loss counts from the epoch the unpenalised fit's did (and so does a rerun's)
        r.plan.adopt(Choice("run.watch_from_epoch", int(first.watch.first_counted),
                            "the unpenalised fit's data misfit came within "
                            f"{NOISE_GATE:g}x of the noise level at this epoch"))
        weight = next_weight({w: f.validation for w, f in self.tried.items()})
        while weight is not None and not r.stop_requested:
            r.announce(f"choosing the regularisation weight: trial at tv_weight = {weight:g}")
            fit = r.fresh_fit(weight, start)
            r.use_fit(fit)
            r.loop()
            self.tried[weight] = fit
            weight = next_weight({w: f.validation for w, f in self.tried.items()})
        best = min(self.tried.values(), key=lambda f: (f.validation, f.weight))
        if best is not self.tried.get(weight):
            r.use_fit(best)
        losses = ", ".join(f"{w:g}: {f.validation:.4g} at epoch {f.watch.best.epoch}, misfit "
                           f"{f.misfit_at_best():.2f}x the noise"
                           + ("" if f.watch.stopped else ", still falling")
                           for w, f in sorted(self.tried.items()))
        why = (f"the lowest validation loss of fits at relative TV weights ({losses}); the "
               "unpenalised fit had turned to the noise" if not r.stop_requested else
               "stopped during the weight search: the best fit so far")
        if r.holdout.unit == "pixels" and not r.stop_requested:
            self._refit_all_data(best, self._every_pixel(start), why, epochs=None)
        elif r.stop_requested or (r.problem.loss_spec.name != VALIDATED_LOSS
                                  and not self._small_scan()):
            self._adopt(best, why)
        else:  # the held-out data's share of the fit is worth having too: refit on everything
            self._refit_all_data(best, start, why, epochs=best.refit_epochs())

    def _every_pixel(self, start: dict) -> dict:
        """``start`` with the object retrieved from every pixel (the start a rerun of the saved
        configuration builds), for the final fit after held-out pixels chose the weight: the
        trials start from a retrieval that never saw the held-out pixels."""
        final = self.run_obj.every_pixel_start
        if not final:
            return start
        return {**start, "params": {**start["params"], **final}}

    def _small_scan(self) -> bool:
        """Frames held out of a small scan (:func:`.validation.small_scan`): every frame shapes
        its fit, so the final fit uses them all whatever the search found."""
        r = self.run_obj
        return small_scan(r.holdout.unit, r.dataset.n_angles, r.dataset.n_spots)

    def _refit_all_data(self, best: Fit, start: dict, why: str, epochs: int | None,
                        measure_rates: bool = False) -> None:
        """The chosen weight fitted again from the start on every measurement, held-out ones
        included, with the rates and minibatches the winner started from (``measure_rates``: the
        rates the run chose measured again, as for a run without held-out data), for ``epochs``
        (None: the requested ones); that fit is the run's result and a rerun of ``config.toml``
        repeats it.

        Frames or angles: ``epochs`` is :meth:`Fit.refit_epochs` of the winner (the refit takes
        the steps the winner took, on a tenth more data: 2D ptychography 0.84 -> 0.87;
        benchmarks/README.md). One full-field view: the requested epochs (the held-out pixels'
        validation loss chooses the weight, but not the epochs: in four-distance holography it
        stopped improving while the correlation still rose, 0.51 after its 13 epochs against
        0.68 after the requested 50), from the start retrieved from every pixel where the trials'
        start was not (:meth:`_every_pixel`). With ``run.early_stop`` that fit stops once its
        progress is below the noise's (:mod:`.noise_stop`: at weak 1e4 it went on from 0.325 to
        0.10 by epoch 200), and the epochs it ran are adopted as ``run.epochs``."""
        r = self.run_obj
        self._adopt(best, why)   # the weight and the winner's choices; then the rates it started
        for path, value in best.start_rates.items():   # from, which the refit starts from too
            if measure_rates and path in r.plan.choices:
                cfgmod.set_value(r.plan.config, path, None)   # measured again by the refit
            elif value is not None and value != r.plan.value(path):
                r.plan.adopt(Choice(path, value, "the rate the chosen weight's fit started from"),
                             quiet=True)
        unit = {"pixels": "pixel", "angles": "angle"}.get(r.holdout.unit, "frame")
        r.plan.adopt(Choice("run.validation_share", 0.0, f"the final fit uses every {unit}; "
                            f"{100 * best.watch.holdout.share:g} % of them were held out to "
                            "choose the weight"))
        if epochs is not None:
            b = best.watch.best.epoch
            what = (f"the epoch of the least validation loss of the fit with tv_weight = "
                    f"{best.weight:g}" if epochs == b else
                    f"the last epoch of the fit with tv_weight = {best.weight:g} before its "
                    f"validation loss rose by {100 * TIE_EXCESS:g} % of the least one's (epoch "
                    f"{b}) excess over the noise floor")
            r.plan.adopt(Choice("run.epochs", int(epochs), f"{what}, refitted on every {unit}"))
        r.announce(f"regularisation weight {best.weight:g} chosen; fitting every {unit} with it"
                   + ("" if epochs is None else f" for {epochs} epoch(s)"))
        # not on a level estimated from the frames, an upper bound: it cut clean data short
        # (noise-free four-distance holography 0.98 after 200 epochs, 0.92 stopped at epoch 31)
        watch_noise = (unit == "pixel" and epochs is None and r.plan.config.run.early_stop
                       and r.noise.known)
        fit = r.fresh_fit(best.weight, start, all_data=True)
        r.noise_stop = NoiseResolutionStop(r.problem.n_measurements()) if watch_noise else None
        r.loop()
        self._adopt_choices(fit)   # with run.epochs where the noise stopped it (run.py)

    def _adopt(self, fit: Fit, why: str) -> None:
        """The winner's weight and its own choices (measured rates, cuts) into the run's plan."""
        self._adopt_choices(fit)
        self.run_obj.plan.adopt(Choice("regularization.tv_weight", float(fit.weight), why))
        if not math.isfinite(fit.validation):
            log.warning("the weight search saw no finite validation loss")

    def _adopt_choices(self, fit: Fit) -> None:
        """A fit's own choices (measured rates, cuts after a divergence) into the run's plan."""
        for choice in list(fit.plan.choices.values()):
            if choice.path != "regularization.tv_weight":
                self.run_obj.plan.adopt(choice, quiet=True)


class RunFits:
    """What a :class:`~..run.Reconstruction` offers :class:`WeightSearch`: its fit as a
    :class:`Fit`, fresh fits from a start, and switching between them (a mixin: it reads and sets
    the run's solver, guard, watch, projections, progress and the problem's unknowns)."""

    def start_state(self) -> dict:
        """Host-independent copies of what every trial fit starts from."""
        return {"params": {k: v.copy() for k, v in self.problem.params.items()},
                "penalty": self.problem.state_dict(), "projections": self.projections.state_dict()}

    def current_fit(self, weight: float) -> Fit:
        """The fit the run holds now, as a :class:`~.loop.weight_search.Fit`."""
        return Fit(weight, self.solver.plan, self.solver, self._guard, self.watch, self.projections,
                   self.progress, self._partial, self.problem.params, self.problem.state_dict(),
                   Fit.rates(self.solver.plan.config))

    def fresh_fit(self, weight: float, start: dict, all_data: bool = False) -> Fit:
        """A new fit from ``start`` with ``regularization.tv_weight = weight``: its own plan (a
        copy of the run's configuration), solver with the rates that configuration states or
        freshly measured ones, guard, watch, projections and progress -- what a run with that
        weight set starts with. ``all_data``: the held-out data are fitted too (no validation)."""
        config = self.plan.config.copy()
        cfgmod.set_value(config, "regularization.tv_weight", weight)
        if all_data:
            cfgmod.set_value(config, "run.validation_share", 0.0)
            self.problem.restore_held_out_pixels()
            self.problem.fit_angles = None
            self.holdout = choose_holdout(0.0, self.dataset.n_angles, self.dataset.n_spots,
                                          self.dataset.frame_shape, False, 0)
        plan = RunPlan(config, log_choices=False)
        params = {k: v.copy() for k, v in start["params"].items()}
        self.problem.params = params
        self.problem.config = plan.config
        self.problem.penalty_norm = None
        self.problem.load_state_dict(start["penalty"])
        projections = Projections(plan.config, self.problem, self.base_dir)
        projections.load_state_dict(start["projections"])
        solver = Solver(plan, self.dataset, self.problem, projections, self.solver.schedule,
                        self._lock, self.distributed, holdout=self.holdout)
        watch = ValidationWatch(self.holdout, self.watch.validator, plan.config.run.early_stop,
                                plan.config.run.watch_from_epoch)
        fit = Fit(weight, plan, solver, DivergenceGuard(solver), watch, projections, Progress(),
                  None, params, {}, {})
        self.use_fit(fit)
        solver.resolve_learning_rates(solver.refined(0), "setup")
        fit.start_rates = Fit.rates(plan.config)
        return fit

    def use_fit(self, fit: Fit) -> None:
        """Make ``fit`` the run's: the loop, snapshots and files follow it from now on."""
        with self._lock:
            self.solver, self._guard, self.watch = fit.solver, fit.guard, fit.watch
            self.projections, self.progress, self._partial = fit.projections, fit.progress, fit.partial
            self.problem.params = fit.params
            self.problem.config = fit.plan.config
        if not math.isfinite(self._guard.best):
            self._guard.epoch_diverged(self._check_loss(self.problem.params))

    def _bind_to_plan(self) -> None:
        """After the weight search: the winning fit reads and adopts into the run's own plan."""
        cfg = self.plan.config
        self.problem.config = self.projections.config = cfg
        self.solver.plan, self.solver.config = self.plan, cfg

    def announce(self, message: str) -> None:
        """A line for the log and the observers (the GUI's status, the progress bar)."""
        log.info("%s", message)
        self._emit(ProgressEvent("state", self.epoch, self.n_epochs, state=self.state,
                                 message=message))
