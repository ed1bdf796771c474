"""What the main window opens and saves: data sets, configurations, results, the demo.

A mixin of :class:`.main_window.MainWindow`; file reading runs on :class:`.tasks.TaskRunner`
threads, the window only shows what comes back.
"""

from __future__ import annotations

import logging
from pathlib import Path

from slicewise.engine import __version__
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.errors import ConfigError
from slicewise.engine.io.readers import open_dataset
from slicewise.engine.recon.setup.data_field import data_statements
from slicewise.engine.recon import config as cfgmod

from . import dialogs, settings
from .file_jobs import (bad_frames, config_of_result, data_file_candidates, find_data_file,
                        load_hdf5, truth_of)

log = logging.getLogger("slicewise.app")

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".cxi")  # .cxi: CXI 1.x (HDF5)


class FilesMixin:
    # ---- opening -----------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path = dialogs.open_file(self, "Open data, configuration or result", dialogs.DATA_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str, then_3d: bool = False) -> None:
        """Open a data file, a configuration (.toml) or a result file, by its content."""
        p = Path(path)
        if not p.exists():
            self.report("Open", f"File not found: {path}")
            return
        # the file asked for last wins, even if one asked for before takes longer to read
        self._open_seq += 1
        seq = self._open_seq
        suffix = p.suffix.lower()
        if suffix == ".toml":
            if self.controller.is_active():  # e.g. dropped on the window during a run
                self.report("Open", "A reconstruction is running; stop it before loading "
                            "another configuration.")
                return
            self.load_config(str(p))
        elif suffix in HDF5_SUFFIXES:
            self.statusBar().showMessage(f"opening {p.name}\u2026")
            self.tasks.submit(f"opening {p.name}", lambda: load_hdf5(str(p)),
                              lambda res: self._on_hdf5_loaded(str(p), res, then_3d, seq),
                              lambda exc, tb: self._open_failed(str(p), exc, tb))
        else:
            self.report("Open", f"{p.name}: unknown file type. Slicewise opens HDF5 data (.h5, "
                        ".hdf5, .cxi, .nxs: Slicewise, CXI, DXchange, Adorym) or result files and "
                        "configurations (.toml).")

    def _open_failed(self, path: str, exc: BaseException, tb: str) -> None:
        self.statusBar().clearMessage()
        self._autostart = False
        self.report_exc(exc, f"Opening {Path(path).name}", "Open", tb)

    def _on_hdf5_loaded(self, path: str, res, then_3d: bool = False, seq: int = 0) -> None:
        if seq and seq != self._open_seq:
            log.info("%s: another file was opened meanwhile; not shown", path)
            if res[0] == "data":
                res[1].close()
            return
        self.statusBar().clearMessage()
        settings.add_recent_file(path)
        if res[0] == "frc":
            self.show_frc(path, res[1], res[2])
            return
        if res[0] == "data":
            if self.controller.is_active():  # a run started meanwhile: do not swap its data
                res[1].close()
                self.report("Open", "A reconstruction is running; stop it before opening "
                            "another data set.")
                return
            self.set_dataset(res[1], path)
        else:
            self.show_result(path, res[1], res[2], switch_to_3d=then_3d)

    def set_dataset(self, ds: Dataset, path: str | None = None,
                    keep_views: bool = False) -> None:
        """Show ``ds`` (data summary, frame browser) and point data.path at its file.
        ``keep_views``: ``ds`` is the data of the result on screen, whose views stay (it adds
        the measured frames and, when the result could not find it, the ground truth)."""
        self.session.set_dataset(ds)
        self.summary.set_dataset(ds)
        self.frames_browser.set_dataset(ds)
        self.frames_view.set_counts(ds.n_angles, ds.n_spots)
        self.frames_view.set_log_scale(ds.modality == "farfield")
        self.frames_view.set_modality(ds.modality, ds.n_distances, ds.n_tiles)
        self.frames_view.set_pixel_size(ds.pixel_size_m, ds.modality == "farfield")
        if path:
            self.params.set_value("data.path", str(Path(path).resolve()))
        self.params.set_file_values(ds)
        if keep_views:
            self._add_truth(ds)
        else:  # another data set: the result on screen (and its name in the title) goes
            self._result_data = None
            self.session.set_result(None)
            self.reset_run()
        self.live.show_data_frame(ds, scan=not keep_views)
        log.info("opened %s: %s data, %d angle(s) x %d spot(s) of %dx%d px", ds.source_path,
                 ds.modality, ds.n_angles, ds.n_spots, *ds.frame_shape)
        if not self.controller.is_active():  # a run started by --start: no competition
            self.controller.prewarm()
            self._check_frames(ds)
        self.autostart_check()

    def _check_frames(self, ds: Dataset) -> None:
        """Frames with NaN, infinite or negative values are named now, not at the first
        minibatch that reads them."""
        def done(report) -> None:
            bad, checked = report
            if self.session.dataset is not ds:
                return
            self.summary.set_bad_frames(bad, checked)
            self.frames_browser.set_bad_frames(bad)
            if bad:
                listing = ", ".join(f"(angle {a}, position {s})" for a, s in bad[:12])
                more = f" and {len(bad) - 12} more" if len(bad) > 12 else ""
                self.report("Data set", f"{Path(ds.source_path or '').name}: {len(bad)} frame(s) "
                            f"contain NaN, infinite or negative values: {listing}{more}.\n\n"
                            "A reconstruction would refuse them; repair or exclude those "
                            "frames in the file.")

        self.tasks.submit("checking the frames", lambda: bad_frames(ds), done,
                          lambda exc, tb: log.warning("frame check failed: %s", exc))

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt name
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
        event.acceptProposedAction()

    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = settings.recent_files()
        for f in files:
            self.recent_menu.addAction(Path(f).name, lambda f=f: self.open_path(f)).setToolTip(f)
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", settings.clear_recent_files)

    # ---- configuration -----------------------------------------------------------------------
    def load_config_dialog(self) -> None:
        path = dialogs.open_file(self, "Load configuration", dialogs.CONFIG_FILTER)
        if path:
            self.load_config(path)

    def load_config(self, path: str) -> None:
        try:
            cfg = cfgmod.from_toml(Path(path))
        except Exception as exc:  # noqa: BLE001 - bad TOML, unknown keys: a dialog, not a crash
            self.report_exc(exc, f"Loading {Path(path).name}", "Configuration")
            return
        self.session.set_config_path(path)
        self._result_data = None
        self.session.set_result(None)
        self.params.set_config(cfg)  # its data file is opened by _sync_data_with_config
        settings.add_recent_file(path)
        log.info("loaded configuration %s", path)
        self.autostart_check()

    def _sync_data_with_config(self) -> None:
        """When data.path names another existing file (typed, or from a loaded configuration),
        show that data set too; a path to nothing is flagged in the form as it is typed."""
        s = self.session
        problem = s.data_path_problem()
        self.params.set_external_error("data.path", problem or None)
        if problem:
            self.summary.set_missing(str(s.resolved_data_path()))
        p = s.resolved_data_path()
        if p is None or problem or self.controller.is_active():
            return
        p = p.resolve()
        if s.showing(p) or self._opening_data == p:
            return
        self._opening_data = p

        def done(ds: Dataset) -> None:
            self._opening_data = None
            cur = self.session.resolved_data_path()
            if cur is not None and cur.resolve() == p:  # data.path stays as written
                self.set_dataset(ds, None, keep_views=self._result_data == p)
            else:
                ds.close()  # the field changed again meanwhile

        def failed(exc, tb) -> None:
            self._opening_data = None
            self._open_failed(str(p), exc, tb)

        try:  # the form's statements about the field decide over the reader's guess
            statements = data_statements(self.params.config())
        except ConfigError:
            statements = None  # contradicting statements: the form flags them
        self.tasks.submit(f"opening {p.name}", lambda: open_dataset(p, statements=statements),
                          done, failed)

    def save_config_dialog(self) -> None:
        cp = self.session.config_path
        name = Path(cp).name if cp else "reconstruction.toml"
        path = dialogs.save_file(self, "Save configuration", dialogs.CONFIG_FILTER, name)
        if path:
            self.save_config(path if path.endswith(".toml") else path + ".toml")

    def save_config(self, path: str) -> bool:
        try:
            cfgmod.to_toml(self.params.config(), path,
                           header=f"Slicewise {__version__} reconstruction configuration\n"
                                  "Run with: slicewise reconstruct this_file.toml")
        except Exception as exc:  # noqa: BLE001
            self.report_exc(exc, f"Saving {Path(path).name}", "Configuration")
            return False
        self.session.set_config_path(path)
        settings.add_recent_file(path)
        log.info("saved configuration %s", path)
        return True

    # ---- results -----------------------------------------------------------------------------
    def show_result(self, path: str, res: dict, volumes, switch_to_3d: bool = False) -> None:
        """Show a result/checkpoint file: its slices, loss, probe and positions, its
        configuration in the form (so that it can be continued or run again) with the data
        file found (or asked for), and, on request, its volume in 3D."""
        if self.controller.is_active():
            log.info("a run is active: %s goes to the 3D view only", path)
        else:
            self.session.last_snapshot = None
            self.live.show_result(res, volumes.pixel_size_m, volumes.slice_thickness_m)
            data = res["data_file"] if "data_file" in res else find_data_file(path, res)
            if data is None:
                data = self._ask_for_data(path, res)
            cfg = config_of_result(path, res, data)
            # its data set opens next (_sync_data_with_config) and must keep these views
            self._result_data = None if data is None else Path(data).resolve()
            self.session.set_result(path)
            if cfg is not None:
                self.session.set_config_path(None)
                self.params.set_config(cfg)
        self._volumes = volumes
        if res.get("frc_file"):   # a half of a split-half run: its resolution too
            self._frc_beside(path)
        log.info("opened %s %s (epoch %s)", res.get("kind", "result"), path, res.get("epoch"))
        if switch_to_3d or self.tabs.currentWidget() is self.napari_view:
            self.show_3d()

    def _ask_for_data(self, path: str, res: dict) -> Path | None:
        """The result's data file is nowhere it could be: the user is asked where it is (never
        in a scripted run, which reports the missing file when it tries to start)."""
        names = [c.name for c in data_file_candidates(path, res)]
        if not names or self.quit_when_done:
            return None
        log.info("%s: its data file %s was not found; asking for it", path, names[0])
        chosen = dialogs.open_file(self, f"Where is {names[0]}, the data of this result?",
                                   dialogs.DATA_FILTER)
        return Path(chosen).resolve() if chosen else None

    def _add_truth(self, ds: Dataset) -> None:
        """The ground truth of the result's data set, for the 3D view, when the result could not
        find the data file itself (it was chosen in a dialog)."""
        vs = self._volumes
        if vs is not None and not vs.truth and len(ds.truth):
            vs.truth, vs.truth_voxel_m = truth_of(ds)

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
            self.report_exc(exc, "The demo is not available in this installation")
            return
        from .log_panel import log_dir  # noqa: PLC0415

        folder = log_dir().parent / "demo"
        self.statusBar().showMessage("preparing the cone demo data set\u2026")
        self.tasks.submit("preparing the demo", lambda: self._demo_job(demo, folder),
                          lambda result: self._on_demo_ready(result, autostart),
                          lambda exc, tb: self.report_exc(exc, "Cone demo", details=tb))

    @staticmethod
    def _demo_job(demo, folder: Path):
        path = Path(demo.ensure_demo_data(folder))
        cfg = demo.demo_config(path, folder / "results")
        return cfg, open_dataset(path)

    def _on_demo_ready(self, result, autostart: bool = False) -> None:
        cfg, ds = result
        self.statusBar().clearMessage()
        self.session.set_config_path(None)
        self.set_dataset(ds, ds.source_path)
        self.params.set_config(cfg)
        if autostart:
            self.request_autostart()
        log.info("cone demo ready: press Start (F5)")
