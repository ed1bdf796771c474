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


class ThresholdClock:
    """Per-epoch solver and wall times of a :class:`Reconstruction`, and the epoch at which a
    quality score first reaches each threshold. Feed it every progress event; wall time counts
    from the run's first "running" state, so set-up (rate measurement, guesses) is excluded."""

    def __init__(self, rec, thresholds):
        self.rec, self.thresholds = rec, sorted(thresholds)
        self.reached: dict[float, tuple] = {}
        self._t0 = 0.0

    def is_epoch(self, ev) -> bool:
        if ev.kind == "state" and ev.state == "running" and not self._t0:
            self._t0 = time.perf_counter()
        return ev.kind == "epoch"

    def record(self, epoch: int, score: float) -> tuple[float, float, float]:
        """(this epoch's solver time, solver time so far, wall time so far) in seconds."""
        wall = time.perf_counter() - self._t0
        solver = sum(h["time_s"] for h in self.rec.history)
        for th in self.thresholds:
            if th not in self.reached and score >= th:
                self.reached[th] = (epoch, solver, wall)
        return self.rec.history[-1]["time_s"], solver, wall

    @property
    def all_reached(self) -> bool:
        return len(self.reached) == len(self.thresholds)

    def print_reached(self, n_epochs: int) -> None:
        print(f"{'corr >=':>8} {'epoch':>5} {'solver (s)':>10} {'wall (s)':>8}")
        for th in self.thresholds:
            if th in self.reached:
                e, ts, tw = self.reached[th]
                print(f"{th:>8.3f} {e:>5} {ts:>10.2f} {tw:>8.2f}")
            else:
                print(f"{th:>8.3f} {'not reached in ' + str(n_epochs) + ' epochs':>25}")
