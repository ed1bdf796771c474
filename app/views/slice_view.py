"""Object slice viewer: delta, beta, phase or amplitude of one slice along z, y or x.

Lengths on the axes are in nm, um or mm, whichever suits the object's size (x/y from the pixel
size, z from the slice thickness). The
vertical image axis is y whenever y is in the cut, so the sample stands as it does at the beamline.
Phase and amplitude are those of one slice's transmission ``T = exp(-k dz (beta + i delta))``
(ARCHITECTURE.md), which needs the photon energy for delta/beta objects.
"""

from __future__ import annotations


import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QSpinBox,
                             QVBoxLayout, QWidget)

from slicewise.engine.physics.optics import wavenumber

from .common import (SYMBOLS, colormap, colormap_combo, format_length, image_plot,
                     length_unit, robust_levels, set_scaled_axis)
from .measure import MeasureTool, ScaleBar, fit_scale_bar, mode_combo

QUANTITIES = {"delta": "\u03b4 (refractive decrement)", "beta": "\u03b2 (absorption index)",
              "phase": "phase of one slice (rad)", "amplitude": "amplitude |T| of one slice"}
# colour bar labels: short, the unit in brackets where there is one
_BAR_LABELS = SYMBOLS
# view along -> (volume axes shown vertically, horizontally), names of those axes
_CUTS = {"z": ((1, 2), ("y", "x")), "y": ((0, 2), ("z", "x")), "x": ((1, 0), ("y", "z"))}


class SliceView(QWidget):
    """Shows one 2D cut of the current object estimate; keeps the cut when new data arrive."""

    cutChanged = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._delta = self._beta = self._object = None
        self._px_m, self._dz_m, self._energy_ev = 1e-9, 1e-9, None
        self._epoch = None
        self.updates = 0  # how many images were drawn (tests, diagnostics)

        top, nav = self._make_controls()
        self._make_plot()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addLayout(nav)
        lay.addWidget(self.glw, 1)
        lay.addWidget(self.tool.panel)
        lay.addWidget(self.cursor)

        self._connect()
        self._image = None
        self._unit = "\u00b5m"
        self._set_range(1)

    def _make_controls(self) -> tuple[QHBoxLayout, QHBoxLayout]:
        """The quantity/axis/colour-map row and the slice navigation row."""
        self.quantity = QComboBox()
        for key, label in QUANTITIES.items():
            self.quantity.addItem(label.split(" (")[0].split(" |")[0], key)
        self.quantity.setToolTip("delta/beta: optical constants of each voxel; phase/amplitude: "
                                 "of one slice's transmission")
        self.axis = QComboBox()
        for a in ("z", "y", "x"):
            self.axis.addItem(f"along {a}", a)
        self.axis.setToolTip("cut perpendicular to this axis (z = beam direction)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.spin = QSpinBox()
        self.pos_label = QLabel()
        self.pos_label.setMinimumWidth(90)
        self.cmap = colormap_combo("gray")
        self.auto = QCheckBox("auto levels")
        self.auto.setChecked(True)
        self.auto.setToolTip("rescale the colour bar to every new image (0.5-99.5 percentile); "
                             "untick, or drag the colour bar, to keep fixed levels")

        self.measure = mode_combo()
        top = QHBoxLayout()
        for w in (self.quantity, self.axis, self.cmap, self.auto, self.measure):
            top.addWidget(w)
        top.addStretch(1)
        nav = QHBoxLayout()
        nav.addWidget(QLabel("slice"))
        nav.addWidget(self.slider, 1)
        nav.addWidget(self.spin)
        nav.addWidget(self.pos_label)
        return top, nav

    def _make_plot(self) -> None:
        self.glw = pg.GraphicsLayoutWidget()
        self.plot = image_plot("object", "x", "y")
        self.glw.addItem(self.plot, 0, 0)
        self.img = pg.ImageItem()
        self.plot.addItem(self.img)
        self.cbar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("gray"), interactive=True,
                                    width=18)
        self.cbar.setImageItem(self.img)
        self.glw.addItem(self.cbar, 0, 1)
        self.cursor = QLabel(" ")
        self.cursor.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scale_bar = ScaleBar(self.plot)
        self.tool = MeasureTool(self.plot, {"slice": self.img}, lambda: (self._unit, 1.0),
                                lambda: _BAR_LABELS[self.quantity.currentData()])

    def _connect(self) -> None:
        self.quantity.currentIndexChanged.connect(self._on_quantity)
        self.axis.currentIndexChanged.connect(self._on_axis)
        # the spin box counts slices from 1, like the title; the slider is the 0-based index
        self.slider.valueChanged.connect(lambda i: self.spin.setValue(i + 1))
        self.spin.valueChanged.connect(lambda n: self.slider.setValue(n - 1))
        self.slider.valueChanged.connect(self._redraw)
        self.cmap.currentTextChanged.connect(self._on_cmap)
        self.auto.toggled.connect(lambda on: on and self._redraw())
        self.cbar.sigLevelsChangeFinished.connect(self._user_levels)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse)
        self.measure.currentIndexChanged.connect(
            lambda: self.tool.set_mode(self.measure.currentData()))

    # ---- data --------------------------------------------------------------------------------
    def set_volume(self, delta=None, beta=None, obj=None, *, pixel_size_m: float,
                   slice_thickness_m: float, energy_ev: float | None = None, epoch=None) -> None:
        """New object estimate (host arrays (nz, ny, nx)); redraws the current cut."""
        first = self._shape() is None
        self._delta, self._beta, self._object = delta, beta, obj
        self._px_m, self._dz_m = float(pixel_size_m), float(slice_thickness_m)
        self._energy_ev, self._epoch = energy_ev, epoch
        shape = self._shape()
        if shape is None:
            self.clear()
            return
        self._set_range(shape[self.current_axis_index()])
        if first:
            self.slider.setValue(shape[self.current_axis_index()] // 2)
        self._redraw()

    def clear(self) -> None:
        self._delta = self._beta = self._object = None
        self._image = None
        self.img.clear()
        self.scale_bar.hide()
        self.plot.setTitle("object (no data yet)")
        self.cursor.setText(" ")

    def has_data(self) -> bool:
        return self._image is not None

    def image(self) -> np.ndarray | None:
        """The 2D array on screen (tests, export)."""
        return self._image

    def image_pixel_m(self) -> tuple[float, float]:
        """(vertical, horizontal) size of a pixel of :meth:`image`, metres."""
        (rows, cols), _ = _CUTS[self.axis.currentData()]
        size = {0: self._dz_m, 1: self._px_m, 2: self._px_m}
        return size[rows], size[cols]

    def describe(self) -> str:
        """What is on screen, for file names and titles ("delta_z12")."""
        return f"{self.quantity.currentData()}_{self.axis.currentData()}{self.slider.value() + 1}"

    def _shape(self):
        for a in (self._delta, self._beta, self._object):
            if a is not None:
                return a.shape
        return None

    def current_axis_index(self) -> int:
        return "zyx".index(self.axis.currentData())

    def _set_range(self, n: int) -> None:
        for w, lo in ((self.slider, 0), (self.spin, 1)):
            w.blockSignals(True)
            w.setRange(lo, max(lo, n - 1 + lo))
            w.blockSignals(False)
        self.spin.blockSignals(True)
        self.spin.setValue(self.slider.value() + 1)
        self.spin.blockSignals(False)

    # ---- what to show ----------------------------------------------------------------------
    def _k_dz(self) -> float | None:
        if not self._energy_ev:
            return None
        return wavenumber(self._energy_ev) * self._dz_m

    def _cut(self, vol: np.ndarray) -> np.ndarray:
        i = min(self.slider.value(), vol.shape[self.current_axis_index()] - 1)
        ax = self.axis.currentData()
        if ax == "z":
            return vol[i]
        if ax == "y":
            return vol[:, i, :]
        return vol[:, :, i].T  # (ny, nz): y stays vertical

    def _compute(self) -> tuple[np.ndarray | None, str]:
        """(image, reason when nothing can be shown)."""
        q = self.quantity.currentData()
        kdz = self._k_dz()
        if self._object is not None:  # free complex slices
            t = self._cut(self._object)
            if q == "phase":
                return np.angle(t), ""
            if q == "amplitude":
                return np.abs(t), ""
            if kdz is None:
                return None, "delta/beta of a complex object need the photon energy"
            return (-np.angle(t) / kdz if q == "delta" else -np.log(np.maximum(np.abs(t), 1e-30)) / kdz), ""
        vol = {"delta": self._delta, "beta": self._beta, "phase": self._delta,
               "amplitude": self._beta}[q]
        if vol is None:
            return None, f"no {q} in this estimate"
        cut = self._cut(vol)
        if q == "phase" or q == "amplitude":
            if kdz is None:
                return None, "phase/amplitude need the photon energy"
            return (-kdz * cut if q == "phase" else np.exp(-kdz * cut)), ""
        return cut, ""

    def _redraw(self) -> None:
        if self._shape() is None:
            return
        img, why = self._compute()
        axis = self.axis.currentData()
        (rows, cols), (vname, hname) = _CUTS[axis]
        i = self.slider.value()
        step = self._dz_m if axis == "z" else self._px_m
        self.pos_label.setText(f"{axis} = {format_length((i + 0.5) * step)}")
        if img is None:
            self._image = None
            self.img.clear()
            self.plot.setTitle(why)
            return
        img = np.asarray(img, dtype=np.float32)
        self._image = img
        size = {0: self._dz_m, 1: self._px_m, 2: self._px_m}
        h_m, w_m = img.shape[0] * size[rows], img.shape[1] * size[cols]
        self._unit, scale = length_unit(max(h_m, w_m))
        h_u, w_u = h_m * scale, w_m * scale
        q = self.quantity.currentData()
        if self.auto.isChecked():
            lo, hi = robust_levels(img)
            self.cbar.setLevels((lo, hi))
        levels = self.cbar.levels()
        new_extent = self.img.image is None or self.img.image.shape != img.shape
        self.img.setImage(img, autoLevels=False, levels=levels)
        self.img.setRect(QRectF(0, 0, w_u, h_u))
        if new_extent:
            self.plot.autoRange()
        fit_scale_bar(self.scale_bar, w_u, self._unit)
        set_scaled_axis(self.cbar.axis, _BAR_LABELS[q], *levels)
        self.plot.getAxis("bottom").setLabel(f"{hname} ({self._unit})")
        self.plot.getAxis("left").setLabel(f"{vname} ({self._unit})")
        # snapshots count completed epochs: one taken during the first epoch is not "epoch 0"
        n = self._epoch
        ep = "" if n is None else (", during epoch 1" if n == 0 else
                                   f", after {n} epoch{'s' if n != 1 else ''}")
        # short: a long title sets the plot's minimum width and pushes the colour bar out
        self.plot.setTitle(f"{_BAR_LABELS[q].split(' [')[0]}, slice {i + 1}/"
                           f"{self._shape()[self.current_axis_index()]} along {axis}{ep}")
        self.plot.setToolTip(QUANTITIES[q])
        self.tool.refresh()
        self.updates += 1

    # ---- controls ----------------------------------------------------------------------------
    def _on_quantity(self) -> None:
        self._redraw()

    def _on_axis(self) -> None:
        shape = self._shape()
        if shape is not None:
            n = shape[self.current_axis_index()]
            self._set_range(n)
            self.slider.setValue(n // 2)
        self._redraw()
        self.plot.autoRange()
        self.cutChanged.emit()

    def _on_cmap(self, name: str) -> None:
        self.cbar.setColorMap(colormap(name))

    def _user_levels(self) -> None:
        # the user dragged the colour bar: keep those levels for the next images
        self.auto.blockSignals(True)
        self.auto.setChecked(False)
        self.auto.blockSignals(False)
        set_scaled_axis(self.cbar.axis, _BAR_LABELS[self.quantity.currentData()],
                        *self.cbar.levels())

    def _on_mouse(self, pos) -> None:
        if self._image is None or not self.plot.sceneBoundingRect().contains(pos):
            return
        p = self.plot.vb.mapSceneToView(pos)
        rect = self.img.boundingRect()
        h, w = self._image.shape
        if self.img.width() == 0:
            return
        sx = self.img.mapRectToParent(rect).width() / w
        sy = self.img.mapRectToParent(rect).height() / h
        c, r = int(p.x() / sx), int(p.y() / sy)
        if 0 <= r < h and 0 <= c < w:
            (_, _), (vname, hname) = _CUTS[self.axis.currentData()]
            u = self._unit
            self.cursor.setText(f"{hname} = {p.x():.4g} {u}, {vname} = {p.y():.4g} {u}, "
                                f"voxel ({r}, {c}): {self._image[r, c]:.4g}")
