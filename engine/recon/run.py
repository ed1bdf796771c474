"""The reconstruction run: minibatch gradient descent through the AD tape, with callbacks.

:class:`Reconstruction` is what the command line and the GUI drive. ``run()`` blocks (the GUI calls
it on a worker thread); ``pause()``, ``resume()``, ``stop()`` and ``snapshot()`` are thread-safe and
take effect within one minibatch. Checkpoints and results are written atomically; resuming is
explicit (``resume=path``).
"""

from __future__ import annotations

import logging
import math
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..autodiff import no_grad, value_and_grad
from ..backend import Backend, get_backend, to_host
from ..errors import ConfigError, DivergenceError, SlicewiseError
from ..io.datafile import Dataset, estimate_memory_bytes
from ..io.readers import open_dataset
from ..io.results import read_result, write_result, write_tiff_stack
from . import config as cfgmod
from . import autotune, constraints, stepsize
from .distributed import Distributed
from .optimizers import make_optimizer
from ..io.arrays import load_array, resolve_path
from .problem import Problem, build_problem, host_copy

log = logging.getLogger(__name__)

STATES = ("ready", "running", "paused", "finished", "stopped", "failed")


@dataclass
class ProgressEvent:
    """What a callback receives after each minibatch/epoch and on state changes."""

    kind: str                      # "batch" | "epoch" | "state" | "checkpoint"
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
        # MPI data parallelism when launched by mpiexec with several ranks (see distributed.py)
        self.distributed = Distributed.from_environment() if distributed == "auto" else distributed
        self.base_dir = Path(base_dir) if base_dir else Path.cwd()
        run = self.config.run
        self.backend = backend or get_backend(run.backend, run.precision)
        if dataset is None:
            if not self.config.data.path:
                raise ConfigError("data.path is not set: give the measured data file (HDF5)")
            dataset = open_dataset(resolve_path(self.config.data.path, self.base_dir))
        self.dataset = dataset
        self.problem: Problem = build_problem(self.config, dataset, self.backend, self.base_dir)
        self._choose_schedule()
        self.memory_estimate_bytes = self._check_memory()
        self.output_dir = resolve_path(run.output_dir, self.base_dir)
        self.result_path = self.output_dir / "result.h5"
        self.checkpoint_path = self.output_dir / "checkpoint.h5"
        self.epoch = 0
        self.history: list[dict] = []
        self.batch_losses: list[float] = []
        self.state = "ready"
        self.peak_memory_bytes = 0
        self._callbacks: list[Callable[[ProgressEvent], None]] = []
        self._lock = threading.RLock()
        self._resume_evt = threading.Event()
        self._resume_evt.set()
        self._stop = False
        self._pending_changes: dict = {}
        self.optimizer = make_optimizer(self.config.optimizer.kind, self._learning_rates(),
                                        momentum=self.config.optimizer.momentum,
                                        betas=(self.config.optimizer.beta1, self.config.optimizer.beta2),
                                        history=self.config.optimizer.lbfgs_history)
        self._support = None
        if self.config.constraints.support not in ("none", "auto"):
            # a mask file is read (and checked against the object grid) now, before anything is
            # written, and applies from the first step
            self._support = self._load_support(self.config.constraints.support)
        if self.config.optimizer.kind == "lbfgs":
            self._batches(0)  # refuses minibatches now, before anything is written
        if resume:
            self._load_checkpoint(Path(resume))
        if self.distributed is not None:  # every rank starts from rank 0's state
            self.problem.params.update(self.distributed.broadcast_params(self.problem.params))
        self._resolve_learning_rates(self._refined())

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
        """Change fields marked ``safe_while_paused`` (learning rates, weights, epochs...)."""
        infos = {f.path: f for f in cfgmod.iter_fields(self.config)}
        for path, value in changes.items():
            info = infos.get(path)
            if info is None:
                raise ConfigError(f"{path}: no such configuration field")
            if not info.safe_while_paused:
                raise ConfigError(f"{path} cannot change during a run; stop and start again")
        with self._lock:
            for path, value in changes.items():
                cfgmod.set_value(self.config, path, value)
            for name, lr in self._learning_rates().items():
                self.optimizer.set_lr(name, lr)

    @property
    def n_epochs(self) -> int:
        return self.config.run.epochs

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> Path:
        """Run the remaining epochs; returns the result file. Raises :class:`SlicewiseError` kinds."""
        cfg = self.config
        if self._writes_files:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            cfgmod.to_toml(cfg, self.output_dir / "config.toml")
        self._set_state("running")
        t_start = time.perf_counter()
        epoch_times: list[float] = []
        try:
            while self.epoch < self.n_epochs and not self._stop:
                t0 = time.perf_counter()
                good = {k: v.copy() for k, v in self.problem.params.items()}
                batches = self._batches(self.epoch)
                sums: dict[str, float] = {}
                for b, (a_idx, s_idx) in enumerate(batches):
                    self._wait_if_paused()
                    if self._stop_agreed():
                        break
                    loss, terms = self._step(a_idx, s_idx)
                    if not math.isfinite(loss):
                        with self._lock:
                            self.problem.params.update(good)
                            # the moments saw the diverging steps; a resumed run starts them afresh
                            self.optimizer.reset()
                        self._write(self.checkpoint_path, "checkpoint")
                        raise DivergenceError(
                            f"the loss became {loss} at epoch {self.epoch + 1}, batch {b + 1}; the last "
                            f"good estimate is in {self.checkpoint_path}. Lower the learning rates "
                            "(optimizer.lr_*) and resume from it")
                    self.batch_losses.append(loss)
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + v
                    elapsed = time.perf_counter() - t_start
                    self._emit(ProgressEvent("batch", self.epoch + 1, self.n_epochs, b + 1, len(batches),
                                             loss, terms, elapsed, self._eta(epoch_times, b, len(batches))))
                if self._stop and len(sums) == 0:
                    break
                nb = max(len(batches), 1)
                rec = {"epoch": self.epoch + 1, "loss": sum(v for k, v in sums.items()) / nb,
                       "terms": {k: v / nb for k, v in sums.items()}, "time_s": time.perf_counter() - t0}
                if self._stop:
                    break  # a partial epoch is not an epoch
                self.epoch += 1
                self.history.append(rec)
                epoch_times.append(rec["time_s"])
                self._after_epoch()
                self._measure_memory()
                self._emit(ProgressEvent("epoch", self.epoch, self.n_epochs, nb, nb, rec["loss"], rec["terms"],
                                         time.perf_counter() - t_start, self._eta(epoch_times, nb, nb)))
                every = cfg.run.checkpoint_every
                if every and self.epoch % every == 0 and self.epoch < self.n_epochs:
                    self._write(self.checkpoint_path, "checkpoint")
                    self._emit(ProgressEvent("checkpoint", self.epoch, self.n_epochs, state=self.state,
                                             message=str(self.checkpoint_path)))
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
        self._write(self.checkpoint_path, "checkpoint")
        self._write(self.result_path, "result")
        if cfg.run.save_tiff and "delta" in self.problem.params and self._writes_files:
            for name in ("delta", "beta"):
                write_tiff_stack(self.output_dir / f"{name}.tif", to_host(self.problem.params[name]),
                                 self.problem.model.optics.pixel_size_m)
        self._set_state("stopped" if self._stop and self.epoch < self.n_epochs else "finished")
        return self.result_path

    def _check_memory(self) -> int:
        """Estimate the run's peak memory before it starts; refuse one that cannot fit."""
        ds, run, prob = self.dataset, self.config.run, self.problem
        frames = (run.batch_angles or ds.n_angles) * ((run.batch_spots or ds.n_spots)
                                                       if prob.model.splits_spots else ds.n_spots)
        est = estimate_memory_bytes(ds, prob.object_shape, prob.object_shape[0], frames,
                                    dtype=np.dtype(self.backend.complex_dtype).name)
        avail = _available_memory_bytes(self.backend)
        log.info("estimated peak memory %.0f MiB (available %.0f MiB)", est / 2**20, avail / 2**20)
        if avail and est > avail:
            raise SlicewiseError(
                f"this run needs about {est / 2**30:.1f} GiB but only {avail / 2**30:.1f} GiB are available; "
                "lower run.batch_spots / run.batch_angles, set model.checkpoint_slices, or use fewer "
                "slices (model.n_slices)")
        return est

    def _stop_agreed(self) -> bool:
        """Whether to stop now; under MPI all ranks must agree (one stopping alone would hang)."""
        if self.distributed is not None:
            self._stop = self.distributed.any(self._stop)
        return self._stop

    def _wait_if_paused(self) -> None:
        if not self._resume_evt.is_set():
            self._set_state("paused")
            self._resume_evt.wait()
            if not self._stop:
                self._set_state("running")

    def _refined(self) -> list[str]:
        cfg, p = self.config, self.problem.params
        names = [n for n in ("delta", "beta", "object") if n in p]
        r = cfg.refine
        if r.probe and "probe" in p and self.epoch >= r.probe_start_epoch:
            names.append("probe")
        if r.positions and "positions" in p and self.epoch >= r.positions_start_epoch:
            names.append("positions")
        if r.distances and "distances" in p and self.epoch >= r.distances_start_epoch:
            names.append("distances")
        return names

    def _learning_rates(self) -> dict:
        """Rates in the optimiser's units; an unset (not yet measured) rate is 0 for now."""
        lrs = {k: (0.0 if v is None else v) for k, v in self.config.optimizer.lrs().items()}
        if lrs["probe"]:  # probe rate is relative to the probe's peak amplitude
            lrs["probe"] = lrs["probe"] * self._probe_peak()
        return lrs

    def _probe_peak(self) -> float:
        probe = self.problem.params.get("probe")
        return float(to_host(abs(probe).max())) if probe is not None else 1.0

    def _store_lr(self, name: str, lr_optimizer_units: float) -> None:
        """Write a measured rate into the configuration (in its units) and the optimiser."""
        value = lr_optimizer_units / self._probe_peak() if name == "probe" else lr_optimizer_units
        cfgmod.set_value(self.config, f"optimizer.lr_{name}", float(value))
        self.optimizer.set_lr(name, lr_optimizer_units)

    def _choose_schedule(self) -> None:
        """Resolve ``optimizer.kind = auto`` and unset minibatch sizes into the configuration."""
        o, r, prob = self.config.optimizer, self.config.run, self.problem
        sched = autotune.choose_schedule(o.kind, r.batch_angles, r.batch_spots, self.dataset,
                                         prob.model.splits_spots,
                                         prob.object_shape, _available_memory_bytes(self.backend),
                                         dtype=np.dtype(self.backend.complex_dtype).name)
        if (o.kind, r.batch_angles, r.batch_spots) != (sched.kind, sched.batch_angles, sched.batch_spots):
            log.info("optimizer.kind = %s, run.batch_angles = %d, run.batch_spots = %d (%s)",
                     sched.kind, sched.batch_angles, sched.batch_spots, sched.reason)
        o.kind, r.batch_angles, r.batch_spots = sched.kind, sched.batch_angles, sched.batch_spots
        self._schedule = sched

    def _resolve_learning_rates(self, names: list[str]) -> None:
        """Measure the unset learning rates of ``names`` (curvature along the gradient, see
        :mod:`.stepsize`) on a few frames; log them and write them into the configuration."""
        lrs = self.config.optimizer.lrs()
        missing = [n for n in names if lrs.get(n, 0) is None]
        if not missing:
            return
        prob = self.problem
        a_idx, s_idx = autotune.estimation_batch(self.dataset,
                                         prob.model.splits_spots, self._schedule)
        measured = prob.measured_batch(a_idx, s_idx)

        def evaluate(trial):
            (val, _), g = value_and_grad(lambda u: prob.loss({**prob.params, **u}, a_idx, s_idx, measured),
                                         has_aux=True)(trial)
            return float(to_host(val)), g

        with self._lock:
            scales, _, _ = stepsize.estimate_scales(evaluate, prob.params, missing)
        rates = stepsize.learning_rates(scales, self.config.optimizer.kind)
        for n in missing:
            self._store_lr(n, rates[n])
            log.info("optimizer.lr_%s = %.3g (measured: optimal steepest-descent step changes an "
                     "element by up to %.3g and lowers the loss by %.0f %%)", n,
                     cfgmod.get_value(self.config, f"optimizer.lr_{n}"), scales[n].max_change,
                     100 * scales[n].decrease)
        if self.state != "ready" and self._writes_files:
            cfgmod.to_toml(self.config, self.output_dir / "config.toml")

    def _step(self, a_idx, s_idx) -> tuple[float, dict]:
        prob = self.problem
        names = self._refined()
        self._resolve_learning_rates(names)  # a parameter whose refinement starts now
        dist = self.distributed
        if dist is not None:
            a_idx, s_idx = dist.share(a_idx, s_idx, prob.model.splits_spots)
        weight = len(a_idx) * len(s_idx)
        measured = prob.measured_batch(a_idx, s_idx) if weight else None

        def objective(unknowns):
            merged = {**prob.params, **unknowns}
            return prob.loss(merged, a_idx, s_idx, measured)

        vg = value_and_grad(objective, has_aux=True)

        def evaluate(trial):
            """(loss, terms, grads), averaged over the MPI ranks when distributed."""
            if weight:
                (val, terms), g = vg(trial)
                terms = {k: float(to_host(v)) for k, v in terms.items()}
            else:  # this rank has no frames in this minibatch
                val, terms = 0.0, {}
                g = {n: self.backend.xp.zeros_like(v) for n, v in trial.items()}
            if dist is not None:
                val, terms, g = dist.combine(val, terms, g, weight)
            return val, terms, g

        with self._lock:
            unknowns = {n: prob.params[n] for n in names}
        loss, terms, grads = evaluate(unknowns)
        if not math.isfinite(loss):
            return loss, {}
        def closure(trial):  # L-BFGS's line search re-evaluates on the same minibatch
            val, _, g = evaluate(trial)
            return val, g
        with self._lock:
            old_pos = prob.params["positions"].copy() if "positions" in names else None
            new = self.optimizer.step(unknowns, grads, loss=loss,
                                     closure=closure if self.config.optimizer.kind == "lbfgs" else None)
            prob.params.update(new)
            self._project(old_pos)
        return loss, terms

    def _project(self, old_pos) -> None:
        """Constraints after each update, on plain arrays."""
        c, p = self.config.constraints, self.problem.params
        if c.nonneg:
            for n in ("delta", "beta"):
                if n in p:
                    p[n] = constraints.nonnegative(p[n])
            if "object" in p:  # a passive object cannot amplify: |T| <= 1
                p["object"] = constraints.amplitude_at_most(p["object"], 1.0)
        if self._support is not None:
            for n in ("delta", "beta"):
                if n in p:
                    p[n] = constraints.apply_support(p[n], self._support)
        if c.fix_probe_power and "probe" in p and self.problem.probe_power:
            p["probe"] = constraints.fix_probe_power(p["probe"], self.problem.probe_power)
        if old_pos is not None:
            p["positions"] = constraints.bound_position_step(p["positions"], old_pos,
                                                             self.config.refine.position_max_step_px)
            # a common translation of all spots is a null direction of (object, positions): let it
            # drift and the object only moves off the nominal scan frame (and off any ground truth)
            p["positions"] = constraints.remove_global_shift(p["positions"], old_pos)

    def _after_epoch(self) -> None:
        c = self.config.constraints
        if c.support == "auto" and self.epoch >= c.support_start_epoch and "delta" in self.problem.params:
            with self._lock:
                self._support = constraints.support_mask_auto(self.problem.params["delta"],
                                                              c.support_threshold, c.support_sigma_px)
        elif c.support not in ("none", "auto") and self._support is None:
            self._support = self._load_support(c.support)

    def _load_support(self, path_str):
        m = load_array(resolve_path(path_str, self.base_dir), "constraints.support",
                       ("params/support", "support", "mask"))
        if m.shape != self.problem.object_shape:
            raise ConfigError(f"constraints.support: mask shape {m.shape} differs from the object grid "
                              f"{self.problem.object_shape}")
        return self.backend.asarray(m.astype(bool))

    def _batches(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
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

    def _loss_history(self) -> dict:
        out = {"total": [h["loss"] for h in self.history]}
        for h in self.history:
            for k, v in h["terms"].items():
                out.setdefault(k, []).append(v)
        return out

    @property
    def _writes_files(self) -> bool:
        """Only MPI rank 0 (or a single process) writes results and checkpoints."""
        return self.distributed is None or self.distributed.is_root

    def _write(self, path: Path, kind: str) -> None:
        if not self._writes_files:
            return
        with self._lock:
            params = {k: host_copy(v) for k, v in self.problem.params.items()}
            opt_state = self.optimizer.state_dict()
        initial = {}
        if self.problem.initial_positions is not None:
            initial["positions"] = self.problem.initial_positions
        extra = {"batch_losses": np.asarray(self.batch_losses, float),
                 "pixel_size_m": self.problem.model.optics.pixel_size_m,
                 "slice_thickness_m": self.problem.model.optics.slice_thickness_m,
                 "energy_ev": self.problem.model.optics.energy_ev,
                 "peak_memory_bytes": int(self.peak_memory_bytes),
                 # wall time of each epoch (s; NaN for epochs of a run this one resumed)
                 "epoch_time_s": np.asarray([h.get("time_s", float("nan")) for h in self.history],
                                            float)}
        write_result(path, params, loss_history=self._loss_history(), config_toml=cfgmod.to_toml(self.config),
                     epoch=self.epoch, initial=initial, optimizer_state=opt_state, extra=extra, kind=kind)

    def _load_checkpoint(self, path: Path) -> None:
        try:
            res = read_result(path)
        except (OSError, SlicewiseError) as exc:
            raise ConfigError(f"--resume {path}: cannot read the checkpoint ({exc})") from None
        for k, v in res["params"].items():
            if k in self.problem.params:
                if tuple(np.shape(v)) != tuple(self.problem.params[k].shape):
                    raise ConfigError(f"--resume {path}: {k} has shape {np.shape(v)} but this configuration "
                                      f"needs {tuple(self.problem.params[k].shape)}")
                self.problem.params[k] = self.backend.asarray(v, dtype=self.problem.params[k].dtype)
        self.epoch = res["epoch"]
        loss = res["loss"]
        terms = [k for k in loss if k != "total"]
        times = list(np.ravel(res["extra"].get("epoch_time_s", [])))
        self.history = [{"epoch": i + 1, "loss": float(loss["total"][i]),
                         "terms": {k: float(loss[k][i]) for k in terms},
                         "time_s": float(times[i]) if i < len(times) else float("nan")}
                        for i in range(len(loss.get("total", [])))]
        self.batch_losses = list(np.asarray(res["extra"].get("batch_losses", [])).tolist())
        if res["optimizer"]:
            self.optimizer.load_state_dict(res["optimizer"])
            for name, lr in res["optimizer"].get("lrs", {}).items():
                if self.config.optimizer.lrs().get(name, 0) is None and lr > 0:
                    self._store_lr(name, float(lr))
        log.info("resumed from %s at epoch %d", path, self.epoch)

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

    def _eta(self, epoch_times: list, batch: int, n_batches: int) -> float:
        if not epoch_times:
            return float("nan")
        per_epoch = float(np.mean(epoch_times[-5:]))
        remaining = self.n_epochs - self.epoch - (batch / max(n_batches, 1))
        return max(remaining, 0.0) * per_epoch

    def _measure_memory(self) -> None:
        if self.backend.is_gpu:  # pragma: no cover - GPU
            used = self.backend.xp.get_default_memory_pool().total_bytes()
        else:
            used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak_memory_bytes = max(self.peak_memory_bytes, int(used))


def _available_memory_bytes(backend: Backend) -> int:
    """Free device memory (GPU) or MemAvailable (Linux); 0 when unknown."""
    if backend.is_gpu:  # pragma: no cover - GPU
        free, _ = backend.xp.cuda.runtime.memGetInfo()
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


__all__ = ["Reconstruction", "ProgressEvent", "Snapshot"]
