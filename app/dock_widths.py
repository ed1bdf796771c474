"""Docks that keep the width the user gave them.

Qt's main window takes the room a shrinking window loses from its docks, down to their minimum,
and gives the room an enlarged window gains to the central widget: after a shrink and an
enlargement the parameter form stayed ~80 px wide and clipped. Here every dock has a usable
minimum width, and when the window grows, docks narrower than the width the user last gave
them (by dragging their edge) get it back.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtWidgets import QDockWidget, QMainWindow

MIN_DOCK_WIDTH = 220   # px: the parameter form's labels and fields stay readable


class DockWidths(QObject):
    """Watches ``window`` and its ``docks`` (those beside the central widget)."""

    def __init__(self, window: QMainWindow, docks: list[QDockWidget]):
        super().__init__(window)
        self._window, self._docks = window, list(docks)
        self._wanted: dict[QDockWidget, int] = {}
        self._window_width = window.width()
        self._restoring = False
        for d in self._docks:
            d.setMinimumWidth(MIN_DOCK_WIDTH)
            d.installEventFilter(self)
        window.installEventFilter(self)

    def wanted(self, dock: QDockWidget) -> int | None:
        """The width ``dock`` gets back when the window has room (None: not known yet)."""
        return self._wanted.get(dock)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt name
        if event.type() != QEvent.Type.Resize:
            return False
        if obj is self._window:
            self._window_width = event.size().width()
            if event.size().width() > event.oldSize().width() > 0:
                QTimer.singleShot(0, self._restore)
            else:
                QTimer.singleShot(0, self._note_unknown)
        elif not self._restoring and self._window.isVisible() and not obj.isFloating() and \
                self._window.width() == self._window_width:
            # the window kept its width (a window resize lays the docks out before its own
            # resize event comes): the user dragged the dock's edge
            self._wanted[obj] = obj.width()
        return False

    def _note_unknown(self) -> None:
        """Docks whose wanted width is not known yet keep the one they have (the first layout
        on screen)."""
        if self._window.isVisible():
            for dock in self._docks:
                if dock not in self._wanted and dock.isVisible() and not dock.isFloating():
                    self._wanted[dock] = dock.width()

    def _restore(self) -> None:
        self._restoring = True
        try:
            for dock in self._docks:
                want = self._wanted.get(dock)
                if want and dock.isVisible() and not dock.isFloating() and dock.width() < want:
                    self._window.resizeDocks([dock], [want], Qt.Orientation.Horizontal)
        finally:
            self._restoring = False
        self._note_unknown()
