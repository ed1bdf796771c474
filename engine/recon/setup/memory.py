"""Memory of a run: the estimate before it starts, what is available, what it used."""

from __future__ import annotations

import logging
import resource

import numpy as np

from ...backend import Backend
from ...errors import ConfigError, SlicewiseError
from ..loop.optimizers import OPTIMIZERS
from .schedule import ESTIMATION_SPOTS

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


#: Preload every frame onto the device when the whole data set is smaller than this (the
#: problem's rule; counted here).
PRELOAD_LIMIT_BYTES = 2 * 1024 ** 3

#: Object-sized arrays per unknown besides the value: its gradient, the copy of the estimate
#: at the start of each epoch (for a rollback) and the host copy a checkpoint write takes.
_OBJECT_COPIES = 3
#: Complex window-sized arrays per frame and probe mode besides the slices, and per frame for
#: the loss (measured on a 64x64-probe ptychography run: 16 and 8 complex64 windows).
_WINDOWS_PER_MODE = 12
#: ... and per further slice (propagation to it: spectrum, kernel product, transmission; 4
#: fits the traced peak of a 4-slice run).
_WINDOWS_PER_EXTRA_SLICE = 4
_WINDOWS_PER_FRAME = 8


def _optimizer_slots(config) -> int:
    """Object-sized optimiser arrays per unknown: its state (:meth:`Optimizer.state_slots`) and,
    for a stochastic optimiser, their copy from the start of the epoch, which a rollback returns
    to. Before ``optimizer.kind = auto`` is resolved: L-BFGS's, the larger."""
    kind = config.optimizer.kind
    cls = OPTIMIZERS["lbfgs" if kind == "auto" else kind]
    return cls.state_slots(config.optimizer.lbfgs_history) * (1 if cls.full_batch else 2)


def _itemsizes(backend: Backend) -> tuple[int, int]:
    r = np.dtype(backend.real_dtype).itemsize
    return r, 2 * r


def object_state_bytes(config, dataset, object_shape, backend: Backend) -> int:
    """Bytes the object-sized state of a run holds whatever the minibatch: the unknowns, their
    gradients and copies, the optimiser's slots (L-BFGS: 2 x history pairs), the volumes a
    tomographic view rotates, and the measured frames when they are preloaded."""
    r, c = _itemsizes(backend)
    n = int(np.prod(object_shape))
    per_voxel = 2 * r if config.model.object_param == "delta_beta" else c
    total = n * per_voxel * (1 + _OBJECT_COPIES + _optimizer_slots(config))
    if dataset.n_angles > 1:  # a view rotates delta/beta and forms its complex transmission
        total += n * (2 * r + c) * 2  # forward values and their gradients
    frames = dataset.n_angles * dataset.n_spots * int(np.prod(dataset.frame_shape)) * 4
    if frames <= PRELOAD_LIMIT_BYTES:
        total += frames
    return int(total)


def batch_bytes(config, dataset, object_shape, splits_spots: bool, backend: Backend) -> int:
    """Bytes the tape of one minibatch holds (complex windows of the frame size).

    Ptychography, per frame and probe mode: :data:`_WINDOWS_PER_MODE` (probe shift, patch,
    transmission, far field, intensity), four for the first slice and
    :data:`_WINDOWS_PER_EXTRA_SLICE` per further slice (``model.checkpoint_slices`` was not seen to
    lower the measured peak there, so it is not discounted). Holography, per view: ten per slice
    kept (``checkpoint_slices`` keeps block boundaries and one block) and twelve per distance.
    Both: :data:`_WINDOWS_PER_FRAME` per frame for the loss. Calibrated against traced peaks
    (tests/test_memory_estimate.py)."""
    r, c = _itemsizes(backend)
    run, model = config.run, config.model
    n_a = min(run.batch_angles or dataset.n_angles, dataset.n_angles)
    win = int(np.prod(dataset.frame_shape))
    nz = int(object_shape[0])
    if splits_spots:
        n_s = min(run.batch_spots or dataset.n_spots, dataset.n_spots)
        if not OPTIMIZERS[config.optimizer.kind].full_batch:  # rates are measured on more spots
            n_s = max(n_s, min(ESTIMATION_SPOTS, dataset.n_spots))
        per_mode = _WINDOWS_PER_MODE + 4 + _WINDOWS_PER_EXTRA_SLICE * (nz - 1)
        windows = n_a * n_s * (max(int(model.probe_modes), 1) * per_mode + _WINDOWS_PER_FRAME)
    else:
        cs = int(model.checkpoint_slices or 0)
        kept = min(nz, -(-nz // cs) + cs) if cs > 0 else nz
        windows = n_a * (10 * kept + (12 + _WINDOWS_PER_FRAME) * dataset.n_spots)
    return int(windows * win * c)


def _refuse(needed: int, avail: int, advice: str) -> None:
    raise SlicewiseError(f"this run needs about {needed / 2**30:.1f} GiB but only "
                         f"{avail / 2**30:.1f} GiB are available; {advice}")


def probe_mode_bytes(config, dataset, backend: Backend) -> int:
    """The least memory the probe modes of a scanned-probe run take in one step: the frames of
    the smallest batch any such run evaluates (the few its learning rates are measured on, or
    all for L-BFGS), :data:`_WINDOWS_PER_MODE` + 4 windows per frame and mode. 0 without a scan."""
    if dataset.positions_px is None:
        return 0
    _, c = _itemsizes(backend)
    n_s = min(dataset.n_spots, ESTIMATION_SPOTS)
    win = int(np.prod(dataset.frame_shape))
    return int(n_s * int(config.model.probe_modes) * (_WINDOWS_PER_MODE + 4) * win * c)


def check_counts(config, dataset) -> None:
    """Refuse counts that cannot work before any work is done on them: mutually orthogonal
    probe modes of a py x px window number at most py * px (making them is quadratic in their
    number: 10000 took minutes)."""
    pixels = int(np.prod(dataset.frame_shape))
    if config.model.probe_modes > pixels:
        py, px = dataset.frame_shape
        raise ConfigError(f"model.probe_modes = {config.model.probe_modes} is more than the {pixels} "
                          f"pixels of the {py}x{px} probe window, the most modes that can be "
                          "orthogonal; use a few (1 to about 10 is usual)")


def check_object_memory(config, dataset, object_shape, backend: Backend) -> int:
    """Refuse, before anything object-sized is allocated (or probe modes are made), counts that
    cannot work (:func:`check_counts`) and a run whose object state and smallest step's probe
    modes alone cannot fit."""
    check_counts(config, dataset)
    state = object_state_bytes(config, dataset, object_shape, backend)
    modes = probe_mode_bytes(config, dataset, backend)
    avail = available_memory_bytes(backend)
    if avail and state > avail:
        _refuse(state, avail, f"the object grid model.object_shape = {tuple(object_shape)} alone "
                "takes that: choose a smaller model.object_shape (or fewer slices, model.n_slices)")
    if avail and state + modes > avail:
        _refuse(state + modes, avail, f"model.probe_modes = {config.model.probe_modes} take "
                f"{modes / 2**30:.1f} GiB in the smallest step: use fewer probe modes")
    return state + modes


def check_memory(config, dataset, problem, backend: Backend) -> int:
    """Estimate the run's peak memory (bytes) once its minibatches are known; refuse a run that
    cannot fit, naming what to lower."""
    shape = problem.object_shape
    est = (object_state_bytes(config, dataset, shape, backend)
           + batch_bytes(config, dataset, shape, problem.model.splits_spots, backend))
    avail = available_memory_bytes(backend)
    log.info("estimated peak memory %.0f MiB (available %.0f MiB)", est / 2**20, avail / 2**20)
    if avail and est > avail:
        cs = "" if problem.model.splits_spots else "set model.checkpoint_slices, "
        _refuse(est, avail, f"lower run.batch_spots / run.batch_angles, {cs}or choose a smaller "
                f"model.object_shape (now {tuple(shape)})")
    return est


def used_memory_bytes(backend: Backend) -> int:
    """Memory held now: the CuPy pool (GPU) or the process's peak resident size (CPU)."""
    if backend.is_gpu:  # pragma: no cover - GPU
        return int(backend.xp.get_default_memory_pool().total_bytes())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
