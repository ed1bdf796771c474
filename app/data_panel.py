"""Data panel: what the open data set holds (geometry in physical units) and a frame browser.

Frames come from ``Dataset.frames`` in the model convention (far field: zero frequency at
[0, 0]); they are ``fftshift``-ed here for display so the centre of the diffraction pattern is in
the middle, as on the detector. One frame is read per slider move, which is cheap even for large
files (reads are lazy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QCheckBox, QFormLayout, QHBoxLayout, QLabel, QSlider, QSpinBox,
                             QVBoxLayout, QWidget)

from slicewise.engine.geometry import is_tomography
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.readers import field_line

from .views.common import (colormap, colormap_combo, format_length, frame_units, log_image,
                           modality_text, robust_levels, set_scaled_axis, spot_name)
from .views.measure import MeasureTool, mode_combo


def summary_rows(ds: Dataset) -> list[tuple[str, str]]:
    """(label, text) pairs describing ``ds`` in the units a beamline scientist uses."""
    rows = [("file", Path(ds.source_path).name if ds.source_path else "(in memory)"),
            ("layout", str(ds.meta.get("layout", "?"))),
            ("modality", modality_text(ds.modality, ds.n_tiles) +
             (", tomography" if is_tomography(ds.angles_rad) else "")),
            ("field", field_line(ds, short=True)),
            ("frames", f"{ds.n_angles} \u00d7 {ds.n_spots} \u00d7 {ds.frame_shape[0]}"
                       f"\u00d7{ds.frame_shape[1]} px  (angles \u00d7 spots \u00d7 y\u00d7x)"),
            ("energy", f"{ds.energy_ev / 1e3:.4g} keV  (\u03bb = {format_length(ds.wavelength_m)})"),
            ("pixel size", format_length(ds.pixel_size_m)),
            ("slice thickness", format_length(ds.slice_thickness_m))]
    a = np.degrees(ds.angles_rad)
    rows.append(("angles", f"{ds.n_angles}" + (f"  ({a.min():.4g}\u00b0 to {a.max():.4g}\u00b0)"
                                                if ds.n_angles > 1 else f"  ({a[0]:.4g}\u00b0)")))
    if ds.positions_px is not None:
        rows.append(("scan positions", f"{ds.n_tiles}"))
    if ds.distances_m is not None:
        rows.append(("distances", ", ".join(format_length(d) for d in ds.distances_m)))
    ny, nx = ds.object_shape_yx
    rows.append(("object grid", f"{ny} \u00d7 {nx} px  ({format_length(ny * ds.pixel_size_m)} "
                                f"\u00d7 {format_length(nx * ds.pixel_size_m)})"))
    rows.append(("probe", f"{ds.probe.shape[0]} mode(s) in the file" if ds.probe is not None
                 else "none in the file"))
    if len(ds.truth):
        rows.append(("ground truth", ", ".join(ds.truth)))
    rows.extend(measured_rows(ds))
    return rows


def measured_rows(ds: Dataset) -> list[tuple[str, str]]:
    """What a measured-data reader (CXI, DXchange) found: mask, counts, detector geometry."""
    m, rows = ds.meta, []
    if getattr(ds, "mask", None) is not None:
        rows.append(("detector mask", f"{int((ds.mask == 0).sum())} bad pixel(s), excluded from "
                                      "the loss"))
    if "frames_dtype" in m:
        rows.append(("stored as", f"{m['frames_dtype']} "
                     + ("(photon counts: Poisson loss)" if m.get("integer_counts")
                        else "(floats: amplitude loss)")))
    if "detector_pixel_m" in m:
        rows.append(("detector", f"{format_length(m['detector_pixel_m'])} pixels at "
                                 f"{m['detector_distance_m']:.4g} m; a cone beam needs "
                                 "data.source_to_sample_m"))
    return rows


class DataSummary(QWidget):
    """The data set's geometry as a read-only form."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.set_dataset(None)

    def set_dataset(self, ds: Dataset | None) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        if ds is None:
            hint = QLabel("No data set open.\nFile \u203a Open\u2026, drop a file on the window, or "
                          "File \u203a New simulated data set\u2026")
            hint.setWordWrap(True)
            self.form.addRow(hint)
            return
        for label, text in summary_rows(ds):
            value = QLabel(text)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            value.setToolTip(ds.source_path if label == "file" and ds.source_path else text)
            self.form.addRow(label, value)

    def _note(self, label: str, text: str) -> None:
        value = QLabel(text)
        value.setWordWrap(True)
        value.setStyleSheet("color: #c0392b;")
        value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form.insertRow(0, label, value)

    def set_missing(self, path: str) -> None:
        """data.path names no file: say so instead of describing another file."""
        self.set_dataset(None)
        while self.form.rowCount():
            self.form.removeRow(0)
        self._note("data file", f"no file {path}")

    def set_bad_frames(self, bad: list, checked: int) -> None:
        if bad:
            listing = ", ".join(f"({a}, {s})" for a, s in bad[:6])
            more = f" … ({len(bad)} in all)" if len(bad) > 6 else ""
            self._note("bad frames", f"NaN, infinite or negative values at (angle, position) "
                       f"{listing}{more}")

    def field_text(self, label: str) -> str | None:
        """The text shown for ``label`` (tests)."""
        for i in range(self.form.rowCount()):
            lab = self.form.itemAt(i, QFormLayout.ItemRole.LabelRole)
            val = self.form.itemAt(i, QFormLayout.ItemRole.FieldRole)
            if lab and val and lab.widget().text() == label:
                return val.widget().text()
        return None


class FrameBrowser(QWidget):
    """Measured frames of the data set: sliders over angle and position, log scale."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.bad: set = set()
        self.angle_slider, self.angle_spin = QSlider(Qt.Orientation.Horizontal), QSpinBox()
        self.spot_slider, self.spot_spin = QSlider(Qt.Orientation.Horizontal), QSpinBox()
        for sl, sp in ((self.angle_slider, self.angle_spin), (self.spot_slider, self.spot_spin)):
            sl.valueChanged.connect(sp.setValue)
            sp.valueChanged.connect(sl.setValue)
            sl.valueChanged.connect(self._show_frame)
        self.log = QCheckBox("log\u2081\u2080")
        self.log.setChecked(True)
        self.log.toggled.connect(self._show_frame)
        self.cmap = colormap_combo("magma")
        self.frame_info = QLabel("no data set open")
        self.glw = pg.GraphicsLayoutWidget()
        self.plot = pg.PlotItem(title="measured frame")
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.setLabel("bottom", "detector x (px)")
        self.plot.setLabel("left", "detector y (px)")
        self.glw.addItem(self.plot)
        self.img = pg.ImageItem()
        self.plot.addItem(self.img)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("magma"), interactive=False,
                                   width=14)
        self.bar.setImageItem(self.img)
        self.glw.addItem(self.bar, 0, 1)
        self.cmap.currentTextChanged.connect(lambda n: self.bar.setColorMap(colormap(n)))

        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.spot_label = QLabel("position")
        for label, sl, sp in ((QLabel("angle"), self.angle_slider, self.angle_spin),
                              (self.spot_label, self.spot_slider, self.spot_spin)):
            h = QHBoxLayout()
            h.addWidget(label)
            h.addWidget(sl, 1)
            h.addWidget(sp)
            lay.addLayout(h)
        self.measure = mode_combo()
        self.tool = MeasureTool(self.plot, {"frame": self.img}, self._units,
                                lambda: "log\u2081\u2080 intensity" if self.log.isChecked()
                                else "intensity")
        self.measure.currentIndexChanged.connect(
            lambda: self.tool.set_mode(self.measure.currentData()))
        h = QHBoxLayout()
        h.addWidget(self.log)
        h.addWidget(self.cmap)
        h.addWidget(self.measure)
        h.addWidget(self.frame_info, 1)
        lay.addLayout(h)
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.tool.panel)
        self._set_ranges(1, 1)

    def _units(self) -> tuple[str, float]:
        ds = self.dataset
        if ds is None or self.img.image is None:
            return "px", 1.0
        return frame_units(self.img.image.shape, ds.pixel_size_m, ds.modality == "farfield")

    def set_bad_frames(self, bad: list) -> None:
        self.bad = {tuple(x) for x in bad}
        self._show_frame()

    def set_dataset(self, ds: Dataset | None) -> None:
        self.dataset, self.bad = ds, set()
        if ds is not None:  # holography's second index is the detector distance
            self.spot_label.setText(spot_name(ds.modality, ds.n_distances, ds.n_tiles))
        if ds is not None:  # holograms are ~1 everywhere: linear; diffraction: decades, log
            self.log.blockSignals(True)
            self.log.setChecked(ds.modality == "farfield")
            self.log.blockSignals(False)
        if ds is None:
            self.img.clear()
            self.frame_info.setText("no data set open")
            self._set_ranges(1, 1)
            return
        self._set_ranges(ds.n_angles, ds.n_spots)
        self._show_frame()

    def has_data(self) -> bool:
        return self.dataset is not None and self.img.image is not None

    def _set_ranges(self, n_angles: int, n_spots: int) -> None:
        for w, n in ((self.angle_slider, n_angles), (self.angle_spin, n_angles),
                     (self.spot_slider, n_spots), (self.spot_spin, n_spots)):
            w.blockSignals(True)
            w.setRange(0, max(0, n - 1))
            w.setValue(0)
            w.blockSignals(False)

    def _show_frame(self) -> None:
        ds = self.dataset
        if ds is None:
            return
        a, s = self.angle_slider.value(), self.spot_slider.value()
        try:
            frame = ds.frames([a], [s])[0, 0]
        except Exception as exc:  # noqa: BLE001 - a bad frame: said here, not in a dialog
            self.img.clear()
            self.plot.setTitle(f"measured frame: angle {a}, position {s} cannot be shown")
            self.frame_info.setText(str(exc))
            return
        if ds.modality == "farfield":
            frame = np.fft.fftshift(frame)
        img = log_image(frame) if self.log.isChecked() else frame.astype(np.float32)
        levels = robust_levels(img, 1.0, 99.9)
        new_extent = self.img.image is None or self.img.image.shape != img.shape
        self.img.setImage(img, autoLevels=False, levels=levels)
        if new_extent:
            self.plot.autoRange()
        self.bar.setLevels(levels)
        set_scaled_axis(self.bar.axis, "log\u2081\u2080 intensity" if self.log.isChecked()
                        else "intensity", *levels)
        where = f"angle {np.degrees(ds.angles_rad[a]):.4g}\u00b0"
        if ds.distances_m is not None:
            d, t = ds.split_spot(s)
            where += f", distance {format_length(ds.distances_m[int(d)])}, tile {int(t)}"
        elif ds.positions_px is not None:
            y, x = ds.positions_px[s]
            where += f", probe at (y, x) = ({y:.1f}, {x:.1f}) px"
        self.frame_info.setText(f"{where}; total intensity {float(frame.sum()):.4g}")
        self.plot.setTitle(f"measured frame: angle {a}, position {s}")
        self.tool.refresh()
