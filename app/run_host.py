"""The solver side of a GUI run, without Qt: build one ``Reconstruction``, run it, report.

:class:`RunHost` runs wherever the solver runs (normally a spawned process, see
:mod:`.solver_process`; a thread for tests that patch the engine). It talks to the window only
through ``send(message)``, with messages that are plain picklable tuples:

``("created", RunInfo)``, ``("events", [ProgressEvent, ...])``, ``("snapshot", Snapshot)``,
``("applied", changes)``, ``("refused", message)``, ``("finished", path, state)``,
``("failed", exception, traceback)``, ``("stats", RunStats)``, ``("done",)`` (always last).

It also decides when a live preview is worth its cost: ``run.snapshot()`` is taken inside the
run's callback at most every ``interval`` seconds and only after the window has drawn the previous
one, and the interval stretches so that previews stay a few percent of the solver's time.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

log = logging.getLogger("slicewise.app.solver")

MIN_SNAPSHOT_INTERVAL_S = 0.5       # never more than two previews per second
EVENT_FLUSH_S = 0.1                 # minibatch events are sent in bundles at most 10x per second
SNAPSHOT_BUDGET = 0.02              # previews (solver side + drawing) may cost ~2 % of run time


@dataclass
class RunInfo:
    """What the window needs to know once the run object exists."""

    backend: str
    output_dir: Path
    n_epochs: int
    start_epoch: int
    energy_ev: float
    n_angles: int
    n_spots: int
    modality: str
    truth_voxel_m: tuple[float, float]  # (slice thickness, pixel) of the data set's ground truth
    truth: dict = field(default_factory=dict)  # sent once here, not with every snapshot
    n_distances: int = 1                # spots are distance-major: n_distances x n_tiles
    n_tiles: int = 1


@dataclass
class RunStats:
    """Cost accounting of the live previews (seconds)."""

    run_s: float = 0.0              # wall time of run.run()
    snapshot_s: float = 0.0         # time inside run.snapshot() on the solver side
    callback_s: float = 0.0         # all time spent in our callback (includes snapshot_s)
    gui_s: float = 0.0              # time the window spent drawing snapshots
    n_snapshots: int = 0
    n_events: int = 0
    epoch_times_s: list = field(default_factory=list)

    def overhead_fraction(self) -> float:
        return (self.callback_s + self.gui_s) / self.run_s if self.run_s > 0 else 0.0


def portable_exception(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (it crosses a process boundary), else a SlicewiseError with
    its message, so that the window can still explain it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - exceptions with unusual constructors
        from slicewise.engine.errors import SlicewiseError  # noqa: PLC0415

        return SlicewiseError(f"{type(exc).__name__}: {exc}")


class RunHost:
    """One run, driven by commands (thread-safe) and reporting through ``send``."""

    def __init__(self, send, config, base_dir=None, resume=None, frame=(0, 0), prepared=None):
        """``prepared``: the ``Reconstruction`` of this very configuration, built ahead."""
        self._send = send
        self._prepared = prepared
        self.config, self.base_dir, self.resume = config, base_dir, resume
        self.run_obj = None
        self.stats = RunStats()
        self._lock = threading.Lock()
        self._pending: list = []
        self._last_flush = 0.0
        self._last_snap = 0.0
        self._snap_in_flight = False
        self._last_snap_cost = 0.0
        self._frame = tuple(frame)
        self._stop_requested = False

    # ---- commands (any thread) ---------------------------------------------------------------
    def command(self, name: str, *args) -> None:
        getattr(self, "cmd_" + name)(*args)

    def cmd_pause(self) -> None:
        if self.run_obj is not None:
            self.run_obj.pause()

    def cmd_resume(self, changes: dict | None = None) -> None:
        """Apply ``changes`` (fields safe while paused), then resume; a refused change keeps the
        run paused and says why."""
        run = self.run_obj
        if run is None:
            return
        if changes:
            try:
                run.apply_changes(changes)
            except Exception as exc:  # noqa: BLE001 - e.g. a field that cannot change now
                self._send(("refused", str(exc)))
                return
            self._send(("applied", dict(changes)))
        run.resume()

    def cmd_stop(self) -> None:
        self._stop_requested = True
        if self.run_obj is not None:
            self.run_obj.stop()

    def cmd_frame(self, angle: int, spot: int) -> None:
        self._frame = (int(angle), int(spot))
        self._last_snap = 0.0  # show the newly chosen frame soon

    def cmd_drawn(self, seconds: float) -> None:
        """The window drew the last snapshot in ``seconds``; the next one may be sent."""
        with self._lock:
            self.stats.gui_s += seconds
            self._last_snap_cost += seconds
            self._snap_in_flight = False

    # ---- the run -----------------------------------------------------------------------------
    def run(self) -> None:
        from slicewise.engine.recon.run import Reconstruction  # noqa: PLC0415

        t0 = time.perf_counter()
        try:
            # one process: never join an MPI job, even if launched from an MPI environment
            run = self._prepared or Reconstruction(self.config, None, resume=self.resume,
                                                   base_dir=self.base_dir, distributed=None)
            self._prepared = None
            self.run_obj = run
            if self._stop_requested:  # stopped while the run was being built: write nothing
                run.stop()
                self._send(("finished", None, "stopped"))
                return
            self._send(("created", self._info(run)))
            log.info("run started on %s; output in %s", run.backend.describe(), run.output_dir)
            run.add_callback(self._on_event)
            t0 = time.perf_counter()
            path = run.run()
            self._end(t0)
            log.info("run %s after %d epochs (%.1f s); result: %s", run.state, run.epoch,
                     self.stats.run_s, path)
            self._send(("finished", Path(path), run.state))
        except BaseException as exc:  # noqa: BLE001 - everything must reach the user
            self._end(t0)
            self._send(("failed", portable_exception(exc), traceback.format_exc()))
        finally:
            self._send(("stats", self.stats))
            self._send(("done",))

    def _end(self, t0: float) -> None:
        self.stats.run_s = time.perf_counter() - t0
        self._flush()
        if self.run_obj is not None:
            self.stats.epoch_times_s = [h.get("time_s") for h in self.run_obj.history]
            self._final_snapshot()  # the last good estimate stays on screen

    def _info(self, run) -> RunInfo:
        ds, optics = run.dataset, run.problem.model.optics   # the geometry the run uses
        truth = dict(ds.truth) if ds.truth is not None else {}
        return RunInfo(run.backend.describe(), Path(run.output_dir), run.n_epochs, run.epoch,
                       float(optics.energy_ev), ds.n_angles, ds.n_spots, ds.modality,
                       (optics.slice_thickness_m, optics.pixel_size_m), truth, ds.n_distances,
                       ds.n_tiles)

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
            self._send(("events", batch))
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
            snap = replace(run.snapshot(frame=self._frame), truth={})  # truth came with RunInfo
        except Exception:  # a preview must never stop the solver
            log.exception("snapshot failed")
            return
        cost = time.perf_counter() - t0
        with self._lock:
            self.stats.snapshot_s += cost
            self.stats.n_snapshots += 1
            self._last_snap_cost = cost
            self._snap_in_flight = True
        self._last_snap = time.monotonic()
        self._send(("snapshot", snap))

    def _final_snapshot(self) -> None:
        with self._lock:
            self._snap_in_flight = False
        self._take_snapshot()
