"""The solver runs on its own thread; this module is the only bridge between it and the UI.

:class:`RunWorker` lives on a :class:`QThread`. It builds the engine's ``Reconstruction`` there
(opening data and building the model is work too), runs it, and turns the run's callbacks into Qt
signals, which Qt queues to the UI thread. It also decides when a live preview is worth its cost:
``run.snapshot()`` is called *on the solver thread*, inside the callback, at most every
``interval`` seconds and only when the UI has finished drawing the previous one, and the interval
stretches so that snapshots plus drawing stay a few percent of the solver's time.

:class:`RunController` is the UI-side handle: start/pause/resume/stop/wait. Pause, resume, stop and
``apply_changes`` call the run object directly (they are thread-safe in the engine) because the
worker thread is busy inside ``run.run()`` and would never see a queued request.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import QObject, Qt, QThread, pyqtSignal, pyqtSlot

from slicewise.engine.recon.config import ReconConfig
from slicewise.engine.recon.run import Reconstruction

from .log_panel import FORMAT, LOGGER_NAME

log = logging.getLogger("slicewise.app.worker")

MIN_SNAPSHOT_INTERVAL_S = 1 / 3     # never more than ~3 previews per second
EVENT_FLUSH_S = 0.1                 # minibatch events are sent in bundles at most 10x per second
SNAPSHOT_BUDGET = 0.04              # previews (solver side + drawing) may cost ~4 % of run time


@dataclass
class RunInfo:
    """What the UI needs to know once the run object exists."""

    backend: str
    output_dir: Path
    n_epochs: int
    start_epoch: int
    energy_ev: float
    n_angles: int
    n_spots: int
    modality: str
    truth_voxel_m: tuple[float, float]  # (slice thickness, pixel) of the data set's ground truth


@dataclass
class RunStats:
    """Cost accounting for the responsiveness budget (seconds)."""

    run_s: float = 0.0              # wall time of run.run()
    snapshot_s: float = 0.0         # time inside run.snapshot() on the solver thread
    callback_s: float = 0.0         # all time spent in our callback (includes snapshot_s)
    gui_s: float = 0.0              # time the UI spent drawing snapshots
    n_snapshots: int = 0
    n_events: int = 0
    snapshot_times: list = field(default_factory=list)

    def overhead_fraction(self) -> float:
        return (self.callback_s + self.gui_s) / self.run_s if self.run_s > 0 else 0.0


class RunWorker(QObject):
    created = pyqtSignal(object)        # RunInfo
    events = pyqtSignal(list)           # [ProgressEvent, ...] in order
    snapshot = pyqtSignal(object)       # Snapshot
    finished = pyqtSignal(object, str)  # result path, final state ("finished" | "stopped")
    failed = pyqtSignal(object, str)    # exception, formatted traceback
    done = pyqtSignal()                 # always last: the thread may quit

    def __init__(self, config: ReconConfig, base_dir: str | Path | None = None,
                 resume: str | Path | None = None, dataset=None):
        super().__init__()
        self.config, self.base_dir, self.resume, self.dataset = config, base_dir, resume, dataset
        self.run_obj: Reconstruction | None = None
        self.stats = RunStats()
        self._lock = threading.Lock()
        self._pending: list = []
        self._last_flush = 0.0
        self._last_snap = 0.0
        self._snap_in_flight = False
        self._last_snap_cost = 0.0
        self._frame = (0, 0)
        self._stop_requested = False
        self._log_handler: logging.Handler | None = None

    # ---- called from the UI thread -----------------------------------------------------------
    def request_stop(self) -> None:
        self._stop_requested = True
        run = self.run_obj
        if run is not None:
            run.stop()

    def set_frame(self, angle: int, spot: int) -> None:
        self._frame = (int(angle), int(spot))
        self._last_snap = 0.0  # show the newly chosen frame soon

    def snapshot_handled(self, seconds: float) -> None:
        """The UI drew the last snapshot in ``seconds``; the next one may be sent."""
        with self._lock:
            self.stats.gui_s += seconds
            self._last_snap_cost += seconds
            self._snap_in_flight = False

    # ---- on the solver thread ----------------------------------------------------------------
    @pyqtSlot()
    def run(self) -> None:
        t0 = time.perf_counter()
        try:
            # one process: never join an MPI job, even if launched from an MPI environment
            run = Reconstruction(self.config, self.dataset, resume=self.resume,
                                 base_dir=self.base_dir, distributed=None)
            self.run_obj = run
            if self._stop_requested:  # stopped while the run was being built: write nothing
                run.stop()
                log.info("run stopped before it started")
                self.finished.emit(None, "stopped")
                return
            self._attach_log_file(run.output_dir)
            ds = run.dataset
            energy = self.config.data.energy_ev or ds.energy_ev
            self.created.emit(RunInfo(run.backend.describe(), Path(run.output_dir), run.n_epochs,
                                      run.epoch, float(energy), ds.n_angles, ds.n_spots,
                                      ds.modality, (ds.slice_thickness_m, ds.pixel_size_m)))
            log.info("run started on %s; output in %s", run.backend.describe(), run.output_dir)
            run.add_callback(self._on_event)
            t0 = time.perf_counter()
            path = run.run()
            self.stats.run_s = time.perf_counter() - t0
            self._flush()
            self._final_snapshot()
            log.info("run %s after %d epochs (%.1f s); result: %s", run.state, run.epoch,
                     self.stats.run_s, path)
            self.finished.emit(Path(path), run.state)
        except BaseException as exc:  # noqa: BLE001 - everything must reach the user as a dialog
            self.stats.run_s = time.perf_counter() - t0
            self._flush()
            if self.run_obj is not None:
                self._final_snapshot()  # the last good estimate stays on screen
            self.failed.emit(exc, traceback.format_exc())
        finally:
            self._detach_log_file()
            self.done.emit()

    def _on_event(self, ev) -> None:
        """Run's callback, on the solver thread: must stay cheap (queue, maybe snapshot)."""
        t0 = time.perf_counter()
        self.stats.n_events += 1
        self._pending.append(ev)
        now = time.monotonic()
        if ev.kind != "batch" or now - self._last_flush >= EVENT_FLUSH_S:
            self._flush(now)
        if self._snapshot_due(ev, now):
            self._take_snapshot()
        self.stats.callback_s += time.perf_counter() - t0

    def _flush(self, now: float | None = None) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.events.emit(batch)
        self._last_flush = time.monotonic() if now is None else now

    def _interval(self) -> float:
        run = self.run_obj
        user = run.config.run.snapshot_every_s if run is not None else 0.0
        # stretch the interval so that (snapshot + drawing) stays within the budget
        adaptive = self._last_snap_cost / SNAPSHOT_BUDGET
        return max(MIN_SNAPSHOT_INTERVAL_S, user, adaptive)

    def _snapshot_due(self, ev, now: float) -> bool:
        if ev.kind == "state" and ev.state == "paused":
            return True  # a paused run should show exactly where it stopped
        with self._lock:
            if self._snap_in_flight:
                return False
        return ev.kind in ("batch", "epoch") and now - self._last_snap >= self._interval()

    def _take_snapshot(self) -> None:
        run = self.run_obj
        if run is None:
            return
        t0 = time.perf_counter()
        try:
            snap = run.snapshot(frame=self._frame)
        except Exception:  # a preview must never stop the solver
            log.exception("snapshot failed")
            return
        cost = time.perf_counter() - t0
        with self._lock:
            self.stats.snapshot_s += cost
            self.stats.n_snapshots += 1
            self.stats.snapshot_times.append(cost)
            self._last_snap_cost = cost
            self._snap_in_flight = True
        self._last_snap = time.monotonic()
        self.snapshot.emit(snap)

    def _final_snapshot(self) -> None:
        with self._lock:
            self._snap_in_flight = False
        self._take_snapshot()

    def _attach_log_file(self, output_dir) -> None:
        try:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            h = logging.FileHandler(Path(output_dir) / "slicewise-run.log", encoding="utf-8")
        except OSError as exc:
            log.warning("cannot write a log file in %s: %s", output_dir, exc)
            return
        h.setFormatter(logging.Formatter(FORMAT))
        h.setLevel(logging.INFO)
        logging.getLogger(LOGGER_NAME).addHandler(h)
        self._log_handler = h

    def _detach_log_file(self) -> None:
        if self._log_handler is not None:
            logging.getLogger(LOGGER_NAME).removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


class RunController(QObject):
    """UI-side handle of one run at a time."""

    created = pyqtSignal(object)
    events = pyqtSignal(list)
    snapshot = pyqtSignal(object)
    finished = pyqtSignal(object, str)
    failed = pyqtSignal(object, str)
    stopped = pyqtSignal()              # the thread has ended (after finished/failed)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: RunWorker | None = None
        self.last_stats: RunStats | None = None
        self._frame = (0, 0)

    def is_active(self) -> bool:
        return self._thread is not None

    @property
    def run(self) -> Reconstruction | None:
        return self._worker.run_obj if self._worker is not None else None

    @property
    def stats(self) -> RunStats | None:
        return self._worker.stats if self._worker is not None else self.last_stats

    def start(self, config: ReconConfig, base_dir=None, resume=None, dataset=None) -> None:
        if self.is_active():
            raise RuntimeError("a run is already active")
        thread = QThread()
        thread.setObjectName("slicewise-solver")
        worker = RunWorker(config, base_dir, resume, dataset)
        worker.set_frame(*self._frame)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.created.connect(self.created)
        worker.events.connect(self.events)
        worker.snapshot.connect(self.snapshot)
        worker.finished.connect(self.finished)
        worker.failed.connect(self.failed)
        # direct: quit must not wait for the UI event loop (the UI may be blocked in wait())
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(lambda t=thread: self._on_thread_finished(t))
        self._thread, self._worker = thread, worker
        thread.start()

    def _on_thread_finished(self, thread: QThread) -> None:
        if thread is not self._thread:
            return  # a late signal of a thread that wait() already retired
        thread.wait()
        self.last_stats = self._worker.stats
        # plain Python references: both objects are deleted once the last reference goes
        self._thread, self._worker = None, None
        self.stopped.emit()

    def pause(self) -> None:
        run = self.run
        if run is not None:
            run.pause()

    def resume(self, changes: dict | None = None) -> None:
        run = self.run
        if run is None:
            return
        if changes:
            run.apply_changes(changes)  # raises ConfigError for fields not safe while paused
        run.resume()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.request_stop()

    def set_frame(self, angle: int, spot: int) -> None:
        self._frame = (angle, spot)
        if self._worker is not None:
            self._worker.set_frame(angle, spot)

    def snapshot_handled(self, seconds: float) -> None:
        if self._worker is not None:
            self._worker.snapshot_handled(seconds)

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Block until the solver thread has ended (stop first); True when it has. Finishing
        signals already queued are then delivered by the event loop as usual."""
        thread = self._thread
        if thread is None:
            return True
        ok = thread.wait(int(timeout_s * 1000))
        if ok:
            self._on_thread_finished(thread)
        return ok
