"""Two reconstructions side by side and their difference: the same slice, the same levels.

A is the result or run estimate on screen; B another result or the data set's ground truth,
sampled on A's grid when its voxels differ (both centred, as the 3D view places them:
:func:`..measurements.on_grid`). A and B share one colour bar; the difference A - B has its own,
symmetric about zero. The RMS difference and the correlation are given for the slice and for
the whole volume.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, QTimer
from PyQt6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox,
                             QVBoxLayout, QWidget)

from ..measurements import agreement, on_grid
from .common import (SYMBOLS, colormap, colormap_combo, image_plot, length_unit,
                     robust_levels, set_scaled_axis)
from .measure import ScaleBar, fit_scale_bar

DIFF_COLORMAP = "CET-D1"   # diverging: zero in the middle
_CUTS = {"z": ((1, 2), ("y", "x")), "y": ((0, 2), ("z", "x")), "x": ((1, 0), ("y", "z"))}
NOTHING = ("Nothing to compare yet: open a result (or run one), then Analysis \u203a Compare with "
           "another result\u2026 or Compare with the ground truth.")


class CompareView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._a = self._b = None          # name -> (nz, ny, nx) on A's grid
        self._voxel = (1e-9, 1e-9, 1e-9)  # A's (dz, dy, dx), metres
        self._volume_agreement: dict = {}
        self.names = QLabel(NOTHING)
        self.names.setWordWrap(True)
        self.pick = QPushButton("Another result\u2026")
        self.pick.setToolTip("compare with another result file (Analysis \u203a Compare with "
                             "another result)")
        self.quantity, self.axis = QComboBox(), QComboBox()
        for a in ("z", "y", "x"):
            self.axis.addItem(f"along {a}", a)
        self.slider, self.spin = QSlider(Qt.Orientation.Horizontal), QSpinBox()
        self.cmap = colormap_combo("gray")
        self.stats = QLabel("")
        self.stats.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.names, 1)
        top.addWidget(self.pick)
        nav = QHBoxLayout()
        for w in (self.quantity, self.axis, self.cmap, QLabel("slice")):
            nav.addWidget(w)
        nav.addWidget(self.slider, 1)
        nav.addWidget(self.spin)
        self._make_plots()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addLayout(nav)
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.stats)
        self.slider.valueChanged.connect(lambda i: self.spin.setValue(i + 1))
        self.spin.valueChanged.connect(lambda n: self.slider.setValue(n - 1))
        self.slider.valueChanged.connect(self._redraw)
        self.quantity.currentIndexChanged.connect(self._on_quantity)
        self.axis.currentIndexChanged.connect(self._on_axis)
        self.cmap.currentTextChanged.connect(lambda n: self.bar.setColorMap(colormap(n)))

    def _make_plots(self) -> None:
        self.glw = pg.GraphicsLayoutWidget()
        self.plots = [image_plot(t) for t in ("A", "B", "A \u2212 B")]
        self.imgs = [pg.ImageItem() for _ in self.plots]
        for i, (p, im) in enumerate(zip(self.plots, self.imgs)):
            p.addItem(im)
            self.glw.addItem(p, 0, i)
            if i:
                p.setXLink(self.plots[0])
                p.setYLink(self.plots[0])
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("gray"), interactive=False,
                                   width=14)
        self.bar.setImageItem(self.imgs[:2])   # A and B: one colour scale
        self.diff_bar = pg.ColorBarItem(values=(-1, 1), colorMap=colormap(DIFF_COLORMAP),
                                        interactive=False, width=14)
        self.diff_bar.setImageItem(self.imgs[2])
        self.glw.addItem(self.bar, 0, 3)
        self.glw.addItem(self.diff_bar, 0, 4)
        self.scale_bar = ScaleBar(self.plots[0])

    # ---- data --------------------------------------------------------------------------------
    def has_data(self) -> bool:
        return self._a is not None

    def set_pair(self, a: dict, a_voxel, b: dict, b_voxel, a_name: str, b_name: str,
                 like=None) -> None:
        """Compare volumes ``a`` (name -> (nz, ny, nx), voxel ``a_voxel`` = (dz, dy, dx) m)
        with ``b``; the quantities both have are offered. ``like``: (quantity, axis, slice
        index) to start at (the slice view's)."""
        common = [k for k in a if k in b and np.ndim(a[k]) == 3 and np.ndim(b[k]) == 3]
        if not common:
            self.names.setText(f"{a_name} and {b_name} have no quantity in common "
                               f"({', '.join(a)} vs {', '.join(b)})")
            return
        self._a = {k: np.asarray(a[k], np.float32) for k in common}
        self._b = {k: on_grid(b[k], b_voxel, a[k].shape, a_voxel) for k in common}
        self._voxel = tuple(float(v) for v in a_voxel)
        self._volume_agreement = {k: agreement(self._a[k], self._b[k]) for k in common}
        regridded = "" if self._b[common[0]] is b[common[0]] else \
            " (sampled on A's grid, centred)"
        self.names.setText(f"<b>A</b>: {a_name}<br><b>B</b>: {b_name}{regridded}")
        q, axis, index = like or (common[0], "z", None)
        self.quantity.blockSignals(True)
        self.quantity.clear()
        self.quantity.addItems(common)
        self.quantity.setCurrentText(q if q in common else common[0])
        self.quantity.blockSignals(False)
        self.axis.blockSignals(True)
        self.axis.setCurrentIndex("zyx".index(axis))
        self.axis.blockSignals(False)
        n = self._a[common[0]].shape["zyx".index(axis)]
        self._set_range(n, n // 2 if index is None else min(index, n - 1))
        self._redraw()
        self._fit()

    def _fit(self) -> None:
        """The images fill their panels; again once the tab has its size (a tab shown after
        the data came is laid out later)."""
        for p in self.plots:
            p.autoRange(padding=0.02)
        QTimer.singleShot(0, lambda: [p.autoRange(padding=0.02) for p in self.plots])

    def _set_range(self, n: int, value: int) -> None:
        for w, lo in ((self.slider, 0), (self.spin, 1)):
            w.blockSignals(True)
            w.setRange(lo, max(lo, n - 1 + lo))
            w.blockSignals(False)
        self.slider.setValue(value)
        self.spin.blockSignals(True)
        self.spin.setValue(value + 1)
        self.spin.blockSignals(False)

    def cut(self, vol: np.ndarray) -> np.ndarray:
        i, ax = self.slider.value(), self.axis.currentData()
        return {"z": lambda: vol[i], "y": lambda: vol[:, i, :],
                "x": lambda: vol[:, :, i].T}[ax]()

    def images(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The three images on screen: A, B and A - B (tests, export)."""
        if self._a is None:
            return None
        return tuple(im.image for im in self.imgs)

    def _redraw(self) -> None:
        if self._a is None:
            return
        q = self.quantity.currentText()
        a, b = self.cut(self._a[q]), self.cut(self._b[q])
        d = a - b
        lo, hi = robust_levels(np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]]))
        m = robust_levels(np.abs(d[np.isfinite(d)]), 0.0, 99.5)[1] if np.isfinite(d).any() \
            else 1.0
        (rows, cols), (vname, hname) = _CUTS[self.axis.currentData()]
        dz, dy, dx = self._voxel
        size = {0: dz, 1: dy, 2: dx}
        h_m, w_m = a.shape[0] * size[rows], a.shape[1] * size[cols]
        unit, scale = length_unit(max(h_m, w_m))
        for im, img, levels in zip(self.imgs, (a, b, d), ((lo, hi), (lo, hi), (-m, m))):
            im.setImage(np.asarray(img, np.float32), autoLevels=False, levels=levels)
            im.setRect(QRectF(0, 0, w_m * scale, h_m * scale))
        for p in self.plots:
            p.getAxis("bottom").setLabel(f"{hname} ({unit})")
            p.getAxis("left").setLabel(f"{vname} ({unit})")
        self.bar.setLevels((lo, hi))
        self.diff_bar.setLevels((-m, m))
        sym = SYMBOLS.get(q, q)
        set_scaled_axis(self.bar.axis, sym, lo, hi)
        set_scaled_axis(self.diff_bar.axis, f"\u0394{sym.split(' [')[0]}", -m, m)
        fit_scale_bar(self.scale_bar, w_m * scale, unit)
        rms, corr = agreement(a, b)
        vrms, vcorr = self._volume_agreement[q]
        i = self.slider.value()
        self.stats.setText(f"{q}, slice {i + 1} along {self.axis.currentData()}: RMS(A \u2212 B) "
                           f"{rms:.4g}, correlation {corr:.4f}; whole volume: RMS {vrms:.4g}, "
                           f"correlation {vcorr:.4f}")

    def _on_quantity(self) -> None:
        self._redraw()

    def _on_axis(self) -> None:
        if self._a is not None:
            q = self.quantity.currentText()
            n = self._a[q].shape["zyx".index(self.axis.currentData())]
            self._set_range(n, n // 2)
            self._redraw()
            self._fit()
