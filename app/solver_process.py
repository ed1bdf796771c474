"""The solver's own process: the window is a client of the run, not its host.

A reconstruction in the window's process competes with drawing for the interpreter lock and slows
both; here it has a process to itself (a new interpreter, ``python -m slicewise.app.solver_process
FD``, talking over a socket pair; nothing of Qt is inherited), and a crash in the solver leaves
the window usable. The window starts one idle process ahead of time (it imports
the engine while the user edits), then sends it ``("start", config, base_dir, resume, frame)``.

Over the pipe, the child sends :mod:`.run_host` messages and ``("log", LogRecord)``; the window
sends commands: ``("pause",)``, ``("resume", changes)``, ``("stop",)``, ``("frame", a, s)``,
``("drawn", seconds)`` and ``("quit",)`` for an idle process. This module imports no Qt.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from .child_pipe import PipeLogHandler, ignore_terminal_signals

LOGGER_NAME = "slicewise"
RUN_LOG = "slicewise-run.log"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _file_log(output_dir: Path) -> logging.Handler | None:
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        h = logging.FileHandler(Path(output_dir) / RUN_LOG, encoding="utf-8")
    except OSError:
        return None
    h.setFormatter(logging.Formatter(FORMAT))
    h.setLevel(logging.INFO)
    return h


def _stop_on_sigterm(hosts: list) -> None:
    """SIGTERM (e.g. to the window's whole process group) stops the run as the window's Stop
    does, result and checkpoint written; an idle process just ends."""
    def on_term(signum, frame):
        if not hosts:
            raise SystemExit(0)
        hosts[0].command("stop")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)


def serve(conn) -> None:
    """Child process entry point: wait for one run, run it, report, exit."""
    lock = threading.Lock()
    hosts: list = []   # the run's host, once there is one
    _stop_on_sigterm(hosts)

    def send(msg) -> None:
        with lock:
            conn.send(msg)

    from slicewise.engine.runtime import keep_freed_memory  # noqa: PLC0415

    keep_freed_memory()  # as `slicewise reconstruct` does: the same solver, the same speed
    root = logging.getLogger(LOGGER_NAME)
    root.setLevel(logging.INFO)
    root.addHandler(PipeLogHandler(send))
    root.propagate = False
    import slicewise.engine.recon.run  # noqa: F401, PLC0415 - warm up while the user edits

    try:
        msg = conn.recv()
        prepared = None
        if msg[0] == "prepare":  # the run that is about to be started, built while we wait
            prepared = _prepare(*msg[1:])
            msg = conn.recv()
    except EOFError:
        return
    if msg[0] != "start":
        return
    from .run_host import RunHost  # noqa: PLC0415

    _, config, base_dir, resume, frame = msg
    prepared = _matching(prepared, config, base_dir, resume)
    if prepared is not None:
        logging.getLogger("slicewise.app.solver").info("the run was built while the window "
                                                       "started")
    handlers: list = []

    def send_and_log(m) -> None:
        if m[0] == "created":  # the run's output folder is known: keep a log file there
            h = _file_log(m[1].output_dir)
            if h is not None:
                root.addHandler(h)
                handlers.append(h)
        send(m)

    host = RunHost(send_and_log, config, base_dir, resume, frame, prepared=prepared)
    hosts.append(host)
    listener = threading.Thread(target=_listen, args=(conn, host), daemon=True,
                                name="slicewise-commands")
    listener.start()
    try:
        host.run()
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        conn.close()


def _prepare(config, base_dir):
    """``(config, base_dir, Reconstruction)`` built ahead of the start (``slicewise gui CONFIG
    --start``: while the window starts). Building one writes nothing; a failure is left to the
    real start, which reports it."""
    from slicewise.engine.recon.run import Reconstruction  # noqa: PLC0415

    try:
        return config, base_dir, Reconstruction(config.copy(), None, base_dir=base_dir,
                                                distributed=None)
    except Exception:  # noqa: BLE001 - said by the real start
        return None


def _matching(prepared, config, base_dir, resume):
    """The prepared run when the start asks for exactly it, else None (and it is let go)."""
    if prepared is None:
        return None
    cfg, folder, run = prepared
    try:
        same = resume is None and cfg == config and \
            Path(folder or ".").resolve() == Path(base_dir or ".").resolve()
    except Exception:  # noqa: BLE001 - e.g. values that do not compare: build afresh
        same = False
    if not same:
        run.dataset.close()
        return None
    return run


def _listen(conn, host) -> None:
    """Commands from the window, on a thread of their own (the solver thread is busy)."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the window went away: stop cleanly (writes the result)
            host.command("stop")
            return
        if msg[0] == "quit":
            host.command("stop")
            return
        try:
            host.command(msg[0], *msg[1:])
        except Exception:  # noqa: BLE001 - a bad command must not kill the run
            logging.getLogger("slicewise.app.solver").exception("command %s failed", msg[0])


if __name__ == "__main__":
    import os
    import sys
    from multiprocessing.connection import Connection

    ignore_terminal_signals()   # Ctrl-C in the window's terminal: the window stops the run
    serve(Connection(int(sys.argv[1])))
    # the result is written and closed, the window told: skip tearing the interpreter down
    # module by module (the window waits for this process to end, e.g. to quit after a run)
    logging.shutdown()
    os._exit(0)
