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
from pathlib import Path

from PyQt6.QtCore import QByteArray, Qt, QTimer
from PyQt6.QtGui import QCloseEvent
from PyQt6.QtWidgets import (QDockWidget, QLabel, QMainWindow, QProgressBar, QTabWidget,
                             QWidget)

from . import dialogs, errors, settings
from .data_panel import DataSummary, FrameBrowser
from .dock_widths import DockWidths
from .live_views import LiveViews
from .log_panel import LogPanel
from .params_panel import ParamsPanel
from .session import Session
from .tasks import TaskRunner
from .view3d.remote import make_3d_view
from .view3d.window_tab import View3DMixin
from .window_actions import build_actions, build_menus_and_toolbar, make_action
from .window_analysis import AnalysisMixin
from .window_files import FilesMixin
from .window_run import RunMixin
from .window_start import StartMixin
from .worker import RunController

log = logging.getLogger("slicewise.app")


class MainWindow(FilesMixin, RunMixin, View3DMixin, StartMixin, AnalysisMixin, QMainWindow):
    def __init__(self, log_file: Path | None = None, parent: QWidget | None = None,
                 solver=None):
        """``solver``: an idle solver process started before the window
        (:func:`.worker.early_solver`), used by the first Start."""
        super().__init__(parent)
        self.setObjectName("SlicewiseMainWindow")
        self.setAcceptDrops(True)
        self.session = Session()
        self._progress_at = 0.0          # when the progress bar last changed (monotonic s)
        self._opening_data: Path | None = None  # a data file being opened for data.path
        self._result_data: Path | None = None   # the data file of the result on screen
        self._open_seq = 0             # File > Open requests: only the last one is shown
        self._probed_backend: tuple | None = None
        self._autostart = False        # --start: start as soon as the form allows
        self.quit_when_done = False    # --quit-when-done: exit when the run ends
        self.exit_code: int | None = None
        self._signalled = False        # a stop signal came: stop, then close (stop_and_quit)

        self.controller = RunController(self)
        self.controller.adopt(solver)
        self.tasks = TaskRunner(self)
        self._build_widgets(log_file)
        self._init_3d()
        build_actions(self)
        build_menus_and_toolbar(self)
        self.build_analysis_menus(make_action)
        self._connect()
        self._restore_settings()
        self._on_form_changed()
        self.show_start_page()   # until something is opened (main.run_gui opens files after)
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
        self._build_analysis()
        self.setCentralWidget(self._build_start())

        self.data_dock = self._dock("Data set", self.summary, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.params_dock = self._dock("Parameters", self.params,
                                      Qt.DockWidgetArea.LeftDockWidgetArea)
        self.log_dock = self._dock("Log", self.log_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.data_dock, self.params_dock], [230, 560], Qt.Orientation.Vertical)
        self.resizeDocks([self.params_dock], [400], Qt.Orientation.Horizontal)  # as DockWidths
        self.resizeDocks([self.log_dock], [140], Qt.Orientation.Vertical)
        self.dock_widths = DockWidths(self, [self.data_dock, self.params_dock], width=400)

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
        self._leave_start_page_if_busy()

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
        self.restore_docks()   # the workspace's layout, not the start page's
        s = settings.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/live_splitter", self.live.saveState())
        cfg = self.params.config()
        if cfg.data.path and Path(cfg.data.path).is_absolute():
            from slicewise.engine.recon import config as cfgmod  # noqa: PLC0415

            s.setValue("session/config_toml", cfgmod.to_toml(cfg))
        s.sync()

    # ---- misc --------------------------------------------------------------------------------
    def _on_busy(self, busy: bool, label: str) -> None:
        self.busy_label.setText(f"{label}\u2026" if busy else "")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        if self.controller.is_active():
            if not (self.quit_when_done or self._signalled) and not dialogs.confirm(
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
