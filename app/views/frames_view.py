"""Measured vs modelled diffraction/hologram frame, side by side, sharing one colour scale.

The frame shown is chosen here (angle, position); the run controller asks the solver for that
frame in its next snapshot, so the comparison follows the choice within a fraction of a second.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from .common import (colormap, colormap_combo, frame_units, log_image, robust_levels,
                     set_scaled_axis, spot_name)
from .measure import MeasureTool, mode_combo


class FramesView(QWidget):
    frameChanged = pyqtSignal(int, int)  # angle index, spot index

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._measured = self._modelled = None
        self.angle = QSpinBox()
        self.spot = QSpinBox()
        self.angle.setToolTip("rotation angle index")
        self.spot.setToolTip("scan position (ptychography) or distance x tile (holography) index")
        self.log = QCheckBox("log\u2081\u2080")
        self.log.setChecked(True)
        self.cmap = colormap_combo("magma")
        self.info = QLabel("")
        self.info.setWordWrap(True)   # a long note must not widen the window's centre
        self.spot_label = QLabel("position")
        self.measure = mode_combo()
        top = QHBoxLayout()
        for w in (QLabel("angle"), self.angle, self.spot_label, self.spot, self.log, self.cmap,
                  self.measure):
            top.addWidget(w)
        top.addWidget(self.info, 1)

        self.glw = pg.GraphicsLayoutWidget()
        self.meas_plot = self._plot("measured")
        self.model_plot = self._plot("modelled")
        self.glw.addItem(self.meas_plot, 0, 0)
        self.glw.addItem(self.model_plot, 0, 1)
        self.model_plot.setXLink(self.meas_plot)
        self.model_plot.setYLink(self.meas_plot)
        self.meas_img, self.model_img = pg.ImageItem(), pg.ImageItem()
        self.meas_plot.addItem(self.meas_img)
        self.model_plot.addItem(self.model_img)
        # bad detector pixels (excluded from the loss), marked on both frames
        self._mask_marks = [pg.ScatterPlotItem(symbol="x", size=7, pen=pg.mkPen("c", width=1.5),
                                               brush=None) for _ in range(2)]
        self.meas_plot.addItem(self._mask_marks[0])
        self.model_plot.addItem(self._mask_marks[1])
        self.n_masked = 0
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("magma"), interactive=False,
                                   width=14)
        # in its own column, so that both frames get the same size and stay linked 1:1
        self.bar.setImageItem([self.meas_img, self.model_img])
        self.glw.addItem(self.bar, 0, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self._px_m, self._farfield = None, False
        self.tool = MeasureTool(self.meas_plot, {"measured": self.meas_img,
                                                 "modelled": self.model_img},
                                self._units, self._quantity)
        self.measure.currentIndexChanged.connect(
            lambda: self.tool.set_mode(self.measure.currentData()))
        lay.addLayout(top)
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.tool.panel)
        self.angle.valueChanged.connect(self._emit_frame)
        self.spot.valueChanged.connect(self._emit_frame)
        self.log.toggled.connect(self._redraw)
        self.cmap.currentTextChanged.connect(lambda n: self.bar.setColorMap(colormap(n)))

    @staticmethod
    def _plot(title: str) -> pg.PlotItem:
        p = pg.PlotItem(title=title)
        p.setAspectLocked(True)
        p.invertY(True)
        p.setLabel("bottom", "detector x (px)")
        p.setLabel("left", "detector y (px)")
        return p

    def set_pixel_size(self, pixel_size_m: float | None, farfield: bool) -> None:
        """The object pixel, for measurements in physical units (:func:`.common.frame_units`)."""
        self._px_m, self._farfield = pixel_size_m, farfield

    def _units(self) -> tuple[str, float]:
        shape = None if self.meas_img.image is None else self.meas_img.image.shape
        return frame_units(shape, self._px_m, self._farfield)

    def _quantity(self) -> str:
        return "log\u2081\u2080 intensity" if self.log.isChecked() else "intensity"

    def set_log_scale(self, on: bool) -> None:
        """Log scale suits far-field patterns (decades of dynamic range); holograms are ~1."""
        self.log.setChecked(on)

    def set_modality(self, modality: str, n_distances: int = 1, n_tiles: int = 1) -> None:
        """Holography's second index is the detector distance; near-field ptychography's, like
        far-field ptychography's, is the scan position (distance-major when both vary)."""
        name = spot_name(modality, n_distances, n_tiles)
        self.spot_label.setText(name)
        self.spot.setToolTip({"position": "scan position index",
                              "distance": "detector distance index"}.get(
            name, "distance \u00d7 scan position index (distance-major)"))

    def set_counts(self, n_angles: int, n_spots: int) -> None:
        for box, n in ((self.angle, n_angles), (self.spot, n_spots)):
            box.blockSignals(True)
            box.setRange(0, max(0, n - 1))  # clamps the value into the new data set
            box.blockSignals(False)
        self._emit_frame()  # the solver must never be asked for a frame that does not exist

    def frame(self) -> tuple[int, int]:
        return self.angle.value(), self.spot.value()

    def _emit_frame(self) -> None:
        self.frameChanged.emit(*self.frame())

    def set_mask(self, weights) -> None:
        """Detector weights as displayed (1 = use, 0 = bad; None: every pixel is used): the bad
        pixels are marked with a cross on both frames."""
        ys, xs = (np.nonzero(np.asarray(weights) == 0) if weights is not None
                  else (np.zeros(0), np.zeros(0)))
        self.n_masked = int(len(ys))
        for marks in self._mask_marks:
            marks.setData(x=xs + 0.5, y=ys + 0.5)  # pixel centres in image coordinates

    def set_frames(self, measured, modelled, epoch=None) -> None:
        self._measured, self._modelled = measured, modelled
        self._epoch = epoch
        self._redraw()

    def clear(self) -> None:
        self._measured = self._modelled = None
        self.meas_img.clear()
        self.model_img.clear()
        self.info.setText("")

    def has_data(self) -> bool:
        return self._measured is not None and self._modelled is not None

    def _redraw(self) -> None:
        if self._measured is None:
            return
        tf = log_image if self.log.isChecked() else (lambda a: np.asarray(a, np.float32))
        meas = tf(self._measured)
        levels = robust_levels(meas, 1.0, 99.9)
        # fit the view to a new frame size, and again when the model first appears (the frame
        # shown before a run may have been fitted while the view was still being laid out)
        new_extent = self.meas_img.image is None or self.meas_img.image.shape != meas.shape or \
            (self._modelled is not None and self.model_img.image is None)
        self.meas_img.setImage(meas, autoLevels=False, levels=levels)
        if self._modelled is not None:
            model = tf(self._modelled)
            self.model_img.setImage(model, autoLevels=False, levels=levels)
            m, d = np.asarray(self._measured, float), np.asarray(self._modelled, float)
            # amplitude R-factor of this frame: how far the model is from the data
            denom = np.sum(np.sqrt(np.maximum(m, 0)))
            r = np.sum(np.abs(np.sqrt(np.maximum(m, 0)) - np.sqrt(np.maximum(d, 0)))) / denom \
                if denom > 0 else float("nan")
            self.info.setText(f"R (amplitude) = {r:.3g}" + (f" at epoch {self._epoch}"
                                                             if self._epoch is not None else "")
                              + (f"; {self.n_masked} masked px (x)" if self.n_masked else ""))
        self.bar.setLevels(levels)
        set_scaled_axis(self.bar.axis, "log\u2081\u2080 intensity" if self.log.isChecked()
                        else "intensity", *levels)
        if new_extent:
            self.meas_plot.autoRange()
        self.tool.refresh()
