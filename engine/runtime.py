"""Process-wide settings an application (CLI, GUI) applies once at start-up; the engine never does.

:func:`launched_by_mpi`, :func:`mpi_rank_from_environment` -- whether an MPI launcher started this
process, and its rank, from the launcher's environment (before MPI itself is loaded).

:func:`keep_freed_memory` -- glibc only: serve large arrays from the heap and do not return freed
memory to the OS. Every optimiser step allocates and frees the same large temporaries (the tape's
wavefields); by default glibc unmaps them and the next step page-faults them in again (40-60k faults
and up to 0.8 s of system time per step on large problems, measured by benchmarks/). The price is
that the process keeps its peak memory while it lives, which a reconstruction holds anyway.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> str:
    """Apply the glibc setting above; returns a one-line note (also when it had no effect)."""
    if not sys.platform.startswith("linux"):
        return "memory setting skipped (not Linux/glibc)"
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(2 ** 30)) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(2 ** 31 - 1)) == 1)
    except (OSError, AttributeError):
        ok = False
    note = ("glibc mallopt: mmap threshold 1 GiB, trim threshold 2 GiB" if ok
            else "memory setting had no effect (not glibc)")
    log.debug(note)
    return note


def launched_by_mpi() -> bool:
    """Whether an MPI launcher (``mpiexec`` of MPICH, Open MPI, PMIx) started this process."""
    return any(k in os.environ for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_SIZE"))


def mpi_rank_from_environment() -> int:
    """This process's MPI rank as the launcher's environment states it (0 when not launched by
    MPI or not stated)."""
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        try:
            return int(os.environ[key])
        except (KeyError, ValueError):
            continue
    return 0
