"""Data-parallel reconstruction over MPI ranks (mpi4py), for data sets that outgrow one machine.

Every rank holds the whole (small) object and probe, and owns a fixed share of the frames: every
``size``-th scan position (models whose spots are independent views, ``splits_spots``) or every
``size``-th angle (holotomography). It reads (and preloads) only its own frames, and evaluates the
part of each minibatch it owns. With GPUs, each rank uses the GPU of its rank on its node. Losses and
gradients are averaged with ``Allreduce`` weighted by the number of frames each rank evaluated,
so every rank takes the identical optimiser step and the ranks never drift apart. Rank 0 writes
checkpoints and results and reports progress.

Run as ``mpiexec -n 4 slicewise reconstruct CONFIG.toml`` (mpi4py and an MPI library: the ``mpi``
extra installs both). Without MPI, or with one rank, nothing changes.
"""

from __future__ import annotations

import os

import numpy as np

from ...backend import to_host


def _launched_by_mpi() -> bool:
    return any(k in os.environ for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_SIZE"))


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
        if not _launched_by_mpi():
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

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one (e.g. a stop request)."""
        from mpi4py import MPI  # noqa: PLC0415 - optional dependency (the mpi extra)

        return bool(self.comm.allreduce(bool(flag), op=MPI.LOR))

    def combine(self, loss: float, terms: dict, grads: dict, weight: float):
        """Weighted averages over ranks of the loss, its terms and the gradients (host round trip).

        Every rank makes the same collective calls whatever its share: a rank without frames in
        this minibatch passes ``weight = 0``, no terms and zero gradients. The term names are
        agreed first (an empty rank does not know them), then the scalars travel in one float64
        buffer and all gradients in one flat buffer of their precision. Calls that differed in
        number or size between ranks would hang the job.
        """
        from mpi4py import MPI  # noqa: PLC0415 - optional dependency (the mpi extra)

        names = sorted(set().union(*self.comm.allgather(sorted(terms))))
        scalars = np.array([weight, weight * loss, *(weight * terms.get(k, 0.0) for k in names)],
                           dtype=np.float64)
        summed = np.empty_like(scalars)
        self.comm.Allreduce(scalars, summed, op=MPI.SUM)
        total_w = summed[0]
        inv = 1.0 / total_w if total_w > 0 else 0.0
        loss = float(summed[1] * inv)
        terms = {k: float(v * inv) for k, v in zip(names, summed[2:])}
        gnames = sorted(grads)
        hosts = [np.asarray(to_host(grads[n])) for n in gnames]
        real = np.result_type(np.float32, *(h.real.dtype for h in hosts))
        flat = np.concatenate([_as_real(h, real).ravel() * real.type(weight) for h in hosts]) \
            if hosts else np.zeros(0, real)
        flat_sum = np.empty_like(flat)
        self.comm.Allreduce(flat, flat_sum, op=MPI.SUM)
        flat_sum *= real.type(inv)
        out, start = {}, 0
        for name, h in zip(gnames, hosts):
            n = h.size * (2 if np.iscomplexobj(h) else 1)
            part = flat_sum[start:start + n]
            start += n
            part = part.view(np.result_type(real, np.complex64)) if np.iscomplexobj(h) else part
            out[name] = _like(grads[name], part.reshape(h.shape))
        return loss, terms, out

    def broadcast_params(self, params: dict) -> dict:
        """Rank 0's parameters on every rank (start from identical states)."""
        out = {}
        for name in sorted(params):
            host = np.ascontiguousarray(to_host(params[name]))
            self.comm.Bcast(host, root=0)
            out[name] = _like(params[name], host)
        return out


def _as_real(a: np.ndarray, real) -> np.ndarray:
    """``a`` as real numbers of dtype ``real`` (a complex array as interleaved real/imaginary)."""
    if np.iscomplexobj(a):
        return np.ascontiguousarray(a, dtype=np.result_type(real, np.complex64)).view(real)
    return np.asarray(a, dtype=real)


def _like(ref, host):
    """``host`` on the same backend as ``ref``."""
    if isinstance(ref, np.ndarray):
        return host.astype(ref.dtype, copy=False)
    import cupy  # noqa: PLC0415  # pragma: no cover - GPU

    return cupy.asarray(host, dtype=ref.dtype)
