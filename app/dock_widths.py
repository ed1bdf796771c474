"""Docks that keep the width the user gave them.

Qt's main window takes the room a shrinking window loses from its docks, down to their minimum,
and gives the room an enlarged window gains to the central widget: after a shrink and an
enlargement the parameter form stayed ~80 px wide and clipped. Here every dock has a usable
minimum width, and when the window grows, docks narrower than the width the user last gave
them (by dragging their edge) get it back, and so do docks shown again after being hidden.
"""

from __future__ import annotations

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtWidgets import QDockWidget, QMainWindow

MIN_DOCK_WIDTH = 220   # px: the parameter form's labels and fields stay readable


class DockWidths(QObject):
    """Watches ``window`` and its ``docks`` (those beside the central widget)."""

    def __init__(self, window: QMainWindow, docks: list[QDockWidget], width: int | None = None):
        """``width``: the docks' width until the user gives them another (None: the first one
        they have on screen)."""
        super().__init__(window)
        self._window, self._docks = window, list(docks)
        self._wanted: dict[QDockWidget, int] = {d: width for d in docks} if width else {}
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
                QTimer.singleShot(0, self.restore)
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

    def restore(self, shown_again: bool = False) -> None:
        """Docks narrower than their wanted width get it (as far as the window has room).
        ``shown_again``: the docks were hidden and are shown again, which lays them out at
        their minimum width later (their width now is still the old one): resized anyway."""
        self._restoring = True
        try:
            for dock in self._docks:
                want = self._wanted.get(dock)
                if want and not dock.isHidden() and not dock.isFloating() and \
                        (shown_again or dock.width() < want):
                    self._window.resizeDocks([dock], [want], Qt.Orientation.Horizontal)
        finally:
            self._restoring = False
        self._note_unknown()
