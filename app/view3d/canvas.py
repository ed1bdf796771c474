"""Where the 3D view's canvas sits: napari's ``QtViewer`` filling a box, with its OpenGL canvas
in a native child window.

The canvas always fills the tab, during a run too: drawn smaller inside borders (to save software
OpenGL's per-pixel cost) it looked like a fault. The cost of live previews is held down by binning
and pacing instead (:mod:`.layers`).
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QVBoxLayout, QWidget

BACKGROUND = "#262930"   # napari's dark theme, behind the canvas until it draws


def make_native(widget: QWidget) -> None:
    """Give ``widget`` (an OpenGL canvas) a native window of its own: Qt then composites through
    OpenGL only this window. Otherwise the first OpenGL canvas switches the whole main window to
    OpenGL composition, and every repaint anywhere in it (a progress-bar step, a layer control)
    redraws and swaps the whole window: 40-90 ms each with software OpenGL."""
    widget.setAttribute(Qt.WidgetAttribute.WA_DontCreateNativeAncestors)
    widget.setAttribute(Qt.WidgetAttribute.WA_NativeWindow)


class CanvasBox(QWidget):
    """Holds one ``QtViewer``, its canvas in a native window, filling the box."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.Window, QColor(BACKGROUND))
        self.setPalette(pal)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def set_viewer(self, qt_viewer) -> None:
        """Show napari's ``qt_viewer`` here (its canvas made native)."""
        make_native(qt_viewer.canvas.native)
        self._layout.addWidget(qt_viewer)
