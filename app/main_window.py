"""The main window: data, parameters, run control and live views around one reconstruction.

Layout: parameters and the data summary in docks on the left; in the centre the live views
("Reconstruction": object slices, loss curve, probe / positions / frames), the measured frames and
the napari 3D view as tabs; the log at the bottom. The state and its rules live in the Qt-free
:class:`.session.Session`, which the window observes. The solver runs in a process of its own
(:mod:`.worker`); file loading and simulation run on :class:`.tasks.TaskRunner` threads. The
window only reacts and draws.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PyQt6.QtCore import QByteArray, Qt, QTimer, QUrl
from PyQt6.QtGui import QCloseEvent, QDesktopServices
from PyQt6.QtWidgets import (QApplication, QDockWidget, QLabel, QMainWindow, QProgressBar,
                             QTabWidget, QWidget)

from . import dialogs, errors, settings
from .data_panel import DataSummary, FrameBrowser
from .live_views import LiveViews
from .log_panel import LogPanel
from .view3d.remote import make_3d_view
from .params_panel import ParamsPanel
from .session import Session
from .tasks import TaskRunner
from .views.common import format_duration
from .view3d.window_tab import View3DMixin
from .window_actions import build_actions, build_menus_and_toolbar
from .window_files import FilesMixin
from .worker import RunController, RunInfo

log = logging.getLogger("slicewise.app")

PROGRESS_EVERY_S = 0.25   # minibatch progress shown at most this often (each costs a repaint)


class MainWindow(FilesMixin, View3DMixin, QMainWindow):
    def __init__(self, log_file: Path | None = None, parent: QWidget | None = None,
                 solver=None):
        """``solver``: an idle solver process started before the window
        (:func:`.worker.early_solver`), used by the first Start."""
        super().__init__(parent)
        self.setObjectName("SlicewiseMainWindow")
        self.setAcceptDrops(True)
        self.session = Session()
        self._volumes = None           # what the 3D view shows (current run or a result)
        self._napari_shown_at = 0.0
        self._progress_at = 0.0          # when the progress bar last changed (monotonic s)
        self._opening_data: Path | None = None  # a data file being opened for data.path
        self._probed_backend: tuple | None = None
        self._autostart = False        # --start: start as soon as the form allows
        self.quit_when_done = False    # --quit-when-done: exit when the run ends
        self.exit_code: int | None = None

        self.controller = RunController(self)
        self.controller.adopt(solver)
        self.tasks = TaskRunner(self)
        self._build_widgets(log_file)
        build_actions(self)
        build_menus_and_toolbar(self)
        self._connect()
        self._restore_settings()
        self._on_form_changed()
        # loss curves are redrawn on a timer, not per event: many events, one redraw (each
        # redraw of the curves is CPU time taken from the solver)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(750)
        self._refresh_timer.timeout.connect(self.loss_view.refresh)
        self._refresh_timer.start()
        self._probe_backend()
        # napari loads in the background while nothing runs (a run would compete for the CPU)
        self.napari_view.preload(1500, when=lambda: not self.controller.is_active())

    # ---- the session's state, by name (the rest of the window and tests use these) -----------
    dataset = property(lambda self: self.session.dataset)
    run_state = property(lambda self: self.session.run_state)
    run_info = property(lambda self: self.session.run_info)
    last_snapshot = property(lambda self: self.session.last_snapshot)
    config_path = property(lambda self: self.session.config_path)
    result_path = property(lambda self: self.session.result_path)

    # ---- construction ------------------------------------------------------------------------
    def _build_widgets(self, log_file) -> None:
        self.summary = DataSummary()
        self.frames_browser = FrameBrowser()
        self.params = ParamsPanel()
        self.live = LiveViews()
        # the views, by name, for the rest of the window (and tests)
        self.slice_view, self.loss_view = self.live.slice_view, self.live.loss_view
        self.probe_view, self.positions_view = self.live.probe_view, self.live.positions_view
        self.frames_view, self.side_tabs = self.live.frames_view, self.live.side_tabs
        self.napari_view = make_3d_view()   # in a process of its own where it can be
        self.log_panel = LogPanel(log_file)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.live, "Reconstruction")
        self.tabs.addTab(self.frames_browser, "Measured data")
        self.tabs.addTab(self.napari_view, "3D view (napari)")
        self.setCentralWidget(self.tabs)

        self.data_dock = self._dock("Data set", self.summary, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.params_dock = self._dock("Parameters", self.params,
                                      Qt.DockWidgetArea.LeftDockWidgetArea)
        self.log_dock = self._dock("Log", self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.data_dock, self.params_dock], [230, 560], Qt.Orientation.Vertical)
        self.resizeDocks([self.params_dock], [400], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [140], Qt.Orientation.Vertical)

        self.epoch_label = QLabel("epoch \u2013")
        self.epoch_label.setMinimumWidth(130)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%p %")
        self.eta_label = QLabel("")
        self.eta_label.setMinimumWidth(150)
        self.start_reason = QLabel("")
        self.start_reason.setStyleSheet("color: #c0392b;")
        self.backend_label = QLabel("backend: \u2026")
        self.busy_label = QLabel("")
        self.statusBar().addPermanentWidget(self.busy_label)
        self.statusBar().addPermanentWidget(self.backend_label)

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "_") + "_dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        self.session.observe(self._on_session_changed)
        self.params.validityChanged.connect(lambda ok, why: self._on_form_changed())
        self.params.configChanged.connect(self._on_form_changed)
        self.params.configChanged.connect(self._sync_data_with_config)
        self.params.configChanged.connect(self._probe_backend)
        c = self.controller
        c.created.connect(self._on_run_created)
        c.events.connect(self._on_events)
        c.snapshot.connect(self._on_snapshot)
        c.applied.connect(self._on_applied)
        c.refused.connect(self._on_refused)
        c.finished.connect(self._on_run_finished)
        c.failed.connect(self._on_run_failed)
        c.stopped.connect(self._on_solver_ended)
        self.frames_view.frameChanged.connect(self.controller.set_frame)
        self.tasks.busyChanged.connect(self._on_busy)
        self.tabs.currentChanged.connect(self._on_tab_changed)

    def _on_form_changed(self) -> None:
        self.session.set_form(self.params.first_error(), self.params.value("data.path") or "")

    def _on_session_changed(self, what: str) -> None:
        self._update_actions()
        self.setWindowTitle(self.session.title())

    def _probe_backend(self) -> None:
        """Which backend a run would use (CUDA probing can take a moment: off the UI thread)."""
        from slicewise.engine.backend import get_backend  # noqa: PLC0415

        cfg = self.params.config()
        key = (cfg.run.backend, cfg.run.precision)
        if key == self._probed_backend:
            return
        self._probed_backend = key

        def shown(text: str) -> None:
            if self.run_info is None:  # a run's own description wins
                self.backend_label.setText(f"backend: {text}")

        self.tasks.submit("checking the array backend",
                          lambda: get_backend(cfg.run.backend, cfg.run.precision).describe(),
                          shown, lambda exc, tb: shown(f"unavailable ({exc})"))

    # ---- errors (dialogs, or an exit code when scripted) -------------------------------------
    def report(self, title: str, message: str, details: str = "") -> None:
        if self.quit_when_done:  # nobody is there to click OK: log it and end with an error
            log.error("%s: %s", title, message)
            self._quit(2)
            return
        log.warning("%s: %s", title, message.replace("\n\n", " "))
        errors.show_error(self, title, message, details)

    def report_exc(self, exc: BaseException, context: str = "", title: str = "Slicewise",
                   details: str | None = None) -> None:
        if self.quit_when_done:
            log.error("%s", errors.friendly_message(exc, context).replace("\n\n", " "))
            self._quit(2)
            return
        errors.report_exception(self, exc, context, title=title, details=details)

    # ---- settings ----------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = settings.settings()
        geom, state = s.value("window/geometry"), s.value("window/state")
        if isinstance(geom, QByteArray) and not geom.isEmpty():
            self.restoreGeometry(geom)
        else:
            self.resize(1500, 920)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        live = s.value("window/live_splitter")
        if isinstance(live, QByteArray) and not live.isEmpty():
            self.live.restoreState(live)

    def restore_last_session(self) -> None:
        """The configuration of the last session (and so its data set), when it still exists."""
        text = settings.settings().value("session/config_toml", "")
        if not text or self.session.dataset is not None or self.controller.is_active():
            return
        from slicewise.engine.recon import config as cfgmod  # noqa: PLC0415

        try:
            cfg = cfgmod.from_toml(str(text))
        except Exception:  # noqa: BLE001 - an older version's settings: start empty
            return
        if cfg.data.path and Path(cfg.data.path).is_file():
            self.params.set_config(cfg)
            log.info("restored the last session's parameters (%s)", cfg.data.path)

    def _save_settings(self) -> None:
        s = settings.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/live_splitter", self.live.saveState())
        cfg = self.params.config()
        if cfg.data.path and Path(cfg.data.path).is_absolute():
            from slicewise.engine.recon import config as cfgmod  # noqa: PLC0415

            s.setValue("session/config_toml", cfgmod.to_toml(cfg))
        s.sync()

    # ---- run control -------------------------------------------------------------------------
    def can_start(self) -> tuple[bool, str]:
        return self.session.can_start()

    def request_autostart(self) -> None:
        """Start as soon as the form allows it (``slicewise gui CONFIG --start``)."""
        self._autostart = True
        self._update_actions()

    def autostart_check(self) -> None:
        """After a file opened with ``--start``: a form that cannot start says why (and, when
        scripted, ends the application instead of waiting for a user)."""
        ok, why = self.can_start()
        if self._autostart and not ok and why:
            self._autostart = False
            self.report("Start", f"Cannot start: {why}")

    def start_run(self, resume: str | None = None) -> None:
        ok, why = self.can_start()
        if not ok:
            if why:
                self.report("Start", f"Cannot start: {why}")
            return
        cfg = self.params.config()
        problem = self.session.output_dir_problem(cfg.run.output_dir)
        if problem:
            self.report("Start", f"Cannot start: {problem}")
            return
        self.reset_run(keep_camera=True)
        self.session.run_info = None
        self.session.set_run_state("starting")
        self.params.mark_applied()
        log.info("starting a reconstruction (%d epochs%s)", cfg.run.epochs,
                 f", resuming {resume}" if resume else "")
        self.controller.start(cfg, self.session.base_dir(), resume)

    def resume_from_checkpoint(self) -> None:
        path = dialogs.open_file(self, "Resume from checkpoint", dialogs.RESULT_FILTER)
        if path:
            self.start_run(resume=path)

    def continue_result(self) -> None:
        """Continue the opened (or last written) result with the form's settings."""
        path = self.session.result_path
        if path is None or not Path(path).is_file():
            self.report("Continue", "Open a result file first (File \u203a Open).")
            return
        self.start_run(resume=str(path))

    def open_output_folder(self) -> None:
        info = self.session.run_info
        folder = info.output_dir if info is not None else (
            self.session.result_path.parent if self.session.result_path else None)
        if folder is None:
            folder = Path(self.session.base_dir()) / self.params.config().run.output_dir
        if not Path(folder).is_dir():
            self.report("Open output folder", f"The output folder {folder} does not exist yet; "
                        "it is created when a run starts.")
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def toggle_pause(self) -> None:
        if self.run_state == "running":
            self.controller.pause()
            self.act_pause.setEnabled(False)  # until the solver confirms the pause
            self.statusBar().showMessage("pausing after this minibatch\u2026")
        elif self.run_state == "paused":
            bad = self.params.errors()
            if bad:  # an invalid value typed while paused is refused, never dropped silently
                path, why = next(iter(bad.items()))
                self.report("Resume", f"Cannot resume: {why}\n\nCorrect {path or 'the field'} "
                            "(or Stop the run); the run stays paused.")
                return
            self.act_pause.setEnabled(False)  # until the solver confirms
            self.controller.resume(self.params.pending_changes())

    def _on_applied(self, changes: dict) -> None:
        log.info("applied while paused: %s", ", ".join(f"{k} = {v}" for k, v in changes.items()))
        self.params.mark_applied()

    def _on_refused(self, message: str) -> None:
        self.act_pause.setEnabled(True)
        self.report("Resume", f"The run refused the changed parameters: {message}\n\nThe run "
                    "stays paused; correct the field or Stop.")

    def stop_run(self) -> None:
        if self.controller.is_active():
            self.controller.stop()
            self.session.set_run_state("stopping")

    def reset_run(self, keep_camera: bool = False) -> None:
        """Forget the live views (and the 3D view) of the last run; its files stay."""
        if self.controller.is_active():
            return
        self.session.last_snapshot = None
        self._volumes = None
        self.live.clear()
        if self.session.dataset is not None:
            self.live.show_data_frame(self.session.dataset)
        self.napari_view.clear(keep_camera)
        self.progress.setValue(0)
        self.epoch_label.setText("epoch \u2013")
        self.eta_label.setText("")
        self._update_actions()

    def _update_actions(self) -> None:
        s = self.session
        ok, why = s.can_start()
        active = self.controller.is_active()
        self.params.set_run_state({"paused": "paused", "idle": "idle"}.get(s.run_state,
                                                                           "running"))
        self.act_pause.setText("Resume" if s.run_state == "paused" else "Pause")
        self.act_start.setEnabled(ok)
        self.act_start.setToolTip("start a reconstruction" if ok else f"cannot start: {why}")
        self.start_reason.setText(f"  cannot start: {why}" if why else "")
        self.act_pause.setEnabled(s.run_state in ("running", "paused"))
        self.act_stop.setEnabled(active and s.run_state != "stopping")
        self.act_reset.setEnabled(not active)
        self.act_resume_ckpt.setEnabled(ok)
        self.act_continue.setEnabled(ok and s.result_path is not None)
        for a in (self.act_open, self.act_simulate, self.act_load_cfg, self.act_demo):
            a.setEnabled(not active)
        if self._autostart and ok:
            self._autostart = False
            QTimer.singleShot(0, self.start_run)

    # ---- solver signals ----------------------------------------------------------------------
    def _on_run_created(self, info: RunInfo) -> None:
        self.session.run_info = info
        self.backend_label.setText(f"backend: {info.backend}")
        self.frames_view.set_counts(info.n_angles, info.n_spots)
        self.frames_view.set_log_scale(info.modality == "farfield")
        self.frames_view.set_modality(info.modality)
        log.info("output folder: %s", info.output_dir)

    def _on_events(self, events: list) -> None:
        shown = None
        for ev in events:
            if ev.kind in ("batch", "epoch"):
                self.loss_view.add_event(ev)
                shown = ev
                if ev.kind == "epoch":
                    log.info("epoch %d/%d: loss %.6g", ev.epoch, ev.n_epochs, ev.loss)
            elif ev.kind == "state" and ev.state in ("running", "paused"):
                # the session never lets a late "running" undo a Stop already asked for
                if self.session.set_run_state(ev.state):
                    self.statusBar().showMessage(
                        "paused: the parameters that are not greyed out can be changed; they "
                        "apply on Resume" if ev.state == "paused" else "running", 8000)
                    if ev.state == "paused":
                        self.full_3d_when_paused()
            elif ev.kind == "checkpoint":
                log.info("checkpoint written: %s", ev.message)
            elif ev.kind == "config":
                self.params.show_run_choices(ev.changes)
        # the progress bar repaints at once (Qt's rule for it): once per bundle of events, and
        # minibatch progress at most every PROGRESS_EVERY_S; epochs always
        now = time.monotonic()
        if shown is not None and (shown.kind == "epoch" or
                                  now - self._progress_at >= PROGRESS_EVERY_S):
            self._progress_at = now
            self._show_progress(shown)

    def _show_progress(self, ev) -> None:
        n_epochs = max(ev.n_epochs, 1)
        if ev.kind == "batch":
            done = (ev.epoch - 1 + ev.batch / max(ev.n_batches, 1)) / n_epochs
            self.epoch_label.setText(f"epoch {ev.epoch}/{ev.n_epochs}  "
                                     f"batch {ev.batch}/{ev.n_batches}")
        else:
            done = ev.epoch / n_epochs
            self.epoch_label.setText(f"epoch {ev.epoch}/{ev.n_epochs}")
        self.progress.setValue(int(round(1000 * min(done, 1.0))))
        self.eta_label.setText(f"ETA {format_duration(ev.eta_s)}, {format_duration(ev.elapsed_s)}"
                               " elapsed")

    def _on_snapshot(self, snap) -> None:
        """Draw a snapshot; the time it takes goes back to the solver's budget."""
        t0 = time.perf_counter()
        try:
            self.show_snapshot(snap)
        finally:
            self.controller.snapshot_handled(time.perf_counter() - t0)

    def show_snapshot(self, snap) -> None:
        self.session.last_snapshot = snap
        info = self.run_info
        energy = info.energy_ev if info else (self.dataset.energy_ev if self.dataset else None)
        self.live.show_snapshot(snap, energy)
        self._volumes = None  # built from last_snapshot when the 3D view needs it
        if self.tabs.currentWidget() is self.napari_view and self.live_3d_due():
            self.show_3d(preview=self.run_state == "running")

    def _on_run_finished(self, path, state: str) -> None:
        self.session.set_result(path)
        self._final_state = state
        if path:
            self.statusBar().showMessage(f"{state}: result written to {path}", 15000)
        # the full-resolution 3D view in a turn of its own, after the run's last messages
        QTimer.singleShot(0, self._final_3d)

    def _on_run_failed(self, exc: BaseException, tb: str) -> None:
        self._final_state = "failed"
        self.statusBar().showMessage("the reconstruction failed", 15000)
        self.report_exc(exc, "Reconstruction", title="Reconstruction failed", details=tb)

    def _on_solver_ended(self) -> None:
        stats = self.controller.last_stats
        if stats and stats.run_s > 0:
            log.info("live views: %d snapshots, %.2f s on the solver side + %.2f s drawing = "
                     "%.1f %% of %.1f s run time", stats.n_snapshots, stats.callback_s,
                     stats.gui_s, 100 * stats.overhead_fraction(), stats.run_s)
        self.session.set_run_state("idle")
        if self.session.dataset is not None and not self.quit_when_done:
            self.controller.prewarm()  # the next Start finds its process ready
        self.params.revert_invalid()  # values typed while paused that were never applied
        self._on_form_changed()
        if self.quit_when_done:
            self._quit(0 if getattr(self, "_final_state", "") == "finished" else 1)

    def _quit(self, code: int) -> None:
        self.exit_code = code
        QTimer.singleShot(0, lambda: (self.close(), QApplication.exit(code)))

    # ---- misc --------------------------------------------------------------------------------
    def _on_busy(self, busy: bool, label: str) -> None:
        self.busy_label.setText(f"{label}\u2026" if busy else "")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        if self.controller.is_active():
            if not self.quit_when_done and not dialogs.confirm(
                    self, "Quit Slicewise",
                    "A reconstruction is running. Stop it and quit?\n\nThe run stops after the "
                    "current minibatch and writes its checkpoint and result."):
                event.ignore()
                return
            self.stop_run()
            if not self.controller.wait(120):
                errors.show_error(self, "Quit Slicewise", "The solver did not stop within two "
                                  "minutes; the application will not quit yet.")
                event.ignore()
                return
        self._refresh_timer.stop()
        self._save_settings()
        self.controller.shutdown()
        self.tasks.shutdown()
        self.napari_view.close_viewer()
        self.session.close()
        self.log_panel.detach()
        event.accept()
