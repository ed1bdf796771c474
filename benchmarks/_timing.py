"""Shared timing helper for the benchmark scripts: best-of-N wall time of a callable."""

from __future__ import annotations

import time
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
