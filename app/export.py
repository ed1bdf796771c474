"""Export from the window: a view as PNG or SVG (with its colour bar and scale bar), a slice as
a TIFF with its pixel size, the loss history as CSV. Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401 - registers pg.exporters
from PyQt6.QtCore import QBuffer, QIODevice, QRectF, QSize
from PyQt6.QtGui import QPainter
from PyQt6.QtSvg import QSvgGenerator

from slicewise.engine.errors import DataFileError
from slicewise.engine.io.atomic import atomic_path

PNG_SCALE = 2   # exported images have twice the pixels of the view on screen


def export_view(item: pg.GraphicsItem, path: str | Path) -> Path:
    """The graphics ``item`` (a view's layout: image, colour bar, scale bar) as PNG or SVG,
    chosen by ``path``'s suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        data = _svg_of(item)
    elif suffix == ".png":
        exporter = pg.exporters.ImageExporter(item)
        exporter.parameters()["width"] = int(PNG_SCALE * item.boundingRect().width())
        image = exporter.export(toBytes=True)
        buf = QBuffer()
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buf, "PNG")
        data = bytes(buf.data())
    else:
        raise DataFileError(f"{path.name}: export writes .png or .svg files")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return path


def _svg_of(item: pg.GraphicsItem) -> bytes:
    """The item's part of its scene drawn by Qt's SVG generator: lines and text stay vectors,
    images are embedded. (pyqtgraph's own SVG exporter fails on the closed paths Qt 6 writes.)"""
    rect = item.sceneBoundingRect()
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    gen = QSvgGenerator()
    gen.setOutputDevice(buf)
    gen.setSize(QSize(int(rect.width()), int(rect.height())))
    gen.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
    gen.setTitle("Slicewise")
    painter = QPainter(gen)
    try:
        item.scene().render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()
    return bytes(buf.data())


def export_tiff(image: np.ndarray, pixel_m: tuple[float, float], path: str | Path) -> Path:
    """A 2D image as a float32 ImageJ TIFF whose resolution tags give its pixel size
    ``pixel_m`` = (vertical, horizontal) in micrometres, as Fiji and napari read them."""
    import tifffile  # noqa: PLC0415 - only when exporting

    path = Path(path)
    img = np.ascontiguousarray(np.asarray(image), dtype=np.float32)
    if img.ndim != 2:
        raise DataFileError(f"{path.name}: a slice is 2D, got shape {img.shape}")
    um_y, um_x = (float(p) * 1e6 for p in pixel_m)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, img, imagej=True, resolution=(1.0 / um_x, 1.0 / um_y),
                         metadata={"unit": "um", "axes": "YX"})
    return path


def loss_table(epochs, loss, terms: dict, validation: dict) -> str:
    """CSV text: one row per epoch (epoch, total, each term, validation when there is one;
    empty where a value is missing)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    names = list(terms)
    w.writerow(["epoch", "total", *names] + (["validation"] if validation else []))
    for i, e in enumerate(epochs):
        row = [int(e), _cell(loss[i])] + [_cell(terms[n][i]) for n in names]
        if validation:
            row.append(_cell(validation.get(int(e), float("nan"))))
        w.writerow(row)
    return out.getvalue()


def _cell(v) -> str:
    v = float(v)
    return repr(v) if np.isfinite(v) else ""


def export_loss_csv(loss_view, path: str | Path) -> Path:
    """The loss view's per-epoch history as CSV (see :func:`loss_table`)."""
    path = Path(path)
    text = loss_table(loss_view.epochs, loss_view.epoch_loss, loss_view.terms,
                      loss_view.validation)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path
