"""Shared pieces of the pyqtgraph views: global options, colour maps, levels, unit formatting."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QComboBox

UM = 1e6  # micrometres per metre (napari voxel scale)
# how the object's quantities are written on axes and colour bars
SYMBOLS = {"delta": "\u03b4", "beta": "\u03b2", "phase": "phase [rad]", "amplitude": "|T|"}

# Sequential maps for real quantities, a cyclic one for phases (no false edge at +-pi)
COLORMAPS = ("gray", "viridis", "magma", "inferno", "cividis")
PHASE_COLORMAP = "CET-C6"

_configured = False


def configure_pyqtgraph() -> None:
    """Row-major images (numpy (y, x) order), light background like the rest of the window."""
    global _configured
    if not _configured:
        pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k",
                            antialias=True)
        _configured = True


def colormap(name: str) -> pg.ColorMap:
    if name == "gray":
        return pg.ColorMap(pos=[0.0, 1.0], color=[(0, 0, 0), (255, 255, 255)], name="gray")
    return pg.colormap.get(name)


def colormap_combo(default: str = "gray") -> QComboBox:
    box = QComboBox()
    box.addItems(COLORMAPS)
    box.setCurrentText(default)
    box.setToolTip("colour map")
    return box


def robust_levels(img: np.ndarray, lo_pct: float = 0.5, hi_pct: float = 99.5) -> tuple[float, float]:
    """Display levels that ignore a few hot pixels; computed on a subsample so that large slices
    cost the UI thread well under a millisecond."""
    a = np.asarray(img)
    step = max(1, int(math.sqrt(a.size / 65536)))
    sub = a[::step, ::step] if a.ndim == 2 else a.ravel()[::step * step]
    sub = sub[np.isfinite(sub)]
    if sub.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sub, [lo_pct, hi_pct])
    if not hi > lo:
        span = abs(float(lo)) * 1e-3 or 1e-12
        lo, hi = lo - span, hi + span
    return float(lo), float(hi)


def log_image(img: np.ndarray) -> np.ndarray:
    """log10 of a non-negative intensity image; zeros are floored a few decades below the peak."""
    a = np.asarray(img, dtype=np.float32)
    finite = a[np.isfinite(a)]
    peak = float(finite.max()) if finite.size else 0.0
    floor = peak * 1e-7 if peak > 0 else 1e-12
    return np.log10(np.maximum(np.nan_to_num(a, nan=floor), floor))


COLORBAR_AXIS_WIDTH = 64
_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def set_scaled_axis(axis: pg.AxisItem, label: str, lo: float, hi: float) -> None:
    """Label an axis showing values of order 1e-6 as "delta  x10^-6" with ticks 0..5, instead of
    pyqtgraph's "(x1e-06)" suffix or crowded "5e-07" ticks."""
    m = max(abs(lo), abs(hi))
    exp = int(math.floor(math.log10(m))) if m > 0 and math.isfinite(m) else 0
    axis.enableAutoSIPrefix(False)
    axis.setWidth(COLORBAR_AXIS_WIDTH)  # ColorBarItem fixes 45 px: too narrow for ticks + label
    if -2 <= exp <= 3:
        axis.setScale(1.0)
        axis.setLabel(label)
    else:
        axis.setScale(10.0 ** -exp)
        axis.setLabel(f"{label}  \u00d710{str(exp).translate(_SUPERSCRIPT)}")


def modality_text(modality: str, n_tiles: int = 1) -> str:
    """What a data set is, in words: far field (ptychography), near field (holography), or near
    field with a scanned illumination (ptychography)."""
    if modality == "nearfield":
        return "near field (ptychography)" if n_tiles > 1 else "near field (holography)"
    return "far field (ptychography)" if modality == "farfield" else modality


def spot_name(modality: str, n_distances: int = 1, n_tiles: int = 1) -> str:
    """What the second frame index counts (spots are distance-major: distance x tile)."""
    if modality != "nearfield" or (n_tiles > 1 and n_distances == 1):
        return "position"
    return "distance \u00d7 position" if n_tiles > 1 else "distance"


def format_length(metres: float) -> str:
    """3.2 nm / 45.1 um / 1.20 mm: the unit a scientist would write."""
    if metres is None or not np.isfinite(metres):
        return "?"
    a = abs(metres)
    if a >= 1e-3:
        return f"{metres * 1e3:.4g} mm"
    if a >= 1e-6:
        return f"{metres * 1e6:.4g} \u00b5m"
    if a >= 1e-9:
        return f"{metres * 1e9:.4g} nm"
    return f"{metres * 1e12:.4g} pm"


def format_duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds) or seconds < 0:
        return "--"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def length_unit(extent_m: float) -> tuple[str, float]:
    """Unit for axes spanning ``extent_m``: a 480 nm Siemens star in nm, a 1.6 um cone in um
    (pyqtgraph's own "(x0.001)" factor reads badly next to a unit)."""
    if extent_m < 1e-6:
        return "nm", 1e9
    if extent_m < 1e-3:
        return "\u00b5m", 1e6
    return "mm", 1e3


def frame_units(shape, pixel_size_m: float | None, farfield: bool) -> tuple[str, float]:
    """(unit, unit per detector pixel) of a ``shape`` frame: near field, lengths in the sample
    plane; far field, spatial frequencies (a detector pixel is 1 / (N pixel) cycles per metre);
    ("px", 1) when the pixel size is unknown."""
    if not pixel_size_m or not shape:
        return "px", 1.0
    n = max(shape)
    if farfield:
        return "\u00b5m\u207b\u00b9", 1e-6 / (n * pixel_size_m)
    unit, scale = length_unit(n * pixel_size_m)
    return unit, pixel_size_m * scale


def plain_axes(plot: pg.PlotItem) -> None:
    for name in ("bottom", "left"):
        plot.getAxis(name).enableAutoSIPrefix(False)


def image_plot(title: str = "", x_label: str = "x", y_label: str = "y",
               unit: str = "\u00b5m") -> pg.PlotItem:
    """A plot item for images: equal aspect, y pointing down (row 0 at the top, as on a detector)."""
    p = pg.PlotItem(title=title)
    p.setAspectLocked(True)
    p.invertY(True)
    p.setLabel("bottom", x_label, units=None, **{"color": "#222"})
    p.setLabel("left", y_label, units=None, **{"color": "#222"})
    if unit:
        p.getAxis("bottom").setLabel(f"{x_label} ({unit})")
        p.getAxis("left").setLabel(f"{y_label} ({unit})")
    p.showGrid(False, False)
    plain_axes(p)
    return p
