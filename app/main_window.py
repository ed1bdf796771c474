"""The main window: data, parameters, run control and live views around one reconstruction.

Layout: parameters and the data summary in docks on the left; in the centre the live views
("Reconstruction": object slices, loss curve, probe / positions / frames), the measured frames and
the napari 3D view as tabs; the log at the bottom. The solver runs on the worker thread
(:mod:`.worker`); this module only reacts to its signals and never runs numerics itself. File
loading and simulation run through :class:`.tasks.TaskRunner`, also off the UI thread.

Run states as the window sees them: ``idle`` -> ``starting`` (building the run) -> ``running`` <->
``paused`` -> ``stopping`` -> ``idle``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PyQt6.QtCore import QByteArray, Qt, QTimer
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import QDockWidget, QLabel, QMainWindow, QProgressBar, QTabWidget, QToolBar, QWidget

from slicewise.engine import __version__
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.readers import open_dataset
from slicewise.engine.recon import config as cfgmod

from . import dialogs, errors, settings
from .data_panel import DataSummary, FrameBrowser
from .file_jobs import VolumeSet, load_hdf5, object_volumes
from .live_views import LiveViews
from .log_panel import LogPanel
from .napari_view import NapariView
from .params_panel import ParamsPanel
from .tasks import TaskRunner
from .views.common import format_duration
from .worker import RunController, RunInfo

log = logging.getLogger("slicewise.app")

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
NAPARI_MIN_INTERVAL_S = 2.0     # 3D texture uploads are the costliest view update


class MainWindow(QMainWindow):
    def __init__(self, log_file: Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("SlicewiseMainWindow")
        self.setAcceptDrops(True)
        self.dataset: Dataset | None = None     # the data set shown (the run opens its own)
        self.config_path: str | None = None
        self.result_path: Path | None = None
        self.run_state = "idle"
        self.run_info: RunInfo | None = None
        self.last_snapshot = None
        self._napari_shown_at = 0.0
        self._volumes: VolumeSet | None = None  # what the 3D view shows (current run or a result)
        self._opening_data: Path | None = None  # a data file being opened for data.path
        self._probed_backend: tuple | None = None

        self.controller = RunController(self)
        self.tasks = TaskRunner(self)
        self._build_widgets(log_file)
        self._build_actions()
        self._build_menus_and_toolbar()
        self._connect()
        self._restore_settings()
        self._update_actions()
        self._update_title()
        # loss curves are redrawn on a timer, not per event: many events, one redraw
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(250)
        self._refresh_timer.timeout.connect(self.loss_view.refresh)
        self._refresh_timer.start()
        self._probe_backend()

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
        self.napari_view = NapariView()
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

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.triggered.connect(lambda _=False: slot())
        return a

    def _build_actions(self) -> None:
        A = self._action
        self.act_open = A("&Open\u2026", self.open_dialog, QKeySequence.StandardKey.Open,
                          "open a data file (.h5), a configuration (.toml) or a result file")
        self.act_simulate = A("&New simulated data set\u2026", self.new_simulation, "Ctrl+N",
                              "simulate a cone, Siemens star or spheres data set")
        self.act_load_cfg = A("&Load configuration\u2026", self.load_config_dialog, "Ctrl+L",
                              "read parameters from a TOML file")
        self.act_save_cfg = A("&Save configuration\u2026", self.save_config_dialog,
                              QKeySequence.StandardKey.Save, "write the parameters as TOML")
        self.act_napari = A("Open result in &napari\u2026", self.open_result_in_napari, "Ctrl+3",
                            "show a saved result or checkpoint as 3D volumes")
        self.act_demo = A("Cone &demo", self.load_demo, None,
                          "the built-in hollow glass cone data set and configuration")
        self.act_quit = A("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_start = A("Start", self.start_run, "F5", "start a reconstruction")
        self.act_pause = A("Pause", self.toggle_pause, "F6",
                           "pause after the current minibatch; fields marked safe can be changed")
        self.act_stop = A("Stop", self.stop_run, "Shift+F5",
                          "stop after the current minibatch and write the result")
        self.act_reset = A("Reset", self.reset_run, None,
                           "clear the live views; the next Start begins from the initial guess")
        self.act_resume_ckpt = A("Resume from checkpoint\u2026", self.resume_from_checkpoint, None,
                                 "continue a run from a checkpoint file")
        self.act_show_3d = A("Show 3D view", self.show_3d, None,
                             "show the current volume in the napari tab")

    def _build_menus_and_toolbar(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open)
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addAction(self.act_simulate)
        m.addAction(self.act_demo)
        m.addSeparator()
        m.addAction(self.act_load_cfg)
        m.addAction(self.act_save_cfg)
        m.addSeparator()
        m.addAction(self.act_napari)
        m.addSeparator()
        m.addAction(self.act_quit)
        r = mb.addMenu("&Run")
        for a in (self.act_start, self.act_pause, self.act_stop, self.act_reset):
            r.addAction(a)
        r.addSeparator()
        r.addAction(self.act_resume_ckpt)
        v = mb.addMenu("&View")
        for d in (self.data_dock, self.params_dock, self.log_dock):
            v.addAction(d.toggleViewAction())
        v.addAction(self.act_show_3d)
        h = mb.addMenu("&Help")
        h.addAction(self._action("About Slicewise", self._about))

        tb = QToolBar("Run control")
        tb.setObjectName("run_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(tb)
        tb.addAction(self.act_open)
        tb.addAction(self.act_simulate)
        tb.addSeparator()
        for a in (self.act_start, self.act_pause, self.act_stop, self.act_reset):
            tb.addAction(a)
        tb.addSeparator()
        tb.addWidget(self.epoch_label)
        tb.addWidget(self.progress)
        tb.addWidget(self.eta_label)
        tb.addWidget(self.start_reason)
        self.run_toolbar = tb

    def _connect(self) -> None:
        self.params.validityChanged.connect(lambda ok, why: self._update_actions())
        self.params.configChanged.connect(self._update_actions)
        self.params.configChanged.connect(self._sync_data_with_config)
        self.params.configChanged.connect(self._probe_backend)
        c = self.controller
        c.created.connect(self._on_run_created)
        c.events.connect(self._on_events)
        c.snapshot.connect(self._on_snapshot)
        c.finished.connect(self._on_run_finished)
        c.failed.connect(self._on_run_failed)
        c.stopped.connect(self._on_thread_stopped)
        self.frames_view.frameChanged.connect(self.controller.set_frame)
        self.tasks.busyChanged.connect(self._on_busy)
        self.tabs.currentChanged.connect(self._on_tab_changed)

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

    def _save_settings(self) -> None:
        s = settings.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/live_splitter", self.live.saveState())
        s.sync()

    # ---- opening files -----------------------------------------------------------------------
    def open_dialog(self) -> None:
        path = dialogs.open_file(self, "Open data, configuration or result", dialogs.DATA_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str, then_3d: bool = False) -> None:
        """Open a data file, a configuration (.toml) or a result file, by its content."""
        p = Path(path)
        if not p.exists():
            errors.show_error(self, "Open", f"File not found: {path}")
            return
        suffix = p.suffix.lower()
        if suffix == ".toml":
            if self.controller.is_active():  # e.g. dropped on the window during a run
                errors.show_error(self, "Open", "A reconstruction is running; stop it before "
                                  "loading another configuration.")
                return
            self.load_config(str(p))
        elif suffix in HDF5_SUFFIXES:
            self.statusBar().showMessage(f"opening {p.name}\u2026")
            self.tasks.submit(f"opening {p.name}", lambda: load_hdf5(str(p)),
                              lambda res: self._on_hdf5_loaded(str(p), res, then_3d),
                              lambda exc, tb: self._open_failed(str(p), exc, tb))
        else:
            errors.show_error(self, "Open", f"{p.name}: unknown file type. Slicewise opens HDF5 "
                              "data or result files (.h5, .hdf5) and configurations (.toml).")

    def _open_failed(self, path: str, exc: BaseException, tb: str) -> None:
        self.statusBar().clearMessage()
        errors.report_exception(self, exc, f"Opening {Path(path).name}", title="Open",
                                details=tb)

    def _on_hdf5_loaded(self, path: str, res, then_3d: bool = False) -> None:
        self.statusBar().clearMessage()
        settings.add_recent_file(path)
        if res[0] == "data":
            if self.controller.is_active():  # a run started meanwhile: do not swap its data
                res[1].close()
                errors.show_error(self, "Open", "A reconstruction is running; stop it before "
                                  "opening another data set.")
                return
            self.set_dataset(res[1], path)
        else:
            self.show_result(path, res[1], res[2], switch_to_3d=then_3d)

    def set_dataset(self, ds: Dataset, path: str | None = None) -> None:
        """Show ``ds`` (data summary, frame browser) and point data.path at its file."""
        if self.dataset is not None and self.dataset is not ds:
            self.dataset.close()
        self.dataset = ds
        self.summary.set_dataset(ds)
        self.frames_browser.set_dataset(ds)
        self.frames_view.set_counts(ds.n_angles, ds.n_spots)
        self.frames_view.set_log_scale(ds.modality == "farfield")
        if path:
            self.params.set_value("data.path", str(Path(path).resolve()))
        self.reset_run()
        log.info("opened %s: %s data, %d angle(s) x %d spot(s) of %dx%d px", ds.source_path,
                 ds.modality, ds.n_angles, ds.n_spots, *ds.frame_shape)
        self._update_title()
        self._update_actions()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = settings.recent_files()
        for f in files:
            self.recent_menu.addAction(Path(f).name, lambda f=f: self.open_path(f)).setToolTip(f)
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", settings.clear_recent_files)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt name
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
        event.acceptProposedAction()

    # ---- configuration -----------------------------------------------------------------------
    def load_config_dialog(self) -> None:
        path = dialogs.open_file(self, "Load configuration", dialogs.CONFIG_FILTER)
        if path:
            self.load_config(path)

    def load_config(self, path: str) -> None:
        try:
            cfg = cfgmod.from_toml(Path(path))
        except Exception as exc:  # noqa: BLE001 - bad TOML, unknown keys: a dialog, not a crash
            errors.report_exception(self, exc, f"Loading {Path(path).name}", title="Configuration")
            return
        self.config_path = str(Path(path).resolve())
        self.params.set_config(cfg)  # its data file is opened by _sync_data_with_config
        settings.add_recent_file(path)
        log.info("loaded configuration %s", path)
        self._update_title()
        self._update_actions()

    def _data_path(self) -> Path | None:
        """data.path of the form, absolute (relative paths are relative to the base folder)."""
        dp = self.params.value("data.path")
        if not dp:
            return None
        p = Path(dp).expanduser()
        return p if p.is_absolute() else Path(self._base_dir()) / p

    def _sync_data_with_config(self) -> None:
        """When data.path names another existing file (typed, or from a loaded configuration),
        show that data set too."""
        p = self._data_path()
        if p is None or not p.is_file() or self.controller.is_active():
            return
        p = p.resolve()
        shown = self.dataset.source_path if self.dataset is not None else None
        if (shown and Path(shown).resolve() == p) or self._opening_data == p:
            return
        self._opening_data = p

        def done(ds: Dataset) -> None:
            self._opening_data = None
            if self._data_path() is not None and self._data_path().resolve() == p:
                self.set_dataset(ds, None)  # data.path stays as written (maybe relative)
            else:
                ds.close()  # the field changed again meanwhile

        def failed(exc, tb) -> None:
            self._opening_data = None
            self._open_failed(str(p), exc, tb)

        self.tasks.submit(f"opening {p.name}", lambda: open_dataset(p), done, failed)

    def save_config_dialog(self) -> None:
        name = Path(self.config_path).name if self.config_path else "reconstruction.toml"
        path = dialogs.save_file(self, "Save configuration", dialogs.CONFIG_FILTER, name)
        if path:
            self.save_config(path if path.endswith(".toml") else path + ".toml")

    def save_config(self, path: str) -> bool:
        try:
            cfgmod.to_toml(self.params.config(), path,
                           header=f"Slicewise {__version__} reconstruction configuration\n"
                                  "Run with: slicewise reconstruct this_file.toml")
        except Exception as exc:  # noqa: BLE001
            errors.report_exception(self, exc, f"Saving {Path(path).name}", title="Configuration")
            return False
        self.config_path = str(Path(path).resolve())
        settings.add_recent_file(path)
        log.info("saved configuration %s", path)
        self._update_title()
        return True

    def _base_dir(self) -> str:
        """Relative paths in the configuration are relative to its file, else to the data."""
        if self.config_path:
            return str(Path(self.config_path).parent)
        dp = self.params.value("data.path")
        if dp and Path(dp).expanduser().is_absolute():
            return str(Path(dp).expanduser().parent)
        return str(Path.cwd())

    # ---- simulation and demo -----------------------------------------------------------------
    def new_simulation(self) -> None:
        from .sim_dialog import SimulationDialog  # noqa: PLC0415

        dlg = SimulationDialog(self, settings.last_dir(), self.tasks)
        if dlg.exec() and dlg.result_path:
            self.open_path(dlg.result_path)

    def load_demo(self, autostart: bool = False) -> None:
        """The built-in cone demo: data are simulated once into the app-data folder; with
        ``autostart`` (``slicewise demo``) the reconstruction starts as soon as it is loaded."""
        try:
            from slicewise.engine import demo  # noqa: PLC0415
        except ImportError as exc:
            errors.report_exception(self, exc, "The demo is not available in this installation")
            return
        from .log_panel import log_dir  # noqa: PLC0415

        folder = log_dir().parent / "demo"
        self.statusBar().showMessage("preparing the cone demo data set\u2026")
        self.tasks.submit("preparing the demo", lambda: self._demo_job(demo, folder),
                          lambda result: self._on_demo_ready(result, autostart),
                          lambda exc, tb: errors.report_exception(self, exc, "Cone demo",
                                                                  details=tb))

    @staticmethod
    def _demo_job(demo, folder: Path):
        path = Path(demo.ensure_demo_data(folder))
        cfg = demo.demo_config(path, folder / "results")
        return cfg, open_dataset(path)

    def _on_demo_ready(self, result, autostart: bool = False) -> None:
        cfg, ds = result
        self.statusBar().clearMessage()
        self.config_path = None
        self.set_dataset(ds, ds.source_path)
        self.params.set_config(cfg)
        if autostart and self.can_start()[0]:
            log.info("cone demo ready: reconstructing")
            self.start_run()
        else:
            log.info("cone demo ready: press Start (F5)")

    # ---- run control -------------------------------------------------------------------------
    def can_start(self) -> tuple[bool, str]:
        if self.run_state != "idle":
            return False, ""
        if not self.params.is_valid():
            return False, "fix the parameters: " + self.params.first_error()
        if not self.params.value("data.path"):
            return False, "open a data file (File \u203a Open) or set data.path"
        return True, ""

    def start_run(self, resume: str | None = None) -> None:
        ok, why = self.can_start()
        if not ok:
            if why:
                errors.show_error(self, "Start", f"Cannot start: {why}")
            return
        cfg = self.params.config()
        self.reset_run()
        self.run_info = None
        self._set_run_state("starting")
        self.params.mark_applied()
        log.info("starting a reconstruction (%d epochs%s)", cfg.run.epochs,
                 f", resuming {resume}" if resume else "")
        self.controller.start(cfg, self._base_dir(), resume)

    def resume_from_checkpoint(self) -> None:
        path = dialogs.open_file(self, "Resume from checkpoint", dialogs.RESULT_FILTER)
        if path:
            self.start_run(resume=path)

    def toggle_pause(self) -> None:
        if self.run_state == "running":
            self.controller.pause()
            self.act_pause.setEnabled(False)  # until the solver confirms the pause
            self.statusBar().showMessage("pausing after this minibatch\u2026")
        elif self.run_state == "paused":
            changes = self.params.pending_changes()
            try:
                self.controller.resume(changes)
            except Exception as exc:  # noqa: BLE001 - e.g. a field that cannot change now
                errors.report_exception(self, exc, "Applying the changed parameters")
                return
            if changes:
                log.info("applied while paused: %s",
                         ", ".join(f"{k} = {v}" for k, v in changes.items()))
            self.params.mark_applied()

    def stop_run(self) -> None:
        if self.controller.is_active():
            self.controller.stop()
            self._set_run_state("stopping")

    def reset_run(self) -> None:
        """Forget the live views of the last run (not its files)."""
        if self.controller.is_active():
            return
        self.last_snapshot = None
        self.live.clear()
        self.progress.setValue(0)
        self.epoch_label.setText("epoch \u2013")
        self.eta_label.setText("")
        self._update_actions()

    def _set_run_state(self, state: str) -> None:
        self.run_state = state
        self.params.set_run_state({"paused": "paused", "idle": "idle"}.get(state, "running"))
        self.act_pause.setText("Resume" if state == "paused" else "Pause")
        self._update_actions()
        self._update_title()

    def _update_actions(self) -> None:
        ok, why = self.can_start()
        active = self.controller.is_active()
        self.act_start.setEnabled(ok)
        self.act_start.setToolTip("start a reconstruction" if ok else f"cannot start: {why}")
        self.start_reason.setText(f"  cannot start: {why}" if why else "")
        self.act_pause.setEnabled(self.run_state in ("running", "paused"))
        self.act_stop.setEnabled(active and self.run_state != "stopping")
        self.act_reset.setEnabled(not active)
        self.act_resume_ckpt.setEnabled(ok)
        for a in (self.act_open, self.act_simulate, self.act_load_cfg, self.act_demo):
            a.setEnabled(not active)

    def _update_title(self) -> None:
        name = Path(self.dataset.source_path).name if self.dataset and self.dataset.source_path \
            else "no data"
        state = "" if self.run_state == "idle" else f" [{self.run_state}]"
        self.setWindowTitle(f"Slicewise \u2013 {name}{state}")

    # ---- solver signals ----------------------------------------------------------------------
    def _on_run_created(self, info: RunInfo) -> None:
        self.run_info = info
        self.backend_label.setText(f"backend: {info.backend}")
        self.frames_view.set_counts(info.n_angles, info.n_spots)
        self.frames_view.set_log_scale(info.modality == "farfield")
        log.info("output folder: %s", info.output_dir)

    def _on_events(self, events: list) -> None:
        for ev in events:
            if ev.kind in ("batch", "epoch"):
                self.loss_view.add_event(ev)
                self._show_progress(ev)
                if ev.kind == "epoch":
                    log.info("epoch %d/%d: loss %.6g", ev.epoch, ev.n_epochs, ev.loss)
            elif ev.kind == "state":
                # a late "running" must not undo a Stop the user has already asked for
                if ev.state in ("running", "paused") and self.run_state != "stopping":
                    self._set_run_state(ev.state)
                    self.statusBar().showMessage(
                        "paused: the parameters that are not greyed out can be changed; they "
                        "apply on Resume" if ev.state == "paused" else "running", 8000)
            elif ev.kind == "checkpoint":
                log.info("checkpoint written: %s", ev.message)

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
        """Draw a snapshot; the time it takes goes back to the worker's budget."""
        t0 = time.perf_counter()
        try:
            self.show_snapshot(snap)
        finally:
            self.controller.snapshot_handled(time.perf_counter() - t0)

    def show_snapshot(self, snap) -> None:
        self.last_snapshot = snap
        energy = self.run_info.energy_ev if self.run_info else \
            (self.dataset.energy_ev if self.dataset else None)
        self.live.show_snapshot(snap, energy)
        self._volumes = None  # built from last_snapshot when the 3D view needs it
        if self.tabs.currentWidget() is self.napari_view and \
                time.monotonic() - self._napari_shown_at > NAPARI_MIN_INTERVAL_S:
            self.show_3d()

    def _on_run_finished(self, path, state: str) -> None:
        self.result_path = Path(path) if path else None
        if path:
            self.statusBar().showMessage(f"{state}: result written to {path}", 15000)
        if self.last_snapshot is not None and self.tabs.currentWidget() is self.napari_view:
            self.show_3d()

    def _on_run_failed(self, exc: BaseException, tb: str) -> None:
        self.statusBar().showMessage("the reconstruction failed", 15000)
        errors.report_exception(self, exc, "Reconstruction", title="Reconstruction failed",
                                details=tb)

    def _on_thread_stopped(self) -> None:
        stats = self.controller.last_stats
        if stats and stats.run_s > 0:
            log.info("live views: %d snapshots, %.2f s on the solver thread + %.2f s drawing = "
                     "%.1f %% of %.1f s run time", stats.n_snapshots, stats.callback_s,
                     stats.gui_s, 100 * stats.overhead_fraction(), stats.run_s)
        self._set_run_state("idle")

    # ---- 3D ----------------------------------------------------------------------------------
    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.napari_view:
            self.show_3d()

    def _current_volumes(self) -> VolumeSet | None:
        if self._volumes is None and self.last_snapshot is not None:
            s = self.last_snapshot
            if s.delta is None and s.object is not None:
                return None  # phase/amplitude volumes are computed off the UI thread first
            self._volumes = VolumeSet(object_volumes(s.delta, s.beta, None), s.pixel_size_m,
                                      s.slice_thickness_m, s.truth,
                                      self.run_info.truth_voxel_m if self.run_info else None,
                                      f"current estimate, epoch {s.epoch}")
        return self._volumes

    def show_3d(self) -> None:
        """Show the current estimate (or the last opened result) in the napari tab."""
        if self.tabs.currentWidget() is not self.napari_view:
            self.tabs.setCurrentWidget(self.napari_view)  # re-enters via _on_tab_changed
            return
        vs = self._current_volumes()
        if vs is None and self.last_snapshot is not None:  # a complex object: derive volumes
            s = self.last_snapshot
            voxel = self.run_info.truth_voxel_m if self.run_info else None
            self.tasks.submit("preparing the 3D view",
                              lambda: VolumeSet(object_volumes(None, None, s.object),
                                                s.pixel_size_m, s.slice_thickness_m, s.truth,
                                                voxel, f"current estimate, epoch {s.epoch}"),
                              self._show_volumes,
                              lambda exc, tb: errors.report_exception(self, exc, "3D view",
                                                                      details=tb))
            return
        if vs is None:
            self.napari_view.title.setText("No volume yet: start a reconstruction or open a "
                                           "result file.")
            return
        self._show_volumes(vs)

    def _show_volumes(self, vs: VolumeSet) -> None:
        self._volumes = vs
        try:
            self.napari_view.show_volume(vs.volumes, vs.pixel_size_m, vs.slice_thickness_m,
                                         vs.truth, vs.truth_voxel_m, vs.title)
            self._napari_shown_at = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - e.g. no OpenGL: the rest keeps working
            errors.report_exception(self, exc, "3D view (napari)")

    def open_result_in_napari(self) -> None:
        path = dialogs.open_file(self, "Open result in napari", dialogs.RESULT_FILTER)
        if path:
            self.open_path(path, then_3d=True)

    def show_result(self, path: str, res: dict, volumes: VolumeSet,
                    switch_to_3d: bool = False) -> None:
        """Show a result/checkpoint file in the views and (on request) in the 3D tab."""
        if self.controller.is_active():
            log.info("a run is active: %s goes to the 3D view only", path)
        else:
            self.last_snapshot = None
            self.live.show_result(res, volumes.pixel_size_m, volumes.slice_thickness_m)
        self._volumes = volumes
        log.info("opened %s %s (epoch %s)", res.get("kind", "result"), path, res.get("epoch"))
        if switch_to_3d or self.tabs.currentWidget() is self.napari_view:
            self.show_3d()

    # ---- misc --------------------------------------------------------------------------------
    def _on_busy(self, busy: bool, label: str) -> None:
        self.busy_label.setText(f"{label}\u2026" if busy else "")

    def _about(self) -> None:
        from PyQt6.QtWidgets import QMessageBox  # noqa: PLC0415

        QMessageBox.about(self, "About Slicewise",
                          f"<b>Slicewise {__version__}</b><br>Multislice X-ray reconstruction "
                          "(ptychography, holography, tomography) by automatic differentiation."
                          f"<br><br>Log file: {self.log_panel.log_file or 'none'}")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        if self.controller.is_active():
            if not dialogs.confirm(
                    self, "Quit Slicewise",
                    "A reconstruction is running. Stop it and quit?\n\nThe run stops after the "
                    "current minibatch and writes its checkpoint and result."):
                event.ignore()
                return
            self.controller.stop()
            self._set_run_state("stopping")
            if not self.controller.wait(120):
                errors.show_error(self, "Quit Slicewise", "The solver did not stop within two "
                                  "minutes; the application will not quit yet.")
                event.ignore()
                return
        self._refresh_timer.stop()
        self._save_settings()
        self.tasks.shutdown()
        self.napari_view.close_viewer()
        if self.dataset is not None:
            self.dataset.close()
        self.log_panel.detach()
        event.accept()
