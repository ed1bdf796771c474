"""``slicewise reconstruct --ranks N``: start the MPI ranks and relay stop signals to them.

MPICH's ``mpiexec`` (hydra) forwards SIGINT and SIGTERM to its ranks, which then stop after the
current minibatch with a checkpoint -- but not SIGHUP: a hangup (a closed terminal or SSH session,
or a scheduler that sends it) ends ``mpiexec`` at once and its ranks are killed without a
checkpoint. This launcher starts ``mpiexec`` with SIGHUP ignored and in a session of its own (the
terminal's signals reach the launcher only), and relays every stop signal: SIGINT as SIGINT,
SIGTERM and SIGHUP as SIGTERM. It exits with ``mpiexec``'s code, or 128 + the signal it received
when the ranks stopped on it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from slicewise.engine.errors import ConfigError

#: Stop signals the launcher relays, and what ``mpiexec`` receives for each.
RELAYED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM,
           signal.SIGHUP: signal.SIGTERM}


def find_mpiexec() -> str:
    """The ``mpiexec`` of this environment (beside Python, as the ``mpi`` extra installs it), else
    the first on PATH."""
    found = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if found is None:
        raise ConfigError("--ranks needs mpiexec: install the 'mpi' extra (pip install "
                          "'slicewise[mpi]') or an MPI library")
    return found


def launch_ranks(n_ranks: int, arguments: list[str]) -> int:
    """Run ``slicewise ARGUMENTS`` on ``n_ranks`` MPI ranks; returns the exit code (see the
    module docstring)."""
    if n_ranks < 1:
        raise ConfigError(f"--ranks must be at least 1, got {n_ranks}")
    command = [find_mpiexec(), "-n", str(n_ranks), sys.executable, "-m", "slicewise.cli",
               *arguments]
    received: list[int] = []
    pending: list[int] = []  # arrived while mpiexec was starting
    proc = None

    def relay(signum, frame):
        if not received:
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            os.write(2, f"{name}: every rank stops after this minibatch and writes the checkpoint "
                        f"(mpiexec gets {RELAYED[signum].name})\n".encode())  # safe in a handler
        received.append(signum)
        if proc is None:
            pending.append(signum)
        else:
            proc.send_signal(RELAYED[signum])

    previous = {sig: signal.signal(sig, relay) for sig in RELAYED}
    try:
        ignore_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited by mpiexec
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            signal.signal(signal.SIGHUP, ignore_hup)
        for signum in pending:
            proc.send_signal(RELAYED[signum])
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received and code == 128 + RELAYED[received[0]]:
        return 128 + received[0]  # the ranks stopped cleanly on the signal the job received
    return code
