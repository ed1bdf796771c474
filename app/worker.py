"""The window's handle on the solver, which runs in a process of its own.

:class:`RunController` starts a run in a new process (:mod:`.solver_process`), forwards
commands (pause, resume with changes, stop, the frame to preview) through a pipe, and turns the
process's messages (:mod:`.run_host`) into Qt signals on the window's thread. A reader thread
receives and unpickles them, so a large snapshot never blocks the event loop. One idle process is
started ahead of time (:meth:`prewarm`), so Start does not wait for Python and the engine to load.

``mode="thread"`` (or ``SLICEWISE_GUI_SOLVER=thread``) runs the same :class:`.run_host.RunHost` on
a thread of the window's process instead: tests that patch the engine use it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading

from PyQt6.QtCore import QObject, pyqtSignal

from slicewise.engine.errors import SlicewiseError

from .child_pipe import exit_code, relay, spawn
from .run_host import RunHost, RunInfo, RunStats  # noqa: F401 - RunInfo re-exported

log = logging.getLogger("slicewise.app.worker")


class SolverCrashed(SlicewiseError):
    """The solver process ended without reporting (killed, out of memory, a crash in a library)."""


class _ProcessClient:
    """A solver process (``python -m slicewise.app.solver_process FD``) on one end of a socket
    pair, and the thread that reads its messages. A plain new interpreter, not multiprocessing's
    spawn: that would re-run the caller's main script in the child."""

    def __init__(self, deliver=None):
        self.proc, self.conn = spawn("slicewise.app.solver_process")
        self._deliver = deliver
        self.reader: threading.Thread | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def bind(self, deliver) -> None:
        """Who receives the messages (a process started before its window existed)."""
        self._deliver = deliver

    def prepare(self, config, base_dir) -> None:
        """Build the run of ``config`` now; a later start of the same configuration uses it."""
        self.conn.send(("prepare", config, base_dir))

    def start(self, config, base_dir, resume, frame) -> None:
        self.conn.send(("start", config, base_dir, resume, frame))
        self.reader = threading.Thread(target=self._read, daemon=True, name="slicewise-reader")
        self.reader.start()

    def command(self, *msg) -> None:
        try:
            self.conn.send(msg)
        except (OSError, ValueError):  # the process has ended; its "done" is on its way
            pass

    def _read(self) -> None:
        done = []

        def deliver(msg) -> None:
            if msg[0] == "done":
                done.append(True)
            self._deliver(self, msg)

        relay(self.conn, deliver)
        if not done:
            code = exit_code(self.proc)
            self._deliver(self, ("failed", SolverCrashed(
                f"the solver process ended unexpectedly (exit code {code}); the window is "
                "unaffected and the last checkpoint on disk is intact"), ""))
            self._deliver(self, ("done",))

    def join(self, timeout_s: float) -> bool:
        if self.reader is not None:
            self.reader.join(timeout_s)
            if self.reader.is_alive():
                return False
        try:
            self.proc.wait(max(1.0, timeout_s))
        except subprocess.TimeoutExpired:
            return False
        return True

    def discard(self) -> None:
        """An idle process that will not be used."""
        self.command("quit")
        self.conn.close()
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            self.proc.terminate()


class _ThreadClient:
    """The same host on a thread of this process."""

    def __init__(self, deliver):
        self._deliver = deliver
        self.host: RunHost | None = None
        self.thread: threading.Thread | None = None

    def start(self, config, base_dir, resume, frame) -> None:
        self.host = RunHost(lambda m: self._deliver(self, m), config, base_dir, resume, frame)
        self.thread = threading.Thread(target=self.host.run, daemon=True, name="slicewise-solver")
        self.thread.start()

    def command(self, *msg) -> None:
        if self.host is not None:
            self.host.command(*msg)

    def join(self, timeout_s: float) -> bool:
        self.thread.join(timeout_s)
        return not self.thread.is_alive()

    def discard(self) -> None:
        pass

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def early_solver(config_path: str | None = None) -> _ProcessClient | None:
    """A solver process started now, before Qt and the window (``slicewise gui CONFIG --start``):
    its interpreter and engine imports, and the building of the run of ``config_path`` (data
    read, initial guess), overlap the window's start-up instead of following it. Give it to
    :meth:`RunController.adopt`; when Start then asks for that very configuration, the run is
    already built."""
    if os.environ.get("SLICEWISE_GUI_SOLVER", "process") != "process":
        return None
    client = _ProcessClient()
    if config_path and config_path.lower().endswith(".toml"):
        from pathlib import Path  # noqa: PLC0415

        from slicewise.engine.recon import config as cfgmod  # noqa: PLC0415

        try:
            cfg = cfgmod.from_toml(Path(config_path))
        except Exception:  # noqa: BLE001 - the window says what is wrong with the file
            return client
        client.prepare(cfg, str(Path(config_path).resolve().parent))
    return client


class RunController(QObject):
    """UI-side handle of one run at a time."""

    created = pyqtSignal(object)        # RunInfo
    events = pyqtSignal(list)           # [ProgressEvent, ...] in order
    snapshot = pyqtSignal(object)       # Snapshot
    applied = pyqtSignal(dict)          # changes accepted on resume
    refused = pyqtSignal(str)           # changes refused on resume (the run stays paused)
    finished = pyqtSignal(object, str)  # result path, final state ("finished" | "stopped")
    failed = pyqtSignal(object, str)    # exception, formatted traceback
    stopped = pyqtSignal()              # the solver has ended (after finished/failed)
    _message = pyqtSignal(object, object)

    def __init__(self, parent: QObject | None = None, mode: str | None = None):
        super().__init__(parent)
        self.mode = mode or os.environ.get("SLICEWISE_GUI_SOLVER", "process")
        self._client = None
        self._spare: _ProcessClient | None = None
        self._retired: list = []
        self._stats: RunStats | None = None
        self._gui_s = 0.0
        self.last_stats: RunStats | None = None
        self._frame = (0, 0)
        self._message.connect(self._dispatch)

    def is_active(self) -> bool:
        return self._client is not None

    @property
    def stats(self) -> RunStats | None:
        return self.last_stats

    def _new_client(self):
        deliver = self._message.emit  # queued to the window's thread
        return _ThreadClient(deliver) if self.mode == "thread" else _ProcessClient(deliver)

    def adopt(self, client: "_ProcessClient | None") -> None:
        """Keep ``client`` (from :func:`early_solver`) as the idle process the next Start uses."""
        if client is None:
            return
        if self.mode != "process" or self._spare is not None:
            client.discard()
            return
        client.bind(self._message.emit)
        self._spare = client

    def prewarm(self) -> None:
        """Start an idle solver process now, so that Start does not wait for it."""
        if self.mode == "process" and self._spare is None:
            self._spare = self._new_client()

    def start(self, config, base_dir=None, resume=None) -> None:
        if self.is_active():
            raise RuntimeError("a run is already active")
        client, self._spare = self._spare, None
        if client is not None and (self.mode == "thread" or not client.alive()):
            client.discard()
            client = None
        if client is None:
            client = self._new_client()
        self._client, self._stats, self._gui_s = client, None, 0.0
        client.start(config, None if base_dir is None else str(base_dir),
                     None if resume is None else str(resume), self._frame)

    def _dispatch(self, client, msg) -> None:
        if client is not self._client:
            return  # a late message of a run that wait() already retired
        kind = msg[0]
        if kind == "done":
            self._retire(join=False)  # the process ends by itself; never wait for it here
        elif kind == "stats":
            self._stats = msg[1]
        elif kind in ("finished", "failed"):
            getattr(self, kind).emit(msg[1], msg[2])
        else:
            getattr(self, kind).emit(msg[1])

    def _retire(self, join: bool = True) -> None:
        client, self._client = self._client, None
        if join:
            client.join(10)
        else:
            self._retired.append(client)  # reaped at shutdown
        st = self._stats or RunStats()
        st.gui_s = self._gui_s  # measured here, where the drawing happens
        self.last_stats = st
        self.stopped.emit()

    def pause(self) -> None:
        if self._client is not None:
            self._client.command("pause")

    def resume(self, changes: dict | None = None) -> None:
        """Resume, applying ``changes`` first; the solver answers with ``applied`` or
        ``refused`` (then it stays paused)."""
        if self._client is not None:
            self._client.command("resume", dict(changes or {}))

    def stop(self) -> None:
        if self._client is not None:
            self._client.command("stop")

    def set_frame(self, angle: int, spot: int) -> None:
        self._frame = (int(angle), int(spot))
        if self._client is not None:
            self._client.command("frame", *self._frame)

    def snapshot_handled(self, seconds: float) -> None:
        self._gui_s += seconds
        if self._client is not None:
            self._client.command("drawn", seconds)

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Block until the solver has ended (stop first); True when it has. Messages already
        queued are then delivered by the event loop as usual (and ignored)."""
        if self._client is None:
            return True
        if not self._client.join(timeout_s):
            return False
        self._retire(join=False)
        return True

    def shutdown(self) -> None:
        """The window closes: let the idle process go (an active run must be stopped first)."""
        if self._spare is not None:
            self._spare.discard()
            self._spare = None
        for client in self._retired:  # ended runs: collect their exit status (no zombies)
            client.join(5)
        self._retired.clear()
