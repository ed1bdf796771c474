"""Where the 3D view's canvas sits: napari's ``QtViewer`` centred in a box, with its OpenGL canvas
in a native child window, and drawn smaller while a run is live.

Software OpenGL (llvmpipe: remote desktops, VNC, Xvfb) pays for every redraw in proportion to the
canvas's pixels, about 0.1-0.2 s for a 1000 x 660 canvas whatever the volume; a live preview is
redrawn every few seconds while the solver runs. While live, the canvas is therefore held to
:data:`LIVE_CANVAS_PIXELS` (same shape, centred); a paused, finished or opened result is drawn at
full size again.
"""

from __future__ import annotations

import math

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QVBoxLayout, QWidget

LIVE_CANVAS_PIXELS = 300_000   # device pixels of the canvas while a run is live (~670 x 450)
BACKGROUND = "#262930"         # napari's dark theme: the margin reads as part of the view


def make_native(widget: QWidget) -> None:
    """Give ``widget`` (an OpenGL canvas) a native window of its own: Qt then composites through
    OpenGL only this window. Otherwise the first OpenGL canvas switches the whole main window to
    OpenGL composition, and every repaint anywhere in it (a progress-bar step, a layer control)
    redraws and swaps the whole window: 40-90 ms each with software OpenGL."""
    widget.setAttribute(Qt.WidgetAttribute.WA_DontCreateNativeAncestors)
    widget.setAttribute(Qt.WidgetAttribute.WA_NativeWindow)


class CanvasBox(QWidget):
    """Holds one ``QtViewer``; :meth:`set_live` caps its size while a run is live."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.Window, QColor(BACKGROUND))
        self.setPalette(pal)
        self._layout = QVBoxLayout(self)  # while live, its margins centre a smaller viewer
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.live = False

    def set_viewer(self, qt_viewer) -> None:
        """Show napari's ``qt_viewer`` here (its canvas made native)."""
        make_native(qt_viewer.canvas.native)
        self._layout.addWidget(qt_viewer)
        self._apply()

    def zoom_ratio(self, on: bool) -> float:
        """New / old canvas width if :meth:`set_live` (``on``) were called now: the camera's
        zoom scaled by it keeps the same framing. (Scaled before the resize, whose drawing is
        synchronous, so that it is drawn once.)"""
        if on == self.live:
            return 1.0
        full, live = max(1, self.width()), self.live_size()[0]
        return live / full if on else full / live

    def set_live(self, on: bool) -> None:
        """Cap (``on``) or free the canvas size now."""
        if on != self.live:
            self.live = on
            self._apply()

    def live_size(self) -> tuple[int, int]:
        """The largest canvas (logical pixels) a live run may use in this box."""
        dpr = self.devicePixelRatioF() or 1.0
        w, h = max(1, self.width()), max(1, self.height())
        scale = min(1.0, math.sqrt(LIVE_CANVAS_PIXELS / (w * h * dpr * dpr)))
        return max(1, int(w * scale)), max(1, int(h * scale))

    def _apply(self) -> None:
        mx = my = 0
        if self.live:
            w, h = self.live_size()
            mx, my = (self.width() - w) // 2, (self.height() - h) // 2
        self._layout.setContentsMargins(mx, my, mx, my)
        self._layout.activate()  # resized now: a camera fitted next fits the new size

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(event)
        if self.live:
            self._apply()
