"""Probe view: amplitude and phase of one probe mode, with each mode's share of the power."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .common import (PHASE_COLORMAP, colormap, colormap_combo, format_length, image_plot,
                     length_unit, robust_levels, set_scaled_axis)

PHASE_MASK = 0.05  # phase shown where the amplitude exceeds this fraction of its peak


class ProbeView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._probe = None
        self._px_m = 1e-9
        self.mode = QComboBox()
        self.mode.setToolTip("incoherent probe mode (share of the total intensity)")
        self.cmap = colormap_combo("viridis")
        self.info = QLabel("no probe")
        top = QHBoxLayout()
        top.addWidget(QLabel("mode"))
        top.addWidget(self.mode)
        top.addWidget(self.info, 1)
        top.addWidget(self.cmap)

        self.glw = pg.GraphicsLayoutWidget()
        self.amp_plot = image_plot("amplitude", "x", "y")
        self.phase_plot = image_plot("phase", "x", "y")
        self.glw.addItem(self.amp_plot, 0, 0)
        self.phase_plot.setXLink(self.amp_plot)
        self.phase_plot.setYLink(self.amp_plot)
        self.amp_img, self.phase_img = pg.ImageItem(), pg.ImageItem()
        self.amp_plot.addItem(self.amp_img)
        self.phase_plot.addItem(self.phase_img)
        self.amp_bar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("viridis"),
                                       interactive=False, width=14)
        self.amp_bar.setImageItem(self.amp_img)
        # phase is cyclic: a cyclic map and fixed [-pi, pi] levels avoid a false edge at the wrap
        self.phase_bar = pg.ColorBarItem(values=(-np.pi, np.pi), colorMap=colormap(PHASE_COLORMAP),
                                         interactive=False, width=14)
        self.phase_bar.setImageItem(self.phase_img)
        self.glw.addItem(self.amp_bar, 0, 1)
        self.glw.addItem(self.phase_plot, 0, 2)
        self.glw.addItem(self.phase_bar, 0, 3)
        set_scaled_axis(self.phase_bar.axis, "phase [rad]", -np.pi, np.pi)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.glw, 1)
        self.mode.currentIndexChanged.connect(self._redraw)
        self.cmap.currentTextChanged.connect(lambda n: self.amp_bar.setColorMap(colormap(n)))

    def set_probe(self, probe: np.ndarray | None, pixel_size_m: float) -> None:
        self._probe, self._px_m = probe, float(pixel_size_m)
        if probe is None:
            self.clear()
            return
        power = np.sum(np.abs(probe) ** 2, axis=(1, 2))
        share = power / max(float(power.sum()), 1e-300)
        labels = [f"{i + 1} ({100 * s:.1f} %)" for i, s in enumerate(share)]
        if [self.mode.itemText(i) for i in range(self.mode.count())] != labels:
            keep = self.mode.currentIndex()
            self.mode.blockSignals(True)
            self.mode.clear()
            self.mode.addItems(labels)
            self.mode.setCurrentIndex(min(max(keep, 0), len(labels) - 1))
            self.mode.blockSignals(False)
        py, px = probe.shape[1:]
        self.info.setText(f"{probe.shape[0]} mode(s), {py}\u00d7{px} px = "
                          f"{format_length(px * self._px_m)} \u00d7 {format_length(py * self._px_m)}")
        self._redraw()

    def clear(self) -> None:
        self._probe = None
        self.amp_img.clear()
        self.phase_img.clear()
        self.mode.clear()
        self.info.setText("no probe (holography, or not loaded yet)")

    def has_data(self) -> bool:
        return self._probe is not None

    def _redraw(self) -> None:
        if self._probe is None:
            return
        m = min(max(self.mode.currentIndex(), 0), self._probe.shape[0] - 1)
        p = self._probe[m]
        amp = np.abs(p).astype(np.float32)
        phase = np.angle(p).astype(np.float32)
        # the phase where there is (almost) no light is noise: leave it out (NaN = transparent)
        phase[amp < PHASE_MASK * float(amp.max())] = np.nan
        unit, scale = length_unit(max(p.shape) * self._px_m)
        rect = QRectF(0, 0, p.shape[1] * self._px_m * scale, p.shape[0] * self._px_m * scale)
        for plot in (self.amp_plot, self.phase_plot):
            plot.getAxis("bottom").setLabel(f"x ({unit})")
            plot.getAxis("left").setLabel(f"y ({unit})")
        lo, hi = robust_levels(amp, 0.0, 100.0)
        self.amp_bar.setLevels((0.0, hi))
        set_scaled_axis(self.amp_bar.axis, "|P|", 0.0, hi)
        new_extent = self.amp_img.image is None or self.amp_img.image.shape != amp.shape
        self.amp_img.setImage(amp, autoLevels=False, levels=(0.0, hi))
        self.phase_img.setImage(phase, autoLevels=False, levels=(-np.pi, np.pi))
        self.amp_img.setRect(rect)
        self.phase_img.setRect(rect)
        if new_extent:
            self.amp_plot.autoRange()
