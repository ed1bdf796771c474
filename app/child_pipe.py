"""The window's child processes (the solver, the 3D view) and the socket pair to each of them.

A child is a plain new interpreter (``python -m MODULE FD``), not multiprocessing's spawn (that
would re-run the caller's main script in the child); it talks over one end of a socket pair with
pickled tuples. Its log records travel as ``("log", LogRecord)`` and land in the window's own
loggers (its log panel, its log file). This module imports no Qt.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Callable


def spawn(module: str, env: dict | None = None) -> tuple[subprocess.Popen, Connection]:
    """Start ``python -m module FD``; returns the process and this side's connection."""
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-m", module, str(theirs.fileno())],
                            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
    theirs.close()
    return proc, Connection(ours.detach())


def relay(conn: Connection, deliver: Callable[[tuple], object]) -> bool:
    """Receive a child's messages until it closes its end: log records go to this process's
    loggers, the rest to ``deliver(msg)``. Returns False when ``deliver`` returned False (stop
    reading), True when the pipe closed."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return True
        if msg[0] == "log":
            rec = msg[1]
            logging.getLogger(rec.name).handle(rec)
        elif deliver(msg) is False:
            return False


def exit_code(proc: subprocess.Popen, timeout_s: float = 5.0) -> int | None:
    """The child's exit code once it has ended (None if it is still running after
    ``timeout_s``)."""
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        return None


class PipeLogHandler(logging.Handler):
    """In the child: log records go to the window (as plain, picklable records)."""

    def __init__(self, send):
        super().__init__(logging.INFO)
        self._send_msg = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            rec = logging.makeLogRecord(record.__dict__)
            rec.msg, rec.args = record.getMessage(), None
            if record.exc_info:
                rec.exc_text = logging.Formatter().formatException(record.exc_info)
            rec.exc_info = None
            self._send_msg(("log", rec))
        except Exception:  # noqa: BLE001 - a closed pipe: the window is gone
            pass


def ignore_terminal_signals() -> None:
    """In a child process of the window: SIGINT and SIGHUP, which a terminal sends to the whole
    process group (Ctrl-C, the terminal closed), are the window's to act on; it then stops or
    closes this process."""
    for name in ("SIGINT", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
