"""The reconstruction run: the object the command line and the GUI drive, and its loop.

:class:`Reconstruction` ties the pieces together: :mod:`.problem` (model, unknowns, loss),
:mod:`.solver` (one optimiser step, the optimiser state), :mod:`.projections` (constraints),
:mod:`.checkpoint` (files), :mod:`.memory`. ``run()`` blocks (the GUI calls it on a worker thread);
``pause()``, ``resume()``, ``stop()``, ``apply_changes()`` and ``snapshot()`` are thread-safe and
take effect within one minibatch. Checkpoints and results are written atomically; resuming is
explicit (``resume=path``).

The loop, for extension: :meth:`Reconstruction.run` runs epochs; an epoch
(:meth:`~Reconstruction._run_epoch`) is, per minibatch, ``_before_step`` (pause, stop) ->
``_step`` (learning rates of newly refined unknowns, :meth:`.Solver.step`) -> ``_after_step``
(divergence, bookkeeping, progress); then ``_end_epoch`` (history, support update, memory,
progress, scheduled checkpoint). What a checkpoint holds: :class:`.checkpoint.Progress` and
:meth:`.Solver.state_dict`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..autodiff import no_grad
from ..backend import Backend, get_backend, to_host
from ..errors import ConfigError, DivergenceError, SlicewiseError
from ..io.arrays import resolve_path
from ..io.datafile import Dataset
from ..io.readers import open_dataset
from ..io.results import write_tiff_stack
from . import config as cfgmod
from .setup.schedule import estimation_batch
from .setup import initial_guess
from .setup import probe_search
from .loop.divergence import DivergenceGuard, check_batch
from .loop.checkpoint import Progress, host_params, read_state, write_state
from .loop.distributed import Distributed
from .setup.memory import available_memory_bytes, check_memory, used_memory_bytes
from .problem import Problem, build_problem, host_copy
from .loop.projections import Projections
from .loop.positions import PositionCorrection
from .loop.solver import Solver, choose_schedule, resolve_probe_refinement
from .loop.output import check_output_dir, prepare_output_dir

log = logging.getLogger(__name__)

STATES = ("ready", "running", "paused", "finished", "stopped", "failed")


@dataclass
class ProgressEvent:
    """What a callback receives after each minibatch/epoch and on state changes."""

    kind: str                      # "batch" | "epoch" | "state" | "checkpoint" | "config"
    epoch: int
    n_epochs: int
    batch: int = 0
    n_batches: int = 0
    loss: float = float("nan")
    terms: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    eta_s: float = float("nan")
    state: str = "running"
    message: str = ""
    changes: dict = field(default_factory=dict)   # "config": dotted path -> value chosen by the run


@dataclass
class Snapshot:
    """Host copies of the current estimate, for live views (see docs/ARCHITECTURE.md)."""

    epoch: int
    delta: np.ndarray | None
    beta: np.ndarray | None
    object: np.ndarray | None
    probe: np.ndarray | None
    positions: np.ndarray | None
    initial_positions: np.ndarray | None
    distances: np.ndarray | None
    history: list
    batch_losses: list
    measured: np.ndarray | None
    modelled: np.ndarray | None
    pixel_size_m: float
    slice_thickness_m: float
    truth: dict


class Reconstruction:
    """One reconstruction: configuration + data -> refined object (and probe, positions, distances).

    ``base_dir``: folder that relative paths in the configuration (data file, output folder, masks)
    are relative to -- the configuration file's folder; default the current directory.
    """

    def __init__(self, config: cfgmod.ReconConfig, dataset: Dataset | None = None, *,
                 backend: Backend | None = None, resume: str | Path | None = None,
                 base_dir: str | Path | None = None, distributed="auto"):
        self.config = cfgmod.validate(config)
        self._requested = self.config.copy()  # what the user asked for, before automatic choices
        # MPI data parallelism when launched by mpiexec with several ranks (see distributed.py)
        self.distributed = Distributed.from_environment() if distributed == "auto" else distributed
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()
        run = self.config.run
        self.output_dir = resolve_path(run.output_dir, self.base_dir)
        check_output_dir(self.output_dir, overwrite=run.overwrite, resume=resume)
        if self.distributed is not None and backend is None and run.backend != "numpy":
            self.distributed.select_gpu()  # before anything touches a GPU
        self.backend = backend or get_backend(run.backend, run.precision)
        if dataset is None:
            if not self.config.data.path:
                raise ConfigError("data.path is not set: give the measured data file (HDF5)")
            dataset = open_dataset(resolve_path(self.config.data.path, self.base_dir),
                                   allow_external=self.config.data.allow_external_links)
        self.dataset = dataset
        self.problem: Problem = build_problem(self.config, dataset, self.backend, self.base_dir,
                                              self.distributed)
        resolve_probe_refinement(self.config, dataset, self.problem)
        schedule = choose_schedule(self.config, dataset, self.problem,
                                   available_memory_bytes(self.backend), self.backend)
        if not resume:  # a physics-based start instead of vacuum where the data prefer it
            initial_guess.apply_initial_guess(self.problem, *estimation_batch(
                dataset, self.problem.model.splits_spots, schedule))
            probe_search.run_probe_search(self.config, dataset, self.problem, schedule,
                                          self.base_dir, self.distributed)
        self.memory_estimate_bytes = check_memory(self.config, dataset, self.problem, self.backend)
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
        self.positions = PositionCorrection(self.config, self.problem)
        self.solver = Solver(self.config, dataset, self.problem, self.projections, schedule,
                             self._lock, self.distributed)
        self._guard = DivergenceGuard(self.solver)
        self._partial = None  # position within an unfinished epoch (see _run_epoch)
        if resume:
            self.progress, opt_state, run_state = read_state(Path(resume), self.problem)
            # the guard first: its rate cuts apply to the configured rates the optimiser restores
            self._guard.load_state_dict(run_state.get("guard", {}))
            self.solver.load_state_dict(opt_state)
            self.projections.load_state_dict(run_state)
            self.positions.load_state_dict(run_state)
            self.problem.load_state_dict(run_state)
            self._partial = run_state.get("partial") or None
        if self.distributed is not None:  # every rank starts from rank 0's state
            self.problem.params.update(self.distributed.broadcast_params(self.problem.params))
        self.solver.resolve_learning_rates(self.solver.refined(self.epoch))
        self._check = check_batch(dataset.n_angles, dataset.n_spots, self.problem.model.splits_spots)

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
            for path, value in changes.items():
                cfgmod.set_value(self.config, path, value)
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
        """Run the remaining epochs; returns the result file. Raises :class:`SlicewiseError` kinds."""
        if self._writes_files:
            prepare_output_dir(self.output_dir)
        self._save_config()
        self._set_state("running")
        self._t_start = time.perf_counter()
        if not math.isfinite(self._guard.best):  # the starting estimate is the first reference
            self._guard.epoch_diverged(self._check_loss(self.problem.params))
        self._epoch_times: list[float] = []
        try:
            while self.epoch < self.n_epochs and not self._stop_agreed():
                record = self._run_epoch()
                if record is None:
                    break  # stopped within the epoch: a partial epoch is not an epoch
                self._end_epoch(record)
        except KeyboardInterrupt:
            self._stop = True
            log.warning("interrupted: writing a checkpoint")
        except SlicewiseError:
            self._set_state("failed")
            raise
        except MemoryError as exc:
            self._set_state("failed")
            raise SlicewiseError(f"out of memory ({exc}); reduce run.batch_spots / run.batch_angles or "
                                 "enable model.checkpoint_slices") from None
        except Exception:
            self._set_state("failed")
            raise
        try:
            self._finish()
        except SlicewiseError:  # e.g. a full disk: the run failed, the previous files are intact
            self._set_state("failed")
            raise
        return self.result_path

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
            if self._agreed_stop and diverged is None:
                return None
            self._partial = None
            nb = max(len(batches), 1)
            record = {"epoch": self.epoch + 1, "loss": sum(sums.values()) / nb,
                      "terms": {k: v / nb for k, v in sums.items()},
                      "time_s": t_before + time.perf_counter() - t0, "n_batches": nb}
            if diverged is None:
                check = self._check_loss(self.problem.params)
                if not self._guard.epoch_diverged(check):
                    if self._guard.stalled():
                        with self._lock:
                            self._guard.cut_for_stall(self.solver.refined(self.epoch))
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
                                      partial_loss, memory)
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
        """Fields the run has set itself (measured learning rates, the optimiser and minibatches
        chosen by ``auto``, rates cut after a divergence): dotted path -> value in use."""
        req = {f.path: f.value for f in cfgmod.iter_fields(self._requested)}
        return {f.path: f.value for f in cfgmod.iter_fields(self.config) if req.get(f.path) != f.value}

    def _save_config(self) -> None:
        """Write the configuration in use (so rerunning ``config.toml`` repeats this run) and tell
        observers what the run chose (the GUI's form shows it)."""
        if self._writes_files:
            cfgmod.to_toml(self.config, self.output_dir / "config.toml")
        self._emit(ProgressEvent("config", self.epoch, self.n_epochs, changes=self.automatic_choices()))

    def _step(self, a_idx, s_idx) -> tuple[float, dict]:
        names = self.solver.refined(self.epoch)
        # a parameter whose refinement starts now may need its learning rate measured
        if self.solver.resolve_learning_rates(names):
            self._save_config()
        return self.solver.step(a_idx, s_idx, names)

    def _after_step(self, b: int, n_batches: int, loss: float, terms: dict) -> None:
        self.batch_losses.append(loss)
        self._emit(ProgressEvent("batch", self.epoch + 1, self.n_epochs, b + 1, n_batches, loss, terms,
                                 time.perf_counter() - self._t_start, self._eta(b, n_batches)))

    def _end_epoch(self, record: dict) -> None:
        nb = record.pop("n_batches")
        self.progress.epoch += 1
        self.history.append(record)
        self._epoch_times.append(record["time_s"])
        with self._lock:
            self.projections.after_epoch(self.epoch, self.problem.params)
            chose = self.positions.after_epoch(self.epoch)
        if chose:
            self._save_config()
        self.progress.peak_memory_bytes = max(self.peak_memory_bytes, used_memory_bytes(self.backend))
        self._emit(ProgressEvent("epoch", self.epoch, self.n_epochs, nb, nb, record["loss"],
                                 record["terms"], time.perf_counter() - self._t_start,
                                 self._eta(nb, nb)))
        every = self.config.run.checkpoint_every
        if every and self.epoch % every == 0 and self.epoch < self.n_epochs:
            self._write(self.checkpoint_path, "checkpoint")
            self._emit(ProgressEvent("checkpoint", self.epoch, self.n_epochs, state=self.state,
                                     message=str(self.checkpoint_path)))

    def _finish(self) -> None:
        """Final checkpoint, result and TIFF stacks; the final state."""
        self._write(self.checkpoint_path, "checkpoint")
        self._write(self.result_path, "result")
        if self.config.run.save_tiff and self._writes_files:
            self._write_tiffs()
        self._set_state("stopped" if self._stop and self.epoch < self.n_epochs else "finished")

    def _write_tiffs(self) -> None:
        """delta and beta, or the amplitude and phase of a complex object, as TIFF stacks."""
        p, pix = self.problem.params, self.problem.model.optics.pixel_size_m
        if "delta" in p:
            stacks = {name: to_host(p[name]) for name in ("delta", "beta")}
        else:
            obj = to_host(p["object"])
            stacks = {"object_amplitude": np.abs(obj), "object_phase": np.angle(obj)}
        for name, vol in stacks.items():
            write_tiff_stack(self.output_dir / f"{name}.tif", vol, pix)

    # ---- products ----------------------------------------------------------------------------
    def snapshot(self, frame: tuple[int, int] | None = (0, 0)) -> Snapshot:
        """Host copies of the estimate; with ``frame=(angle, spot)`` also measured vs modelled."""
        prob = self.problem
        with self._lock:
            p = {k: host_copy(v) for k, v in prob.params.items()}
            params_dev = dict(prob.params)
        measured = modelled = None
        if frame is not None:
            a, s = int(frame[0]), int(frame[1])
            with no_grad():
                model_i = to_host(prob.predict_intensity(params_dev, [a], [s]))[0, 0]
            meas = self.dataset.frames([a], [s])[0, 0]
            if prob.model.unshifted_frames:  # centred for display
                model_i, meas = np.fft.fftshift(model_i), np.fft.fftshift(meas)
            measured, modelled = meas, model_i
        return Snapshot(self.epoch, p.get("delta"), p.get("beta"), p.get("object"), p.get("probe"),
                        p.get("positions"), prob.initial_positions, p.get("distances"),
                        list(self.history), list(self.batch_losses), measured, modelled,
                        prob.model.optics.pixel_size_m, prob.model.optics.slice_thickness_m,
                        dict(self.dataset.truth) if self.dataset.truth is not None else {})

    @property
    def _writes_files(self) -> bool:
        """Only MPI rank 0 (or a single process) writes results and checkpoints."""
        return self.distributed is None or self.distributed.is_root

    def _write(self, path: Path, kind: str) -> None:
        if not self._writes_files:
            return
        with self._lock:
            params = host_params(self.problem)
            opt_state = self.solver.state_dict()
            run_state = {"guard": self._guard.state_dict(), **self.projections.state_dict(),
                         **self.positions.state_dict(), **self.problem.state_dict()}
            if self._partial:  # stopped within an epoch: where to continue it
                run_state["partial"] = dict(self._partial)
        write_state(path, kind, self.problem, params, opt_state, self.progress, self.config,
                    run_state)

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
