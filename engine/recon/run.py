"""The reconstruction run: the object the command line and the GUI drive, and its loop.

:class:`Reconstruction` ties the pieces together: its :class:`~.plan.RunPlan` (the user's
configuration and every choice the run makes), the set-up (:func:`.setup.prepare.prepare_run`:
problem, held-out data, schedule, starting guess), :mod:`.loop.solver` (one optimiser step),
:mod:`.loop.projections` (constraints), :mod:`.loop.validation` (validation loss, best state,
early stop), :mod:`.loop.weight_search` (the regularisation weight by trial fits),
:mod:`.loop.checkpoint` (files). ``run()`` blocks (the GUI calls it on a worker thread);
``pause()``, ``resume()``, ``stop()``, ``apply_changes()`` and ``snapshot()`` are thread-safe and
take effect within one minibatch. Checkpoints and results are written atomically; resuming is
explicit (``resume=path``).

The loop, for extension: :meth:`Reconstruction.loop` runs epochs; an epoch
(:meth:`~Reconstruction._run_epoch`) is, per minibatch, ``_before_step`` (pause, stop) ->
``_step`` (learning rates of newly refined unknowns, :meth:`.Solver.step`) -> ``_after_step``
(divergence, bookkeeping, progress); then ``_end_epoch`` (validation, history, support update,
memory, progress, scheduled checkpoint). What a checkpoint holds:
:class:`.loop.checkpoint.Progress`, :meth:`.Solver.state_dict` and the run state (guard, support,
plan, validation).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..autodiff import no_grad
from ..backend import Backend, get_backend, to_host
from ..errors import ConfigError, DivergenceError, SlicewiseError
from ..io.arrays import resolve_path
from ..io.datafile import Dataset
from ..io.readers import open_dataset
from . import config as cfgmod
from .events import ProgressEvent, Snapshot
from .loop.checkpoint import (Progress, continued_choices, read_state, write_tiffs)
from .loop.distributed import Distributed
from .loop.divergence import DivergenceGuard, check_batch
from .loop.noise_stop import NoiseResolutionStop
from .loop.output import (check_output_dir, check_output_space, output_lock, prepare_output_dir,
                          run_file_bytes, run_inputs, write_run_config)
from .loop.projections import Projections
from .loop.positions import PositionCorrection
from .loop.solver import Solver
from .loop.validation import ValidationWatch, Validator
from .loop.weight_search import RunFits, WeightSearch
from .plan import Choice, RunPlan
from .problem import Problem, host_copy
from .run_products import RunProducts
from .setup.data_field import data_statements, field_choices, restated_dataset
from .setup.memory import used_memory_bytes
from .setup.prepare import prepare_run

log = logging.getLogger(__name__)

STATES = ("ready", "running", "paused", "finished", "stopped", "failed")


class Reconstruction(RunFits, RunProducts):
    """One reconstruction: configuration + data -> refined object (and probe, positions, distances).

    ``base_dir``: folder that relative paths in the configuration (data file, output folder, masks)
    are relative to -- the configuration file's folder; default the current directory.
    """

    def __init__(self, config: cfgmod.ReconConfig, dataset: Dataset | None = None, *,
                 backend: Backend | None = None, resume: str | Path | None = None,
                 base_dir: str | Path | None = None, distributed="auto"):
        # the user's configuration stays as written; the run uses the plan's (see plan.py)
        self.plan = RunPlan(config)
        self.config = self.plan.config
        # MPI data parallelism when launched by mpiexec with several ranks (see distributed.py)
        self.distributed = Distributed.from_environment() if distributed == "auto" else distributed
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()
        run = self.config.run
        self.output_dir = resolve_path(run.output_dir, self.base_dir)
        check_output_dir(self.output_dir, overwrite=run.overwrite, resume=resume,
                         inputs=run_inputs(self.config, self.base_dir))
        if self.distributed is not None and backend is None and run.backend != "numpy":
            self.distributed.select_gpu()  # before anything touches a GPU
        self.backend = backend or get_backend(run.backend, run.precision)
        self.dataset = dataset = self._open_data(dataset, resume)
        prepared = prepare_run(self.plan, dataset, self.backend, self.base_dir, self.distributed,
                               resume=bool(resume))
        self.problem: Problem = prepared.problem
        self.memory_estimate_bytes = prepared.memory_estimate_bytes
        self.noise, self.expected_misfit = prepared.noise, prepared.expected_misfit
        self.result_path = self.output_dir / "result.h5"
        self.checkpoint_path = self.output_dir / "checkpoint.h5"
        self.progress = Progress()
        self.state = "ready"
        self._callbacks: list[Callable[[ProgressEvent], None]] = []
        self._lock = threading.RLock()
        self._resume_evt = threading.Event()
        self._resume_evt.set()
        self._stop = False
        self._agreed_stop = False
        self.projections = Projections(self.config, self.problem, self.base_dir)
        self.positions = PositionCorrection(self.plan, self.problem)
        self.holdout = prepared.holdout
        self.every_pixel_start = prepared.every_pixel_start
        self.solver = Solver(self.plan, dataset, self.problem, self.projections, prepared.schedule,
                             self._lock, self.distributed, holdout=self.holdout)
        self._guard = DivergenceGuard(self.solver)
        self.watch = ValidationWatch(self.holdout, Validator(self.holdout, self.problem,
                                                             self.distributed, self.noise.model),
                                     self.config.run.early_stop, self.config.run.watch_from_epoch)
        self._partial = None  # position within an unfinished epoch (see _run_epoch)
        #: a fit without held-out data may stop once its progress is below the noise
        #: (:mod:`.loop.noise_stop`; the weight search sets it for its final fit on every pixel)
        self.noise_stop = None
        # the regularisation weight chosen by trial fits (weight_search.py), before the loop
        self._search = WeightSearch(self) if prepared.search_weight and not resume else None
        if resume:
            self._restore(Path(resume))
        if self.distributed is not None:  # every rank starts from rank 0's state
            self.problem.params.update(self.distributed.broadcast_params(self.problem.params))
        self.solver.resolve_learning_rates(self.solver.refined(self.epoch), self._when())
        self._check = check_batch(dataset.n_angles, dataset.n_spots, self.problem.model.splits_spots)

    def _open_data(self, dataset: Dataset | None, resume) -> Dataset:
        """The data set as the configuration states it (near/far field: the user's statements
        win over a reader's guess; ``auto`` becomes a choice); for a resumed run, what the fit is
        (weight, held-out data) as the run it continues chose."""
        if dataset is None:
            if not self.config.data.path:
                raise ConfigError("data.path is not set: give the measured data file (HDF5)")
            dataset = open_dataset(resolve_path(self.config.data.path, self.base_dir),
                                   allow_external=self.config.data.allow_external_links,
                                   statements=data_statements(self.config))
        dataset = restated_dataset(self.config, dataset, self.base_dir)
        for choice in field_choices(self.config, dataset):
            self.plan.adopt(choice)
        if resume:
            for path, value in continued_choices(
                    Path(resume), self.config.data.allow_external_links).items():
                if cfgmod.get_value(self.plan.requested, path) is None:
                    self.plan.adopt(Choice(path, value, "as chosen by the run this one continues"))
        return dataset

    def _restore(self, path: Path) -> None:
        """Continue from a checkpoint: unknowns, progress, optimiser and run state."""
        self.progress, opt_state, run_state = read_state(path, self.problem)
        self.plan.load_state_dict(run_state.get("plan", {}))
        # the guard first: its rate cuts apply to the configured rates the optimiser restores
        self._guard.load_state_dict(run_state.get("guard", {}))
        self.solver.load_state_dict(opt_state)
        self.projections.load_state_dict(run_state)
        self.positions.load_state_dict(run_state)
        self.problem.load_state_dict(run_state)
        be = self.problem.backend
        self.watch.load_state_dict(run_state.get("validation", {}), lambda k, v: be.asarray(
            v, dtype=self.problem.params[k].dtype))
        self._partial = run_state.get("partial") or None
        if run_state.get("noise_stop"):   # a final fit that stops below the noise continues to
            self.noise_stop = NoiseResolutionStop.from_state(run_state["noise_stop"])

    def _when(self) -> str:
        """When a choice is made, for the plan: before the first epoch or during one."""
        return "setup" if self.epoch == 0 and not self.batch_losses else f"epoch {self.epoch + 1}"

    # ---- public control (thread-safe) --------------------------------------------------------
    def add_callback(self, fn: Callable[[ProgressEvent], None]) -> None:
        self._callbacks.append(fn)

    def pause(self) -> None:
        if self.state == "running":
            self._resume_evt.clear()

    def resume(self) -> None:
        self._resume_evt.set()

    def stop(self) -> None:
        self._stop = True
        self._resume_evt.set()

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` was called (the run stops after the current minibatch)."""
        return self._stop

    def apply_changes(self, changes: dict) -> None:
        """Change fields marked ``safe_while_paused`` (learning rates, weights, epochs...); they
        take effect from the next optimiser step."""
        infos = {f.path: f for f in cfgmod.iter_fields(self.config)}
        for path in changes:
            info = infos.get(path)
            if info is None:
                raise ConfigError(f"{path}: no such configuration field")
            if not info.safe_while_paused:
                raise ConfigError(f"{path} cannot change during a run; stop and start again")
        with self._lock:
            self.plan.apply_user_changes(changes)
            self.solver.update_learning_rates()

    @property
    def n_epochs(self) -> int:
        return self.config.run.epochs

    # progress, as attributes (the GUI and the CLI read them)
    @property
    def epoch(self) -> int:
        return self.progress.epoch

    @property
    def history(self) -> list:
        return self.progress.history

    @property
    def batch_losses(self) -> list:
        return self.progress.batch_losses

    @property
    def peak_memory_bytes(self) -> int:
        return self.progress.peak_memory_bytes

    @property
    def optimizer(self):
        return self.solver.optimizer

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> Path:
        """Run the remaining epochs; returns the result file. Raises :class:`SlicewiseError` kinds.
        The output folder is locked while the run writes into it (:func:`.output.output_lock`)."""
        with contextlib.ExitStack() as held:
            try:
                if self._writes_files:
                    prepare_output_dir(self.output_dir)
                    check_output_space(self.output_dir, run_file_bytes(self.problem.params,
                                                                       self.config),
                                       2 + bool(self.config.run.save_tiff))
                held.enter_context(output_lock(self.output_dir, enabled=self._writes_files))
            except SlicewiseError:  # the GUI reads the state
                self._set_state("failed")
                raise
            return self._run_locked()

    def _run_locked(self) -> Path:
        self._save_config()
        self._set_state("running")
        self._t_start = time.perf_counter()
        if not math.isfinite(self._guard.best):  # the starting estimate is the first reference
            self._guard.epoch_diverged(self._check_loss(self.problem.params))
        self._epoch_times: list[float] = []
        self._consistent, steps_before = True, len(self.batch_losses)
        try:
            if self._search is not None:
                self._search.run()
                self._search = None
                self._bind_to_plan()
                self._save_config()
            self.loop()
        except KeyboardInterrupt:
            self._stop = True
            if not self._consistent or self.solver.in_update:  # half-way through an update
                self._set_state("stopped")
                log.warning("interrupted within an update: the last checkpoint is kept")
                raise
            log.warning("interrupted: writing a checkpoint")
        except Exception as exc:
            self._set_state("failed")
            if len(self.batch_losses) > steps_before:  # progress that a checkpoint can keep
                self._checkpoint_after_failure(exc)
            if isinstance(exc, MemoryError):
                raise SlicewiseError(f"out of memory ({exc}); reduce run.batch_spots / "
                                     "run.batch_angles or enable model.checkpoint_slices") from None
            raise
        try:
            self._finish()
        except SlicewiseError:  # e.g. a full disk: the run failed, the previous files are intact
            self._set_state("failed")
            raise
        return self.result_path

    def loop(self) -> None:
        """Epochs until ``run.epochs``, an early stop on the validation loss, or a stop request."""
        while self.epoch < self.n_epochs and not self.stopped_early and not self._stop_agreed():
            record = self._run_epoch()
            if record is None:
                break  # stopped within the epoch: a partial epoch is not an epoch
            self._end_epoch(record)

    def _run_epoch(self) -> dict | None:
        """One pass over the minibatches; its record for the history, or None when stopped. An
        epoch that diverges is rolled back and repeated with smaller steps (see :mod:`.divergence`).

        ``self._partial`` follows the position within the epoch (next minibatch, loss sums, time)
        so that a run stopped mid-epoch checkpoints it and a resumed run continues from that
        minibatch, as if it had not stopped."""
        resumed = self._partial  # kept until a minibatch moves the position on
        while True:
            t0 = time.perf_counter()
            good = {k: v.copy() for k, v in self.problem.params.items()}  # the last good estimate
            moments = self.solver.memory()  # and the optimiser's memory of it
            batches = self.solver.batches(self.epoch)
            start = int(resumed["batch"]) if resumed else 0
            sums: dict[str, float] = dict(resumed["sums"]) if resumed else {}
            t_before = float(resumed["time_s"]) if resumed else 0.0
            resumed = None
            diverged = None
            for b, (a_idx, s_idx) in enumerate(batches):
                if b < start:
                    continue  # done before the run was interrupted
                if not self._before_step():
                    return None
                loss, terms = self._step(a_idx, s_idx)
                if self._guard.batch_diverged(loss):
                    diverged = f"loss {loss:.4g} at epoch {self.epoch + 1}, batch {b + 1}"
                    break
                self._after_step(b, len(batches), loss, terms)
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                self._partial = {"batch": b + 1, "sums": dict(sums),
                                 "time_s": t_before + time.perf_counter() - t0}
                self._consistent = True
            if self._agreed_stop and diverged is None:
                return None
            self._partial = None
            self._consistent = False  # until _end_epoch: the epoch is done but not recorded
            nb = max(len(batches), 1)
            record = {"epoch": self.epoch + 1, "loss": sum(sums.values()) / nb,
                      "terms": {k: v / nb for k, v in sums.items()},
                      "time_s": t_before + time.perf_counter() - t0, "n_batches": nb}
            if diverged is None:
                check = self._check_loss(self.problem.params)
                if not self._guard.epoch_diverged(check):
                    if self._guard.stalled():
                        with self._lock:
                            self._guard.cut_for_stall(self.solver.refined(self.epoch),
                                                      f"epoch {self.epoch + 1}")
                        self._save_config()
                    return record
                diverged = (f"loss {check:.4g} at the end of epoch {self.epoch + 1} against the best "
                            f"{self._guard.best:.4g} on the same frames")
            self._roll_back(good, diverged, moments)

    def _check_loss(self, params: dict) -> float:
        """Loss of ``params`` on the check batch (no gradient)."""
        a_idx, s_idx = self._check
        with no_grad():
            total, _ = self.problem.loss(params, a_idx, s_idx, self.problem.measured_batch(a_idx, s_idx))
        return float(to_host(total))

    def _roll_back(self, good: dict, where: str, memory=None) -> None:
        """Back to ``good`` with smaller steps; on too many rollbacks the checkpoint gets the last
        good estimate and the run stops with a :class:`DivergenceError`."""
        names = self.solver.refined(self.epoch)
        prob = self.problem

        def partial_loss(trial):
            return self._check_loss({**good, **trial})

        try:
            with self._lock:
                self._guard.roll_back(prob.params, good, names, where, str(self.checkpoint_path),
                                      partial_loss, memory, f"epoch {self.epoch + 1}")
        except DivergenceError:
            self._write(self.checkpoint_path, "checkpoint")
            raise
        self._save_config()

    def _before_step(self) -> bool:
        """Wait while paused; False when the run is to stop (all MPI ranks agree: one stopping
        alone would hang the others)."""
        if not self._resume_evt.is_set():
            self._set_state("paused")
            self._resume_evt.wait()
            if not self._stop:
                self._set_state("running")
        return not self._stop_agreed()

    def _stop_agreed(self) -> bool:
        """Whether to stop now. Under MPI every stop decision uses the value all ranks agreed on:
        a signal reaching one rank between two agreements must not send it down another path."""
        stop = self._stop
        if self.distributed is not None:
            stop = self.distributed.any(stop)
            self._stop = self._stop or stop
        self._agreed_stop = stop
        return stop

    def automatic_choices(self) -> dict:
        """Fields the run has set itself (the plan's choices: measured learning rates, the
        optimiser and minibatches chosen by ``auto``, rates cut after a divergence): dotted path
        -> value in use."""
        return self.plan.chosen()

    def _save_config(self) -> None:
        """Write the configuration in use (so rerunning ``config.toml`` repeats this run), with
        the plan's reasons as its header, and tell observers what the run chose (the GUI's form
        shows it)."""
        if self._writes_files:
            write_run_config(self.output_dir, self.config, self.plan.toml_header())
        self._emit(ProgressEvent("config", self.epoch, self.n_epochs, changes=self.plan.chosen(),
                                 reasons=self.plan.reasons()))

    def _step(self, a_idx, s_idx) -> tuple[float, dict]:
        names = self.solver.refined(self.epoch)
        # a parameter whose refinement starts now may need its learning rate measured
        if self.solver.resolve_learning_rates(names, self._when()):
            self._save_config()
        return self.solver.step(a_idx, s_idx, names)

    def _after_step(self, b: int, n_batches: int, loss: float, terms: dict) -> None:
        self.batch_losses.append(loss)
        self._emit(ProgressEvent("batch", self.epoch + 1, self.n_epochs, b + 1, n_batches, loss, terms,
                                 time.perf_counter() - self._t_start, self._eta(b, n_batches)))

    def _end_epoch(self, record: dict) -> None:
        nb = record.pop("n_batches")
        self.progress.epoch += 1
        self._validate(record)
        self._watch_progress(record)
        self.history.append(record)
        self._epoch_times.append(record["time_s"])
        with self._lock:
            self.projections.after_epoch(self.epoch, self.problem.params)
            chose = self.positions.after_epoch(self.epoch)
        self._consistent = True
        if chose:
            self._save_config()
        self.progress.peak_memory_bytes = max(self.peak_memory_bytes, used_memory_bytes(self.backend))
        self._emit(ProgressEvent("epoch", self.epoch, self.n_epochs, nb, nb, record["loss"],
                                 record["terms"], time.perf_counter() - self._t_start,
                                 self._eta(nb, nb),
                                 validation=record.get("validation", float("nan"))))
        every = self.config.run.checkpoint_every
        # a trial fit of the weight search is not the run's (yet); the unpenalised first fit is
        searching = self._search is not None and self.solver.plan is not self.plan
        if every and self.epoch % every == 0 and self.epoch < self.n_epochs and not searching:
            self._write(self.checkpoint_path, "checkpoint")
            self._emit(ProgressEvent("checkpoint", self.epoch, self.n_epochs, state=self.state,
                                     message=str(self.checkpoint_path)))

    # ---- validation -----------------------------------------------------------------------
    def _validate(self, record: dict) -> None:
        """The validation loss of the epoch's estimate into ``record``, the best estimate kept,
        and whether to stop early (:class:`.loop.validation.ValidationWatch`)."""
        if not self.watch.active:
            return
        with self._lock:
            value, why = self.watch.after_epoch(self.epoch, self.problem.params,
                                                lambda p: {k: host_copy(v) for k, v in p.items()},
                                                record["terms"].get("data", record["loss"]))
        record["validation"] = value
        record["noise_ratio"] = self.watch.last_noise_ratio
        record["validation_floor"] = self.watch.validator.floor
        if why:
            log.log(logging.INFO if self._search is not None else logging.WARNING,
                    "stopping early after epoch %d of %d: %s", self.epoch, self.n_epochs, why)

    def _watch_progress(self, record: dict) -> None:
        """Without held-out data, whether the epoch's progress is below the noise's resolution
        (:attr:`noise_stop`, when set)."""
        if self.noise_stop is None or self.watch.active:
            return
        why = self.noise_stop.after_epoch(record["loss"], self.watch.validator.expected_misfit)
        if self.distributed is not None and self.distributed.any(bool(why)) and not why:
            # every rank stops together (one stopping alone would hang the others)
            why = self.noise_stop.reason = "another MPI rank's noise stop"
            self.noise_stop.stopped = True
        if why:
            log.info("stopping early after epoch %d of %d: %s", self.epoch, self.n_epochs, why)
            # the epochs it ran go into config.toml (a rerun repeats this fit)
            self.solver.plan.adopt(Choice("run.epochs", int(self.epoch),
                                          f"the final fit stopped here: {why}"))

    @property
    def stopped_early(self) -> bool:
        """Whether the run ended before ``run.epochs`` because the validation loss stopped
        improving or (:attr:`noise_stop`) the fit's progress fell below the noise."""
        return self.watch.stopped or bool(self.noise_stop is not None and self.noise_stop.stopped)

    @property
    def early_stop_reason(self) -> str:
        """Why the run stopped early, for the user ("" when it did not)."""
        if self.watch.stopped:
            return f"the validation loss stopped improving (best at epoch {self.best.epoch})"
        if self.noise_stop is not None and self.noise_stop.stopped:
            return self.noise_stop.reason
        return ""

    @property
    def best(self):
        """The best validation state (:class:`.loop.validation.BestState`)."""
        return self.watch.best

    def _finish(self) -> None:
        """Final checkpoint; the result (the estimate of the best validation loss when the run
        keeps it) and TIFF stacks; the final state."""
        self._write(self.checkpoint_path, "checkpoint")
        self._report_noise_level()
        best = self.watch.result_params(self.epoch)
        if best is not None:
            with self._lock:
                for k, v in best.items():
                    self.problem.params[k] = self.problem.backend.asarray(
                        v, dtype=self.problem.params[k].dtype)
            log.info("result: the estimate of epoch %d, the best validation loss (%.4g), not "
                     "the last (epoch %d)", self.best.epoch, self.best.loss, self.epoch)
        self._result_epoch = self.best.epoch if best is not None else 0
        self._write(self.result_path, "result")
        if self.config.run.save_tiff and self._writes_files:
            write_tiffs(self.output_dir, self.problem)
        self._set_state("stopped" if self._stop and self.epoch < self.n_epochs else "finished")

    # ---- helpers -----------------------------------------------------------------------------
    def _emit(self, event: ProgressEvent) -> None:
        if not self._writes_files:  # rank 0 reports for all MPI ranks
            return
        event.state = self.state
        for fn in list(self._callbacks):
            try:
                fn(event)
            except Exception:  # a broken observer must not kill the solver
                log.exception("progress callback failed")

    def _set_state(self, state: str) -> None:
        self.state = state
        self._emit(ProgressEvent("state", self.epoch, self.n_epochs, state=state))

    def _eta(self, batch: int, n_batches: int) -> float:
        times = getattr(self, "_epoch_times", [])
        if not times:
            return float("nan")
        per_epoch = float(np.mean(times[-5:]))
        remaining = self.n_epochs - self.epoch - (batch / max(n_batches, 1))
        return max(remaining, 0.0) * per_epoch


__all__ = ["Reconstruction", "ProgressEvent", "Snapshot"]
