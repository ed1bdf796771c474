"""Scan positions: initial (open circles) and refined (dots), joined by displacement arrows.

Positions are the probe windows' top-left corners in object pixels (ARCHITECTURE.md); the plot shows
window centres in nm or um. Refinements are often sub-pixel, so the drawn displacement can be
magnified; the numbers in the title are always the true ones, in pixels.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .common import length_unit, plain_axes


class PositionsView(QWidget):
    MAGNIFICATIONS = (1, 5, 10, 50)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._initial = self._current = None
        self._px_m, self._window = 1e-9, (0, 0)
        self.mag = QComboBox()
        for m in self.MAGNIFICATIONS:
            self.mag.addItem(f"arrows \u00d7{m}", m)
        self.mag.setToolTip("magnify the drawn displacement (refinements are often sub-pixel)")
        self.info = QLabel("no scan positions")
        top = QHBoxLayout()
        top.addWidget(self.info, 1)
        top.addWidget(self.mag)

        self.plot = pg.PlotWidget()
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        plain_axes(self.plot.getPlotItem())
        self.plot.addLegend(offset=(-10, 10))
        self.arrows = self.plot.plot([], [], pen=pg.mkPen("#d62728", width=1.2), connect="pairs")
        self.initial_pts = pg.ScatterPlotItem(size=7, pen=pg.mkPen("#555555", width=1),
                                              brush=None, name="initial")
        self.current_pts = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush("#d62728"),
                                              name="refined")
        self.plot.addItem(self.initial_pts)
        self.plot.addItem(self.current_pts)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        self.mag.currentIndexChanged.connect(self._redraw)

    def set_positions(self, current, initial, pixel_size_m: float, window_px=(0, 0)) -> None:
        self._current = None if current is None else np.asarray(current, float)
        self._initial = None if initial is None else np.asarray(initial, float)
        self._px_m, self._window = float(pixel_size_m), tuple(window_px)
        self._redraw()

    def clear(self) -> None:
        self._current = self._initial = None
        self._redraw()

    def has_data(self) -> bool:
        return self._current is not None

    def _centres(self, pos, scale: float):
        return (pos + np.asarray(self._window, float) / 2.0) * self._px_m * scale

    def _redraw(self) -> None:
        if self._current is None:
            for item in (self.initial_pts, self.current_pts):
                item.setData([], [])
            self.arrows.setData([], [])
            self.info.setText("no scan positions (holography, or no data loaded)")
            return
        extent_px = float(np.max(self._current)) + max(self._window)
        unit, scale = length_unit(extent_px * self._px_m)
        self.plot.setLabel("bottom", f"x ({unit})")
        self.plot.setLabel("left", f"y ({unit})")
        cur = self._centres(self._current, scale)
        ini = self._centres(self._initial, scale) if self._initial is not None else cur
        m = self.mag.currentData()
        shown = ini + m * (cur - ini)
        self.initial_pts.setData(ini[:, 1], ini[:, 0])
        self.current_pts.setData(shown[:, 1], shown[:, 0])
        seg = np.empty((2 * len(cur), 2))
        seg[0::2], seg[1::2] = ini, shown
        self.arrows.setData(seg[:, 1], seg[:, 0])
        n = len(cur)
        if self._initial is not None:
            d = np.linalg.norm(self._current - self._initial, axis=1)
            self.info.setText(f"{n} positions; shift from start: RMS {np.sqrt(np.mean(d ** 2)):.3g} px,"
                              f" max {d.max():.3g} px")
        else:
            self.info.setText(f"{n} positions (not refined)")
