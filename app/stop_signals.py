"""Stop signals for the desktop application, handled as ``slicewise reconstruct`` handles them.

SIGTERM (``kill``, a session ending), SIGINT (Ctrl-C in the terminal that started the window) and
SIGHUP (that terminal closed) ask the window to stop the run after the current minibatch, write
its checkpoint and result, close and exit with code 0 (:meth:`.main_window.MainWindow.
stop_and_quit`).

Python runs a signal handler only when the interpreter gets control, which a window idle in Qt's
event loop may not give it for a long time; so the handler does nothing itself, and the signal's
number, which Python writes to a "wake-up" socket the moment the signal arrives, wakes the event
loop through a :class:`QSocketNotifier`. The window's child processes (solver, 3D view) ignore
SIGINT and SIGHUP, which a terminal sends to the whole process group: the window decides for them
(:func:`.child_pipe.ignore_terminal_signals`).
"""

from __future__ import annotations

import signal
import socket

from PyQt6.QtCore import QObject, QSocketNotifier

NAMES = ("SIGTERM", "SIGINT", "SIGHUP")


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class StopSignals(QObject):
    """Routes the stop signals to ``on_signal(signum)`` on the window's thread."""

    def __init__(self, on_signal, parent: QObject | None = None):
        super().__init__(parent)
        self._on_signal = on_signal
        self._read, self._write = socket.socketpair()
        for s in (self._read, self._write):
            s.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno())
        self._previous = {}
        for name in NAMES:
            sig = getattr(signal, name, None)
            if sig is not None:
                self._previous[sig] = signal.signal(sig, _noted)
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)

    def _drain(self) -> None:
        try:
            data = self._read.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            self._on_signal(int(signum))

    def restore(self) -> None:
        """The previous handlers and wake-up descriptor (the window has closed)."""
        self._notifier.setEnabled(False)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._read.close()
        self._write.close()


def _noted(signum, frame) -> None:
    """The Python-level handler: nothing to do here, the wake-up socket carries the signal."""
