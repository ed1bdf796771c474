"""Measuring on an image view: a line profile or a rectangular region with its statistics, in
physical units; and a scale bar.

:class:`MeasureTool` puts a line (two handles) or a rectangle on a view's image plot and, whenever
the ROI moves or the image changes, computes the profile along the line or the statistics of the
region (:mod:`..measurements`) for each image of the view (e.g. measured and modelled frame), and
shows them in its :attr:`panel` (a profile plot and a line of numbers).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QObject, QPointF, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from ..measurements import line_profile, nice_length, region_stats
from .common import set_scaled_axis

MODES = {"off": "measure: off", "line": "line profile", "region": "region statistics"}
CURVE_PENS = ("#1f4e96", "#d62728", "#2ca02c")
ROI_PEN = pg.mkPen("#ff7f0e", width=2)


def mode_combo() -> QComboBox:
    box = QComboBox()
    for key, text in MODES.items():
        box.addItem(text, key)
    box.setToolTip("a line profile or a rectangular region's statistics (mean, std, min, max) "
                   "of the image, in physical units; drag the handles to move them")
    return box


def _fmt(v: float) -> str:
    return f"{v:.4g}"


class ScaleBar(pg.ScaleBar):
    """A scale bar in the image's lower right corner whose label we write ("500 nm")."""

    def __init__(self, plot: pg.PlotItem):
        super().__init__(size=1.0, width=6, brush="k", pen=pg.mkPen("w", width=1),
                         suffix="", offset=(-18, -18))
        self.setParentItem(plot.getViewBox())
        self.text.setColor("k")
        self.text.fill = pg.mkBrush(255, 255, 255, 210)   # readable over a dark image too
        self.hide()   # until an image gives it a length (an empty view showed a bare "1")

    def set_length(self, size: float, label: str) -> None:
        self.size = size
        self.text.setText(label)
        self.updateBar()
        self.show()


def fit_scale_bar(bar: ScaleBar, width: float, unit: str) -> None:
    """A round length about a fifth of ``width`` (plot units of ``unit``)."""
    size = nice_length(width)
    bar.set_length(size, f"{size:g} {unit}")


class MeasurePanel(QWidget):
    """The profile plot (line mode) and the numbers, below a view's image."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(120)
        self.plot.setMaximumHeight(200)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for name in ("bottom", "left"):
            self.plot.getAxis(name).enableAutoSIPrefix(False)
        self.plot.addLegend(offset=(-10, 10))
        self.numbers = QLabel("")
        self.numbers.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        lay.addWidget(self.numbers)


class MeasureTool(QObject):
    """A line or region on ``plot`` measuring ``images`` (name -> ImageItem, the first one
    carries the ROI). ``units()`` -> (length unit, unit per plot unit); ``quantity()``: what
    the pixels are ("δ", "log₁₀ intensity")."""

    changed = pyqtSignal()

    def __init__(self, plot: pg.PlotItem, images: dict[str, pg.ImageItem],
                 units: Callable[[], tuple[str, float]], quantity: Callable[[], str]):
        super().__init__()
        self.plot, self.images = plot, images
        self.units, self.quantity = units, quantity
        self.mode = "off"
        self.roi: pg.ROI | None = None
        self.panel = MeasurePanel()
        self.panel.hide()
        self.profiles: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.stats: dict = {}

    # ---- the ROI -----------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if self.roi is not None:
            self.plot.removeItem(self.roi)
            self.roi = None
        self.mode = mode
        self.profiles, self.stats = {}, {}
        self.panel.setVisible(mode != "off")
        self.panel.plot.setVisible(mode == "line")
        if mode != "off":
            self._place()
        self.refresh()

    def _image_rect(self):
        img = next(iter(self.images.values()))
        if img.image is None:
            return None
        r = img.mapRectToParent(img.boundingRect())
        return (r.x(), r.y(), r.width(), r.height())

    def _place(self) -> None:
        """A new ROI across the middle of the image (or the unit square before there is one)."""
        x0, y0, w, h = self._image_rect() or (0.0, 0.0, 1.0, 1.0)
        if self.mode == "line":
            self.roi = pg.LineSegmentROI([(x0 + 0.2 * w, y0 + 0.5 * h),
                                          (x0 + 0.8 * w, y0 + 0.5 * h)], pen=ROI_PEN)
        else:
            self.roi = pg.RectROI((x0 + 0.35 * w, y0 + 0.35 * h), (0.3 * w, 0.3 * h),
                                  pen=ROI_PEN, sideScalers=True)
        self.plot.addItem(self.roi)
        self.roi.sigRegionChanged.connect(self.refresh)

    def set_line(self, p0, p1) -> None:
        """Put the line's ends at ``p0``, ``p1`` (plot coordinates; tests, scripts)."""
        h0, h1 = self.roi.getHandles()
        self.roi.movePoint(h0, QPointF(*p0), coords="parent")
        self.roi.movePoint(h1, QPointF(*p1), coords="parent")
        self.refresh()

    def set_region(self, corner, size) -> None:
        """Put the rectangle at ``corner`` (x, y) with ``size`` (w, h), plot coordinates."""
        self.roi.setPos(corner, update=False)
        self.roi.setSize(size)
        self.refresh()

    def line_ends(self):
        return [self.roi.mapToParent(h.pos()) for h in self.roi.getHandles()]

    # ---- the measurement ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Measure again (the ROI moved, or the view drew a new image)."""
        if self.mode == "off" or self.roi is None:
            return
        unit, scale = self.units()
        self.profiles, self.stats = {}, {}
        for name, item in self.images.items():
            if item.image is None:
                continue
            r = item.mapRectToParent(item.boundingRect())
            rect = (r.x(), r.y(), r.width(), r.height())
            img = np.asarray(item.image)
            if self.mode == "line":
                p0, p1 = ((p.x(), p.y()) for p in self.line_ends())
                self.profiles[name] = line_profile(img, rect, p0, p1, scale)
            else:
                pos, size = self.roi.pos(), self.roi.size()
                self.stats[name] = region_stats(img, rect, (pos.x(), pos.y()),
                                                (size.x(), size.y()), scale)
        self._show(unit)
        self.changed.emit()

    def _show(self, unit: str) -> None:
        q = self.quantity()
        if self.mode == "line":
            p = self.panel.plot
            p.clear()
            for i, (name, (d, v)) in enumerate(self.profiles.items()):
                p.plot(d, v, pen=pg.mkPen(CURVE_PENS[i % len(CURVE_PENS)], width=1.5),
                       name=name if len(self.profiles) > 1 else None)
            p.setLabel("bottom", f"distance along the line ({unit})")
            vals = np.concatenate([v for _, v in self.profiles.values()] or [np.zeros(1)])
            vals = vals[np.isfinite(vals)]
            if vals.size:   # "δ ×10⁻⁶" and ticks 0..4, not "4e-06" on every tick
                set_scaled_axis(p.getAxis("left"), q, float(vals.min()), float(vals.max()))
            length = next((d[-1] for d, _ in self.profiles.values()), 0.0)
            parts = [f"line {_fmt(length)} {unit}"]
            for name, (_, v) in self.profiles.items():
                ok = v[np.isfinite(v)]
                if ok.size:
                    parts.append(f"{name}: {q} from {_fmt(ok.min())} to {_fmt(ok.max())}")
            self.panel.numbers.setText("; ".join(parts))
        else:
            lines = []
            for name, s in self.stats.items():
                lines.append(f"{name}: mean {_fmt(s.mean)}, std {_fmt(s.std)}, min "
                             f"{_fmt(s.min)}, max {_fmt(s.max)} ({q}; {s.n} px)")
            s = next(iter(self.stats.values()), None)
            head = (f"region {_fmt(s.width)} \u00d7 {_fmt(s.height)} {unit} = "
                    f"{_fmt(s.area)} {unit}\u00b2" if s else "region outside the image")
            self.panel.numbers.setText(head + "\n" + "\n".join(lines))
