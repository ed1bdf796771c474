"""Render resources/slicewise.svg into the PNG icon set resources/slicewise-N.png.

Run after changing the SVG:  .venv/bin/python packaging/make_icons.py
(Qt's SVG renderer, offscreen; the PNGs are committed so that nothing renders icons at run time.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt loads: no display needed

from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PyQt6.QtSvg import QSvgRenderer  # noqa: E402

from slicewise.resources import ICON_SIZES  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def render(svg: Path, size: int) -> QImage:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 - QPainter needs one
    svg = ROOT / "resources" / "slicewise.svg"
    out = ROOT / "resources"
    for size in ICON_SIZES:
        path = out / f"slicewise-{size}.png"
        if not render(svg, size).save(str(path), "PNG"):
            raise SystemExit(f"cannot write {path}")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
