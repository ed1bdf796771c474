"""The main window's 3D tab when the 3D view runs in a process of its own.

:class:`RemoteNapariView` has the methods the window uses of :class:`.view.NapariView`
(``preload``, ``prepare``, ``show_volume``, ``set_message``, ``clear``, ``live_interval_s``,
``close_viewer``, ``busy``, ``updates``, ``layer_names``) and forwards them to
:mod:`.process`, whose window sits in the tab: the process makes its window a child of a
native window of this tab (X11 lets a window of one process hold another's), and this side tells
it the size to fill. Volumes are pickled and sent on a thread, so that a large
one never blocks the event loop either. If the process dies, the tab says so and the next volume
starts a new one.

:func:`make_3d_view` picks this or the in-process view: embedding another process's window
needs X11 (``QT_QPA_PLATFORM=xcb``); elsewhere (Wayland, Windows, macOS) the 3D view stays in the
window's process. ``SLICEWISE_3D_VIEW=process|window`` overrides the choice.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import subprocess
import threading

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QGuiApplication, QPalette
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..child_pipe import exit_code, relay, spawn
from .canvas import BACKGROUND, make_native
from .layers import live_interval

__all__ = ["RemoteNapariView", "make_3d_view", "view_mode"]

log = logging.getLogger("slicewise.app.napari")

MAX_CRASHES = 3   # unexpected ends of the 3D process before it is no longer restarted
NO_VOLUME = "No volume yet: start a reconstruction or open a result file."


def view_mode() -> str:
    """``"process"`` (the 3D view in its own process, embedded) or ``"window"``."""
    forced = os.environ.get("SLICEWISE_3D_VIEW", "").strip().lower()
    if forced in ("process", "window"):
        return forced
    return "process" if QGuiApplication.platformName() == "xcb" else "window"


def make_3d_view(parent: QWidget | None = None) -> QWidget:
    if view_mode() == "process":
        return RemoteNapariView(parent)
    from .view import NapariView  # noqa: PLC0415

    return NapariView(parent)


class _Link(QObject):
    """One 3D-view process: its socket, a reader and a sender thread. Messages arrive on the
    window's thread through :attr:`got` (queued)."""

    got = pyqtSignal(object, object)   # (link, message); ("ended", exit code) when it ends

    def __init__(self):
        super().__init__()
        self.proc, self.conn = spawn("slicewise.app.view3d.process",
                                     dict(os.environ, QT_QPA_PLATFORM="xcb"))
        self._out: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="slicewise-3d-read").start()
        threading.Thread(target=self._write, daemon=True, name="slicewise-3d-write").start()

    def send(self, *msg) -> None:
        self._out.put(msg)

    def _write(self) -> None:
        while True:
            msg = self._out.get()
            if msg is None:
                return
            if msg[0] == "show":
                with self._out.mutex:
                    newer = any(m is not None and m[0] == "show" for m in self._out.queue)
                if newer:
                    continue  # a newer volume is waiting: this one would be drawn for nothing
            try:
                self.conn.send(msg)  # pickling and sending: off the window's thread
            except (OSError, ValueError):
                return

    def _read(self) -> None:
        if relay(self.conn, self._emit):
            self._emit(("ended", exit_code(self.proc)))

    def _emit(self, msg) -> bool:
        try:
            self.got.emit(self, msg)
            return True
        except RuntimeError:  # the application is shutting down: nobody to tell
            return False

    def close(self, ready: bool, timeout_s: float = 2.0) -> None:
        """End the process: asked to close its windows (pop-outs too) when it is ``ready``,
        else (still starting: nothing to keep) ended at once."""
        if ready:
            self.send("close")
        self._out.put(None)
        try:
            self.proc.wait(timeout_s if ready else 0.01)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.conn.close()


class RemoteNapariView(QWidget):
    """The 3D tab, drawn by a process of its own (see the module's docstring)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.note = QLabel(NO_VOLUME)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(0, 0, 0, 0)
        self._lay.addWidget(self.note, 1)
        self._link: _Link | None = None
        self._container: QWidget | None = None
        self._status: dict = {}
        self._message = NO_VOLUME
        self._seq = itertools.count(1)
        self._sent_seq = 0
        self._pending = None          # show_volume arguments until the process is ready
        self._ready = self._embedded = self._layout_pending = False
        self._closed = False
        self.crashes = 0              # unexpected ends of the 3D process
        self._qids = itertools.count(1)
        self.replies: dict = {}       # query id -> value (tests, screenshots)
        self._start_timer = QTimer(self)
        self._start_timer.setSingleShot(True)
        self._start_timer.timeout.connect(self._start_if_due)
        self._when = None

    # ---- the process ---------------------------------------------------------------------------
    def preload(self, delay_ms: int = 1500, when=None) -> None:
        """Start the 3D process after ``delay_ms`` once ``when()`` (e.g. no run competing for the
        CPU: napari's imports take seconds of CPU) says so."""
        self._when = when
        if self._link is None and not self._closed:
            self._start_timer.start(delay_ms)

    def _start_if_due(self) -> None:
        if self._link is not None or self._closed:
            return
        if self._when is not None and not self._when():
            self._start_timer.start(3000)
            return
        self._start()

    def _start(self) -> None:
        if self._link is not None or self._closed:
            return
        self._ready = self._embedded = False
        self._status = {}
        self._sent_seq = 0
        self._link = _Link()
        self._link.got.connect(self._on_message, Qt.ConnectionType.QueuedConnection)
        self.note.setText("loading the 3D viewer (napari)…")

    def _on_message(self, link, msg) -> None:
        if link is not self._link:
            return  # a process that was let go
        kind = msg[0]
        if kind == "ready":
            self._embed(msg[1])
        elif kind == "status":
            self._status = msg[1]
        elif kind == "reply":
            self.replies[msg[1]] = msg[2]
        elif kind == "ended":
            self._ended(msg[1])

    def _embed(self, wid: int) -> None:
        """The process's window is ready (``wid``): it is placed inside :attr:`_container`, a
        native window of this tab, once the tab is on screen."""
        self._container = QWidget(self)
        self._container.setMinimumSize(200, 150)
        # painted where the process's window does not (yet) reach: no stale pixels after resizes
        self._container.setAutoFillBackground(True)
        pal = self._container.palette()
        pal.setColor(QPalette.ColorRole.Window, QColor(BACKGROUND))
        self._container.setPalette(pal)
        # a native window of its own, which the process's window fills at (0, 0)
        make_native(self._container)
        self._container.installEventFilter(self)   # its resizes and shows: the size to fill
        self._lay.addWidget(self._container, 1)
        self.note.hide()
        self._ready = True
        self._embedded = self._layout_pending = False
        self._link.send("message", self._message)
        if self.isVisible():
            QTimer.singleShot(0, self._show_embedded)
        if self._pending is not None:
            args, self._pending = self._pending, None
            self._send_show(args)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().showEvent(event)
        if self._ready and not self._embedded:
            QTimer.singleShot(0, self._show_embedded)

    def _show_embedded(self) -> None:
        """The process puts its window into the container and shows it, once the container is
        on screen (its native window exists and is placed)."""
        if self._ready and not self._embedded and self.isVisible():
            self._embedded = True
            self._link.send("embed", int(self._container.winId()), *self._container_size())

    def _container_size(self) -> tuple[int, int]:
        self._lay.activate()
        c = self._container
        return (max(1, c.width()), max(1, c.height())) if c is not None else (1, 1)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt name
        """The container was resized or shown (also after a resize while its tab was hidden,
        which reaches it only when it is shown again): the process's window follows."""
        if obj is self._container and event.type() in (QEvent.Type.Resize, QEvent.Type.Show) \
                and self._ready and self._embedded and not self._layout_pending:
            self._layout_pending = True
            QTimer.singleShot(0, self._send_size)
        return False

    def _send_size(self) -> None:
        """The process's window fills the container (a child window, it moves with it)."""
        self._layout_pending = False
        if self._ready and self._embedded:
            self._link.send("size", *self._container_size())

    def _ended(self, code) -> None:
        """The process is gone (not by our close): the tab says so, and the next volume starts
        a new one, :data:`MAX_CRASHES` times at most (a process that cannot start, e.g. no
        OpenGL, is not started again and again)."""
        self._drop_link()
        if self._closed:
            return
        self.crashes += 1
        if self.crashes >= MAX_CRASHES:
            self._closed = True   # nothing restarts it; the rest of the window carries on
            self._pending = None
            text = (f"The 3D view's process ended {self.crashes} times (last exit code {code}) "
                    "and is not started again; the log says why. Restart Slicewise to try "
                    "again, or set SLICEWISE_3D_VIEW=window to draw the 3D view in the "
                    "window's own process.")
        else:
            text = (f"The 3D view's process ended (exit code {code}); it restarts with the next "
                    "volume.")
        log.warning("3D view: %s", text)
        self.note.setText(text)
        self.note.show()
        if self._pending is not None and not self._closed:
            self._start()   # it died before it could show the volume that waits

    def _drop_link(self) -> None:
        if self._container is not None:
            self._container.hide()
            self._lay.removeWidget(self._container)
            self._container.deleteLater()
            self._container = None
        self._link, self._ready, self._status = None, False, {}

    # ---- what the window calls ---------------------------------------------------------------
    def prepare(self) -> None:
        """The tab is shown: the process is started now if it was not (the user asked for it)."""
        if self._link is None:
            self._start()
        elif self._ready:
            self._link.send("prepare")

    def show_volume(self, volumes, pixel_size_m, slice_thickness_m, truth=None,
                    truth_voxel_m=None, title: str = "", reset_camera=None,
                    preview: bool = False) -> None:
        """As :meth:`.view.NapariView.show_volume`, drawn by the 3D process."""
        if self._closed:
            return
        args = (volumes, pixel_size_m, slice_thickness_m, truth, truth_voxel_m, title,
                reset_camera, preview)
        if not self._ready:
            self._pending = args
            if self._link is None:
                self._start()
            return
        self._send_show(args)

    def _send_show(self, args) -> None:
        self._sent_seq = next(self._seq)
        self._link.send("show", self._sent_seq, args)

    def set_message(self, text: str) -> None:
        self._message = text
        if self._ready:
            self._link.send("message", text)
        elif self._link is None:
            self.note.setText(text)

    def clear(self, keep_camera: bool = False) -> None:
        self._pending = None
        self._message = NO_VOLUME
        if self._ready:
            self._link.send("clear", keep_camera)
        elif self._link is None:
            self.note.setText(NO_VOLUME)

    def pop_out(self) -> None:
        if self._ready:
            self._link.send("pop_out")

    def query(self, what: str = "state") -> int:
        """Ask the process for ``what`` (``"state"`` or ``"screenshot"``); the answer lands in
        :attr:`replies` under the returned id."""
        qid = next(self._qids)
        if self._ready:
            self._link.send("query", qid, what)
        return qid

    def close_viewer(self) -> None:
        self._closed = True
        self._start_timer.stop()
        link, ready = self._link, self._ready
        self._drop_link()
        if link is not None:
            link.close(ready)

    # ---- what the window and benchmarks read -------------------------------------------------
    def live_interval_s(self) -> float:
        """Seconds between live updates during a run (see :func:`.layers.live_interval`)."""
        return live_interval(self.cost_s)

    @property
    def cost_s(self) -> float | None:
        """The 3D process's smoothed cost of a volume update (None before the first)."""
        return self._status.get("cost_s")

    @property
    def ready(self) -> bool:
        """The process is embedded and napari loaded in it."""
        return self._ready and bool(self._status.get("warm"))

    @property
    def busy(self) -> bool:
        """A volume waits, is on its way, or is being set up in the 3D process."""
        if self._pending is not None:
            return True
        if not self._ready:
            return self._link is not None
        return bool(self._status.get("busy")) or self._status.get("seq", 0) < self._sent_seq

    @property
    def updates(self) -> int:
        return int(self._status.get("updates", 0))

    @property
    def process(self) -> subprocess.Popen | None:
        return None if self._link is None else self._link.proc

    def layer_names(self) -> list[str]:
        return list(self._status.get("layers", []))

    def status(self) -> dict:
        """The 3D process's last reported state (see :func:`.process._state`)."""
        return dict(self._status)
