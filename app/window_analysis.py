"""What the main window offers beyond watching a run (a mixin of
:class:`.main_window.MainWindow`): comparing two results (or a result with its ground truth), the
split-half resolution (FRC), and exporting views, slices and the loss history.

Line profiles and regions are tools of the image views themselves (:mod:`.views.measure`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt6.QtWidgets import QMenu

from . import dialogs
from .export import export_loss_csv, export_tiff, export_view
from .file_jobs import frc_near, load_frc, load_hdf5
from .views.compare_view import CompareView
from .views.frc_view import FRCView

log = logging.getLogger("slicewise.app")

IMAGE_FILTER = "PNG image (*.png);;SVG drawing (*.svg)"
TIFF_FILTER = "TIFF image (*.tif *.tiff)"
CSV_FILTER = "CSV table (*.csv)"


class AnalysisMixin:
    def _build_analysis(self) -> None:
        """The Compare and Resolution tabs (after the 3D tab)."""
        self.compare_view = CompareView()
        self.frc_view = FRCView()
        self.tabs.addTab(self.compare_view, "Compare")
        self.tabs.addTab(self.frc_view, "Resolution (FRC)")
        self.compare_view.pick.clicked.connect(lambda _=False: self.compare_with_result())

    def build_analysis_menus(self, make_action) -> None:
        A = lambda *a, **k: make_action(self, *a, **k)  # noqa: E731
        self.act_compare = A("Compare with another result\u2026", self.compare_with_result,
                             "Ctrl+Shift+C", "the result on screen beside another one, and their "
                             "difference: same slice, same levels")
        self.act_compare_truth = A("Compare with the ground truth", self.compare_with_truth,
                                   "Ctrl+Shift+T", "the result on screen beside the data set's "
                                   "ground truth (simulated data)")
        self.act_frc = A("Open a resolution table (FRC)\u2026", self.open_frc_dialog, None,
                         "the split-half FRC curve of `slicewise reconstruct --halves` (frc.h5)")
        self.act_export_png = A("Current view as PNG\u2026", lambda: self.export_current(".png"),
                                "Ctrl+E", "the image on screen with its colour bar and scale bar")
        self.act_export_svg = A("Current view as SVG\u2026", lambda: self.export_current(".svg"))
        self.act_export_tiff = A("Slice as TIFF\u2026", self.export_slice_tiff, None,
                                 "the slice on screen as 32-bit floats, with its pixel size")
        self.act_export_csv = A("Loss as CSV\u2026", self.export_loss, None,
                                "per-epoch loss, its terms and the validation loss")
        mb = self.menuBar()
        help_menu = mb.actions()[-1]    # Analysis and Export go before Help
        analysis = QMenu("&Analysis", self)
        for a in (self.act_compare, self.act_compare_truth, None, self.act_frc):
            analysis.addSeparator() if a is None else analysis.addAction(a)
        export = QMenu("&Export", self)
        for a in (self.act_export_png, self.act_export_svg, None, self.act_export_tiff,
                  self.act_export_csv):
            export.addSeparator() if a is None else export.addAction(a)
        mb.insertMenu(help_menu, analysis)
        mb.insertMenu(help_menu, export)

    # ---- comparing ---------------------------------------------------------------------------
    def current_volumes(self):
        """The :class:`.file_jobs.VolumeSet` on screen: an opened result, else the run's last
        snapshot; None when there is none."""
        if self._volumes is not None:
            return self._volumes
        snap = self.session.last_snapshot
        return None if snap is None else self._snapshot_volumes(snap, self.session.run_info)

    def _like_slice_view(self):
        sv = self.slice_view
        return sv.quantity.currentData(), sv.axis.currentData(), sv.slider.value()

    def compare_with_truth(self) -> None:
        vs = self.current_volumes()
        if vs is None or not vs.truth:
            self.report("Compare", "No ground truth to compare with: open a result or run "
                        "one on a data set that holds a ground truth (simulated data).")
            return
        tdz, tpx = vs.truth_voxel_m or (vs.slice_thickness_m, vs.pixel_size_m)
        self.show_workspace()
        self.compare_view.set_pair(vs.volumes, (vs.slice_thickness_m, vs.pixel_size_m,
                                                vs.pixel_size_m), vs.truth, (tdz, tpx, tpx),
                                   vs.title, "ground truth of the data set",
                                   like=self._like_slice_view())
        self.tabs.setCurrentWidget(self.compare_view)

    def compare_with_result(self, path: str | None = None) -> None:
        """A beside another result file (chosen in a dialog when ``path`` is None)."""
        if self.current_volumes() is None:
            self.report("Compare", "Open a result (File \u203a Open) or run one first; it is "
                        "A, and the result chosen next is B.")
            return
        path = path or dialogs.open_file(self, "Compare with another result",
                                         dialogs.RESULT_FILTER)
        if not path:
            return
        self.tasks.submit(f"reading {Path(path).name}", lambda: load_hdf5(path),
                          lambda res: self._compare_loaded(path, res),
                          lambda exc, tb: self.report_exc(exc, f"Comparing with "
                                                               f"{Path(path).name}", "Compare"))

    def _compare_loaded(self, path: str, res) -> None:
        vs = self.current_volumes()
        if res[0] != "result":
            self.report("Compare", f"{Path(path).name} is not a result file (result.h5 or "
                        "checkpoint.h5 of a run).")
            return
        b = res[2]
        self.show_workspace()
        self.compare_view.set_pair(vs.volumes, (vs.slice_thickness_m, vs.pixel_size_m,
                                                vs.pixel_size_m),
                                   b.volumes, (b.slice_thickness_m, b.pixel_size_m,
                                               b.pixel_size_m), vs.title, b.title,
                                   like=self._like_slice_view())
        self.tabs.setCurrentWidget(self.compare_view)
        log.info("comparing %s with %s", vs.title, path)

    # ---- resolution --------------------------------------------------------------------------
    def open_frc_dialog(self) -> None:
        path = dialogs.open_file(self, "Open a resolution table (frc.h5)",
                                 "FRC tables (frc.h5 *.h5);;All files (*)")
        if path:
            self.open_path(path)

    def show_frc(self, path: str, res, sources, switch: bool = True) -> None:
        self.frc_view.set_result(res, sources, title=str(path))
        log.info("resolution of %s: %s", path, res.summary())
        if switch:
            self.show_workspace()
            self.tabs.setCurrentWidget(self.frc_view)

    def _frc_beside(self, result_path: str) -> None:
        """A result of ``slicewise reconstruct --halves`` (OUT/odd/result.h5): its FRC table
        OUT/frc.h5 fills the Resolution tab."""
        table = frc_near(result_path)
        if table is None:
            return
        try:
            res, sources = load_frc(table)
        except Exception as exc:  # noqa: BLE001 - a broken table: said in the log only
            log.warning("%s: %s", table, exc)
            return
        self.show_frc(str(table), res, sources, switch=False)

    # ---- exporting ---------------------------------------------------------------------------
    def _current_view_item(self):
        """The graphics item "the current view" means, by tab: the object slice, the measured
        frame, the comparison, the FRC curve (None: the 3D tab)."""
        w = self.tabs.currentWidget()
        return {self.live: self.slice_view.glw.ci, self.frames_browser: self.frames_browser.glw.ci,
                self.compare_view: self.compare_view.glw.ci,
                self.frc_view: self.frc_view.plot.getPlotItem()}.get(w)

    def _export_name(self, what: str, suffix: str) -> str:
        base = self.session.result_path.parent.name if self.session.result_path else "slicewise"
        return f"{base}_{what}{suffix}"

    def export_current(self, suffix: str) -> None:
        item = self._current_view_item()
        if item is None or self.on_start_page():
            self.report("Export", "The 3D view is exported from its napari window (Pop out, then "
                        "File \u203a Save Screenshot); here: the slice, frame, comparison and "
                        "resolution views.")
            return
        what = self.slice_view.describe() if self.tabs.currentWidget() is self.live else \
            self.tabs.tabText(self.tabs.currentIndex()).split(" ")[0].lower()
        path = dialogs.save_file(self, "Export the view", IMAGE_FILTER,
                                 self._export_name(what, suffix))
        if path:
            self._write(lambda p: export_view(item, p), path, suffix)

    def export_slice_tiff(self) -> None:
        img = self.slice_view.image()
        if img is None:
            self.report("Export", "No slice on screen yet: open a result or run one.")
            return
        path = dialogs.save_file(self, "Export the slice as TIFF", TIFF_FILTER,
                                 self._export_name(self.slice_view.describe(), ".tif"))
        if path:
            px = self.slice_view.image_pixel_m()
            self._write(lambda p: export_tiff(img, px, p), path, ".tif")

    def export_loss(self) -> None:
        if not self.loss_view.epochs:
            self.report("Export", "No loss history yet: open a result or run one.")
            return
        path = dialogs.save_file(self, "Export the loss as CSV", CSV_FILTER,
                                 self._export_name("loss", ".csv"))
        if path:
            self._write(lambda p: export_loss_csv(self.loss_view, p), path, ".csv")

    def _write(self, write, path: str, suffix: str) -> None:
        """``write(path)``, the suffix added when the name has none of the kind's."""
        p = Path(path)
        kinds = ({".png", ".svg"}, {".tif", ".tiff"}, {".csv"})
        if p.suffix.lower() not in next(k for k in kinds if suffix in k):
            p = p.with_name(p.name + suffix)
        try:
            write(p)
        except Exception as exc:  # noqa: BLE001 - a dialog, not a crash
            self.report_exc(exc, f"Exporting {p.name}", "Export")
            return
        self.statusBar().showMessage(f"exported {p}", 10000)
        log.info("exported %s", p)
