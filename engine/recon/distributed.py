"""Data-parallel reconstruction over MPI ranks (mpi4py), for data sets that outgrow one machine.

Every rank holds the whole (small) object and probe, and evaluates its share of every minibatch:
scan positions are dealt round-robin for ptychography, angles for holotomography. Losses and
gradients are averaged with ``Allreduce`` weighted by the number of frames each rank evaluated,
so every rank takes the identical optimiser step and the ranks never drift apart. Rank 0 writes
checkpoints and results and reports progress.

Run as ``mpiexec -n 4 slicewise reconstruct CONFIG.toml`` (mpi4py and an MPI library: the ``mpi``
extra installs both). Without MPI, or with one rank, nothing changes.
"""

from __future__ import annotations

import os

import numpy as np

from ..backend import to_host


def _launched_by_mpi() -> bool:
    return any(k in os.environ for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_SIZE"))


class Distributed:
    """Split minibatches over the ranks of ``comm`` and combine their gradients."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

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

    def share(self, angle_idx: np.ndarray, spot_idx: np.ndarray, splits_spots: bool):
        """This rank's part of a minibatch: spots (when the model's spots are independent views,
        ``splits_spots``, and outnumber the angles) or angles, dealt round-robin.

        A rank may get an empty share when the batch is smaller than the number of ranks.
        """
        if splits_spots and len(spot_idx) >= len(angle_idx):
            return angle_idx, spot_idx[self.rank::self.size]
        return angle_idx[self.rank::self.size], spot_idx

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one (e.g. a stop request)."""
        from mpi4py import MPI  # noqa: PLC0415

        return bool(self.comm.allreduce(bool(flag), op=MPI.LOR))

    def combine(self, loss: float, terms: dict, grads: dict, weight: float):
        """Weighted averages over ranks of the loss, its terms and the gradients (host round trip)."""
        from mpi4py import MPI  # noqa: PLC0415

        total_w = self.comm.allreduce(float(weight), op=MPI.SUM)
        scale = weight / total_w if total_w > 0 else 0.0
        loss = self.comm.allreduce(loss * scale, op=MPI.SUM)
        terms = {k: self.comm.allreduce(v * scale, op=MPI.SUM) for k, v in sorted(terms.items())}
        out = {}
        for name in sorted(grads):
            g = grads[name]
            host = np.ascontiguousarray(to_host(g) * scale)
            summed = np.empty_like(host)
            self.comm.Allreduce(host, summed, op=MPI.SUM)
            out[name] = _like(g, summed)
        return loss, terms, out

    def broadcast_params(self, params: dict) -> dict:
        """Rank 0's parameters on every rank (start from identical states)."""
        out = {}
        for name in sorted(params):
            host = np.ascontiguousarray(to_host(params[name]))
            self.comm.Bcast(host, root=0)
            out[name] = _like(params[name], host)
        return out


def _like(ref, host):
    """``host`` on the same backend as ``ref``."""
    if isinstance(ref, np.ndarray):
        return host.astype(ref.dtype, copy=False)
    import cupy  # noqa: PLC0415  # pragma: no cover - GPU

    return cupy.asarray(host, dtype=ref.dtype)
