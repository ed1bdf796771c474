"""Shared timing helper for the benchmark scripts: best-of-N wall time of a callable."""

from __future__ import annotations

import time
import argparse
from typing import Callable


def best_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1, sync: Callable | None = None) -> float:
    """Smallest wall time (s) of ``repeat`` calls after ``warmup`` calls; ``sync`` waits for a GPU."""
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best


def gpu_sync(backend) -> Callable | None:
    if backend.is_gpu:
        return lambda: backend.xp.cuda.Stream.null.synchronize()
    return None


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """Argument parser with the options every benchmark has: ``--backend`` and ``--keep-memory``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--backend", default="auto", help="auto | numpy | cupy")
    ap.add_argument("--keep-memory", action="store_true",
                    help="glibc: keep freed memory in the process (slicewise.engine.runtime)")
    return ap


def start(args):
    """Backend from ``args``, the printed header line, and a GPU sync callable (no-op on CPU)."""
    from slicewise.engine import get_backend  # noqa: PLC0415
    from slicewise.engine.runtime import keep_freed_memory  # noqa: PLC0415

    be = get_backend(args.backend)
    print(f"# {be.describe()}" + (f"; {keep_freed_memory()}" if args.keep_memory else ""))
    return be, gpu_sync(be) or (lambda: None)
