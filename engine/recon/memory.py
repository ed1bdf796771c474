"""Memory of a run: the estimate before it starts, what is available, what it used."""

from __future__ import annotations

import logging
import resource

import numpy as np

from ..backend import Backend
from ..errors import SlicewiseError
from ..io.datafile import estimate_memory_bytes

log = logging.getLogger(__name__)


def available_memory_bytes(backend: Backend) -> int:
    """Free device memory (GPU) or MemAvailable (Linux); 0 when unknown."""
    if backend.is_gpu:  # pragma: no cover - GPU
        free, _ = backend.xp.cuda.runtime.memGetInfo()
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def check_memory(config, dataset, problem, backend: Backend) -> int:
    """Estimate the run's peak memory (bytes) before it starts; refuse a run that cannot fit."""
    ds, run = dataset, config.run
    frames = (run.batch_angles or ds.n_angles) * ((run.batch_spots or ds.n_spots)
                                                   if problem.model.splits_spots else ds.n_spots)
    est = estimate_memory_bytes(ds, problem.object_shape, problem.object_shape[0], frames,
                                dtype=np.dtype(backend.complex_dtype).name)
    avail = available_memory_bytes(backend)
    log.info("estimated peak memory %.0f MiB (available %.0f MiB)", est / 2**20, avail / 2**20)
    if avail and est > avail:
        raise SlicewiseError(
            f"this run needs about {est / 2**30:.1f} GiB but only {avail / 2**30:.1f} GiB are available; "
            "lower run.batch_spots / run.batch_angles, set model.checkpoint_slices, or use fewer "
            "slices (model.n_slices)")
    return est


def used_memory_bytes(backend: Backend) -> int:
    """Memory held now: the CuPy pool (GPU) or the process's peak resident size (CPU)."""
    if backend.is_gpu:  # pragma: no cover - GPU
        return int(backend.xp.get_default_memory_pool().total_bytes())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
