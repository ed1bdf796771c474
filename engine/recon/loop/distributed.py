"""Data-parallel reconstruction over MPI ranks (mpi4py), for data sets that outgrow one machine.

Every rank holds the whole (small) object and probe, and owns a fixed share of the frames: every
``size``-th scan position (models whose spots are independent views, ``splits_spots``) or every
``size``-th angle (holotomography). It reads (and preloads) only its own frames, and evaluates the
part of each minibatch it owns. With GPUs, each rank uses the GPU of its rank on its node. Losses and
gradients are averaged with ``Allreduce`` weighted by the number of frames each rank evaluated,
so every rank takes the identical optimiser step and the ranks never drift apart. Rank 0 writes
checkpoints and results and reports progress.

Run as ``slicewise reconstruct CONFIG.toml --ranks 4`` or ``mpiexec -n 4 slicewise reconstruct
CONFIG.toml`` (mpi4py and an MPI library: the ``mpi`` extra installs both). Without MPI, or with
one rank, nothing changes.

The invariant every change must keep: all ranks make the same collective calls, in the same
order, with buffers of the same size. So nothing that differs between ranks may decide a choice
that changes the calls: the free memory of each (:func:`agreed_memory_bytes`: the smallest), the
frames a rank holds, or the code path its share of a minibatch takes -- which once decided the
precision of a gradient (float64 on ranks whose share covered the object, float32 on the others:
"Message truncated" on every preset). :meth:`Distributed.combine` agrees on the gradients' layout
before summing them, and raises the same error on every rank if names or shapes differ.
"""

from __future__ import annotations


import numpy as np

from ...backend import to_host
from ...runtime import launched_by_mpi
from ...errors import SlicewiseError
from ..setup.memory import available_memory_bytes


def agreed_memory_bytes(backend, distributed: "Distributed | None") -> int:
    """Free memory that automatic choices (optimiser, minibatch sizes) are sized for: under MPI
    the smallest any rank has (0, unknown, if any rank does not know). Each rank measuring its
    own would let ranks with different free memory choose different minibatches, and then make
    different numbers of collective calls: the job hangs or aborts."""
    avail = available_memory_bytes(backend)
    if distributed is None:
        return avail
    return distributed.smallest(avail)


class Distributed:
    """Split minibatches over the ranks of ``comm`` and combine their gradients."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        try:  # the rank among those on this node (they share its GPUs)
            from mpi4py import MPI  # noqa: PLC0415 - optional dependency (the mpi extra)

            self.local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        except (ImportError, AttributeError):  # a stand-in communicator (tests)
            self.local_rank = self.rank

    @classmethod
    def from_environment(cls) -> "Distributed | None":
        """A communicator over all ranks when launched by ``mpiexec`` with several ranks, else None."""
        if not launched_by_mpi():
            return None
        from mpi4py import MPI  # noqa: PLC0415 - optional dependency

        comm = MPI.COMM_WORLD
        return cls(comm) if comm.Get_size() > 1 else None

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def owned(self, n_angles: int, n_spots: int, splits_spots: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(angles, spots)``: the frames this rank owns (their outer product)."""
        if splits_spots:
            return np.arange(n_angles), np.arange(self.rank, n_spots, self.size)
        return np.arange(self.rank, n_angles, self.size), np.arange(n_spots)

    def share(self, angle_idx: np.ndarray, spot_idx: np.ndarray, splits_spots: bool):
        """This rank's part of a minibatch: the frames of it that this rank owns (:meth:`owned`).

        A rank may get an empty share when the batch is smaller than the number of ranks.
        """
        angle_idx, spot_idx = np.asarray(angle_idx), np.asarray(spot_idx)
        if splits_spots:
            return angle_idx, spot_idx[spot_idx % self.size == self.rank]
        return angle_idx[angle_idx % self.size == self.rank], spot_idx

    def select_gpu(self) -> int | None:
        """Make the GPU of this rank's place on its node the current CUDA device, before any GPU
        work: ranks on one node spread over its GPUs. Returns the device, or None without GPUs."""
        try:
            import cupy  # noqa: PLC0415 - optional dependency

            n = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # no CuPy, no driver: the NumPy backend will be used
            return None
        if n < 1:
            return None
        device = self.local_rank % n
        cupy.cuda.runtime.setDevice(device)
        return device

    def smallest(self, value: int) -> int:
        """The smallest ``value`` over the ranks, on every rank."""
        from mpi4py import MPI  # noqa: PLC0415

        return int(self.comm.allreduce(int(value), op=MPI.MIN))

    def largest(self, value: int) -> int:
        """The largest ``value`` over the ranks, on every rank."""
        from mpi4py import MPI  # noqa: PLC0415

        return int(self.comm.allreduce(int(value), op=MPI.MAX))

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one (e.g. a stop request)."""
        from mpi4py import MPI  # noqa: PLC0415 - optional dependency (the mpi extra)

        return bool(self.comm.allreduce(bool(flag), op=MPI.LOR))

    def combine(self, loss: float, terms: dict, grads: dict, weight: float):
        """Weighted averages over ranks of the loss, its terms and the gradients (host round trip).

        Every rank makes the same collective calls whatever its share: a rank without frames in
        this minibatch passes ``weight = 0``, no terms and zero gradients. The term names and the
        gradients' layout (:func:`gradient_layout`) are agreed first, in one small ``allgather``
        (an empty rank does not know the terms; a gradient's precision may differ between ranks
        whose shares took different code paths); then the scalars travel in one float64 buffer
        and all gradients in one flat buffer of the agreed precision, the same size on every rank.
        """
        from mpi4py import MPI  # noqa: PLC0415 - optional dependency (the mpi extra)

        gathered = self.comm.allgather((sorted(terms), gradient_layout(grads)))
        names = sorted(set().union(*(t for t, _ in gathered)))
        layout = agree_layout([lay for _, lay in gathered])
        scalars = np.array([weight, weight * loss, *(weight * terms.get(k, 0.0) for k in names)],
                           dtype=np.float64)
        summed = np.empty_like(scalars)
        self.comm.Allreduce(scalars, summed, op=MPI.SUM)
        total_w = summed[0]
        inv = 1.0 / total_w if total_w > 0 else 0.0
        loss = float(summed[1] * inv)
        terms = {k: float(v * inv) for k, v in zip(names, summed[2:])}
        real = np.result_type(np.float32, *(np.finfo(np.dtype(dt)).dtype for _, _, dt in layout))
        flat = _flatten(grads, layout, real, weight)
        flat_sum = np.empty_like(flat)
        self.comm.Allreduce(flat, flat_sum, op=MPI.SUM)
        flat_sum *= real.type(inv)
        return loss, terms, _unflatten(flat_sum, layout, grads)

    def broadcast_params(self, params: dict) -> dict:
        """Rank 0's parameters on every rank (start from identical states)."""
        out = {}
        for name in sorted(params):
            host = np.ascontiguousarray(to_host(params[name]))
            self.comm.Bcast(host, root=0)
            out[name] = _like(params[name], host)
        return out


def gradient_layout(grads: dict) -> list[tuple[str, tuple, str]]:
    """``[(name, shape, dtype), ...]`` of ``grads`` in name order: what a rank contributes."""
    return [(n, tuple(int(d) for d in grads[n].shape), np.dtype(grads[n].dtype).str)
            for n in sorted(grads)]


def agree_layout(layouts: list[list]) -> list[tuple[str, tuple, str]]:
    """One layout from every rank's :func:`gradient_layout`: each gradient in the widest precision
    any rank has. Every rank computes the same from the same gathered lists, so a mismatch of
    names or shapes (a bug) raises the same error on every rank instead of a hang or an MPI abort.
    """
    first = layouts[0]
    for r, lay in enumerate(layouts[1:], start=1):
        if [(n, s) for n, s, _ in lay] != [(n, s) for n, s, _ in first]:
            raise SlicewiseError(f"MPI ranks 0 and {r} differ in the gradients they computed "
                                 f"({[(n, s) for n, s, _ in first]} against "
                                 f"{[(n, s) for n, s, _ in lay]}); this is a bug, please report it")
    return [(n, s, np.result_type(*(np.dtype(lay[i][2]) for lay in layouts)).str)
            for i, (n, s, _) in enumerate(first)]


def _flatten(grads: dict, layout: list, real, weight: float) -> np.ndarray:
    """The gradients times ``weight`` in one flat host buffer of dtype ``real`` (complex ones
    as interleaved real/imaginary parts)."""
    if not layout:
        return np.zeros(0, real)
    hosts = [np.asarray(to_host(grads[n])) for n, _, _ in layout]
    return np.concatenate([_as_real(h, real, np.iscomplexobj(np.empty(0, dt))).ravel()
                           * real.type(weight) for h, (_, _, dt) in zip(hosts, layout)])


def _unflatten(flat: np.ndarray, layout: list, refs: dict) -> dict:
    """The gradients back from :func:`_flatten`'s buffer, each of its agreed dtype, on the
    backend of ``refs[name]``."""
    out, start = {}, 0
    for name, shape, dt in layout:
        complex_ = np.iscomplexobj(np.empty(0, dt))
        n = int(np.prod(shape, dtype=np.int64)) * (2 if complex_ else 1)
        part = flat[start:start + n]
        start += n
        part = part.view(np.result_type(flat.dtype, np.complex64)) if complex_ else part
        out[name] = _like(refs[name], part.reshape(shape), np.dtype(dt))
    return out


def _as_real(a: np.ndarray, real, complex_: bool) -> np.ndarray:
    """``a`` as real numbers of dtype ``real`` (complex as interleaved real/imaginary when the
    agreed layout is complex, even if this rank's array is real, e.g. zeros)."""
    if complex_:
        return np.ascontiguousarray(a, dtype=np.result_type(real, np.complex64)).view(real)
    return np.asarray(a, dtype=real)


def _like(ref, host, dtype=None):
    """``host`` on the same backend as ``ref``, as ``dtype`` (default ``ref``'s)."""
    dtype = ref.dtype if dtype is None else dtype
    if isinstance(ref, np.ndarray):
        return host.astype(dtype, copy=False)
    import cupy  # noqa: PLC0415  # pragma: no cover - GPU

    return cupy.asarray(host, dtype=dtype)
