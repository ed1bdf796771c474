"""The 3D view's pop-out: the same view in a full napari window (a mixin of
:class:`.view.NapariView`).

The window is made over several turns of the event loop, so that none blocks the window for
long: the napari window, one hidden layer per turn, the window shown, then the visible layers
revealed one per turn (a layer's first drawing in a new OpenGL context compiles its shaders).
"""

from __future__ import annotations

import logging

from PyQt6.QtCore import QEvent, QObject, QTimer, pyqtSignal

from .layers import add_state_layer, apply_view_settings

log = logging.getLogger("slicewise.app.napari")


class _CloseWatcher(QObject):
    """Tells when the pop-out closes. Its title bar's close button (a spontaneous close event)
    would make napari ask "Confirm to close" about layers that are only copies: that event is
    dropped and the window closed the way a program closes it, which asks nothing."""

    closed = pyqtSignal()

    def __init__(self, parent, close_quietly):
        super().__init__(parent)
        self._close_quietly = close_quietly

    def eventFilter(self, obj, event):  # noqa: N802 - Qt name
        if event.type() == QEvent.Type.Close:
            if event.spontaneous():
                event.ignore()
                QTimer.singleShot(0, self._close_quietly)
                return True
            self.closed.emit()
        return False


class NapariPopout:
    def pop_out(self) -> None:
        """Open a full napari window showing the same view: layers with their look, grid and
        camera. Made over several turns of the event loop: the window, one (hidden) layer per
        turn, the window shown, then the visible layers revealed one per turn (each one's first
        drawing compiles its shaders). Closing it rebuilds the embedded canvas, which shared
        its OpenGL context."""
        if self.viewer is None or self._stages:
            return
        state, made = self.view_state(), {}
        shown = [kw["name"] for kw in state["layers"] if kw["visible"]]

        def window() -> None:
            import napari  # noqa: PLC0415

            made["w"] = napari.Viewer(title="Slicewise \u2013 napari", ndisplay=state["ndisplay"],
                                      show=False)

        self.popout.setEnabled(False)
        self._measuring = False  # not a live update: no part of the pacing
        hidden = [{**kw, "visible": False} for kw in state["layers"]]
        self._stages = [window, *(lambda kw=kw: add_state_layer(made["w"], kw) for kw in hidden),
                        lambda: self._show_popout(made["w"], state),
                        *(lambda n=n: self._reveal(made["w"], n) for n in shown),
                        lambda: self._popout_done(state)]
        self._run_stage()

    def _show_popout(self, w, state: dict) -> None:
        apply_view_settings(w, state)
        w.scale_bar.visible = True
        w.show()
        watcher = _CloseWatcher(self, w.close)
        watcher.closed.connect(lambda: (self._forget_popout(w), self.schedule_rebuild()))
        w.window._qt_window.installEventFilter(watcher)
        self._watchers.append(watcher)
        self.popouts.append(w)

    def _reveal(self, w, name: str) -> None:
        if w in self.popouts:  # not closed meanwhile
            w.layers[name].visible = True

    def _popout_done(self, state: dict) -> None:
        self.popout.setEnabled(True)
        log.info("opened %d layer(s) in a napari window", len(state["layers"]))

    def _forget_popout(self, w) -> None:
        if w in self.popouts:
            self.popouts.remove(w)
