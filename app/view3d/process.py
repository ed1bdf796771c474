"""The 3D view's own process: napari, vispy and their OpenGL drawing, away from the window.

With software OpenGL (llvmpipe: Xvfb, VNC, remote desktops) one drawing of the 3D canvas takes
0.1-0.4 s and a new napari layer tens of milliseconds more; in the window's process each of them
stalls its event loop. Here the whole 3D tab (:class:`.view.NapariView`: napari's canvas,
layer list and controls, grid, pop-out) lives in a process of its own (``python -m
slicewise.app.view3d.process FD``, a plain new interpreter on one end of a socket pair). Its
window becomes a child of a native window in the main window's tab (:mod:`.remote`; X11
lets one process's window hold another's), so it looks and behaves like part of the window,
while its drawing never blocks the window's thread. A crash here costs the 3D view, not the
window.

Messages from the window: ``("embed", window id, w, h)`` (become a child of that native window
of the tab, ``w`` x ``h`` pixels, and show), ``("size", w, h)``,
``("show", seq, args)`` (``NapariView.show_volume(*args)``), ``("message", text)``,
``("clear", keep_camera)``, ``("prepare",)``, ``("pop_out",)``, ``("query", qid, what)``
(``what``: ``"state"`` or ``"screenshot"``) and ``("close",)``. To the window: ``("ready",
window id)``, ``("status", dict)`` whenever the view's state changes, ``("reply", qid,
value)`` and ``("log", LogRecord)``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QWindow
from PyQt6.QtWidgets import QApplication

from ..child_pipe import PipeLogHandler, ignore_terminal_signals

log = logging.getLogger("slicewise.app.napari")


def _state(view) -> dict:
    """What the window mirrors of the view (and tests read): plain values only."""
    from .layers import camera_of, grid_of  # noqa: PLC0415
    v = view.viewer
    layers = {}
    if v is not None:
        for layer in v.layers:
            layers[layer.name] = {"shape": tuple(layer.data.shape), "visible": bool(layer.visible),
                                  "contrast_limits": tuple(map(float, layer.contrast_limits)),
                                  "rendering": str(layer.rendering)}
    return {"busy": bool(view.busy), "updates": view.updates, "warm": view.ready,
            "layers": list(layers), "layer_info": layers,
            "cost_s": view.cost_s, "rebuilds": view.rebuilds,
            "popouts": len(view.popouts), "title": view.title.text(),
            "grid": bool(v is not None and grid_of(v).enabled),
            "camera_angles": None if v is None else tuple(map(float, camera_of(v).angles)),
            "popout_enabled": view.popout.isEnabled(), "size": (view.width(), view.height())}


def _install_excepthook() -> None:
    """Nothing here opens a dialog: drawing errors rebuild the canvas, anything else is logged
    (and reaches the window's log panel)."""
    from .view import gl_error_seen, is_gl_error  # noqa: PLC0415

    def hook(etype, value, tb):
        if issubclass(etype, KeyboardInterrupt):
            return
        text = "".join(traceback.format_tb(tb))
        if is_gl_error(value, text):
            log.warning("3D view: drawing failed (%s); rebuilding the canvas", etype.__name__)
            gl_error_seen()
            return
        log.error("3D view: %s: %s\n%s", etype.__name__, value, text)

    sys.excepthook = hook


class _Inbox(QObject):
    """Hands the reader thread's messages to the event loop's thread (queued)."""

    got = pyqtSignal(object)


class _ViewServer:
    """The view and the window's messages: each is handled on the event loop's thread, and the
    view's state goes back whenever it changes."""

    def __init__(self, conn, app: QApplication):
        self.conn, self.app = conn, app
        self._lock = threading.Lock()
        self._last_state: dict | None = None
        self._seq = 0   # the newest volume handed to the view
        from .view import NapariView  # noqa: PLC0415 - after the excepthook

        self.view = NapariView()
        self.view.setWindowFlag(Qt.WindowType.FramelessWindowHint)
        self.view.preload(0)   # napari's imports on a thread; the window id is sent meanwhile
        self.inbox = _Inbox()
        self.inbox.got.connect(self.handle, Qt.ConnectionType.QueuedConnection)

    def send(self, msg) -> bool:
        try:
            with self._lock:
                self.conn.send(msg)
            return True
        except (OSError, ValueError):
            return False

    def push_status(self, force: bool = False) -> None:
        try:
            state = {**_state(self.view), "seq": self._seq}
        except Exception:  # noqa: BLE001 - e.g. a layer half made: next time
            return
        if force or state != self._last_state:
            self._last_state = state
            self.send(("status", state))

    def handle(self, msg) -> None:
        kind, view = msg[0], self.view
        try:
            if kind == "embed":   # into the tab's native window, filling it
                _, host, w, h = msg
                view.winId()
                view.windowHandle().setParent(QWindow.fromWinId(host))
                view.setGeometry(0, 0, w, h)
                view.show()
            elif kind == "size":
                view.setGeometry(0, 0, msg[1], msg[2])
            elif kind == "show":
                self._seq = msg[1]
                view.show_volume(*msg[2])
            elif kind == "message":
                view.set_message(msg[1])
            elif kind == "clear":
                view.clear(msg[1])
            elif kind == "prepare":
                view.prepare()
            elif kind == "pop_out":
                view.pop_out()
            elif kind == "query":
                _, qid, what = msg
                self.send(("reply", qid, _state(view) if what == "state" else view.screenshot()))
            elif kind == "close":
                view.close_viewer()
                self.app.quit()
                return
        except Exception:  # noqa: BLE001 - one bad message must not end the view
            log.exception("3D view: %s failed", kind)
        self.push_status()

    def read(self) -> None:
        """On a thread of its own: the window's messages, until it goes away."""
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):  # the window is gone
                self.inbox.got.emit(("close",))
                return
            self.inbox.got.emit(msg)


def serve(conn) -> int:
    """Child entry point: run the 3D view until the window says ``close`` or goes away."""
    app = QApplication([sys.argv[0], "-name", "slicewise-3d"])
    _install_excepthook()
    server = _ViewServer(conn, app)
    root = logging.getLogger("slicewise")
    root.setLevel(logging.INFO)
    root.addHandler(PipeLogHandler(server.send))
    root.propagate = False
    threading.Thread(target=server.read, daemon=True, name="slicewise-3d-reader").start()
    ticker = QTimer()
    ticker.setInterval(100)  # the view's own progress (stages, loading) reaches the window
    ticker.timeout.connect(server.push_status)
    ticker.start()
    server.send(("ready", int(server.view.winId())))
    server.push_status(force=True)
    return app.exec()


if __name__ == "__main__":
    from multiprocessing.connection import Connection

    ignore_terminal_signals()   # Ctrl-C in the window's terminal: the window closes this view
    code = serve(Connection(int(sys.argv[1])))
    logging.shutdown()
    os._exit(code)  # napari's objects need no orderly teardown: the window is closed
