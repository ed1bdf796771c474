"""Multislice: multiply by a slice's transmission, propagate to the next slice, repeat.

The exit wave leaves the last slice without a further propagation (Adorym's convention); the
detector propagation (far field or near-field distance) is the model's next step. Blocks of slices
can be wrapped in :func:`~slicewise.engine.autodiff.checkpoint` so that only the wavefield at block
boundaries is stored for the backward pass (memory ~ n_slices / block instead of n_slices).
"""

from __future__ import annotations

from typing import Callable

from ..autodiff import checkpoint
from .. import ops


def multislice(psi, slices: Callable[[int], object], n_slices: int, step: Callable,
               block: int = 0):
    """Run a wavefield through ``n_slices`` slices.

    ``psi``: complex field ``(..., ny, nx)``; ``slices(s)`` returns the transmission of slice ``s``,
    broadcastable to ``psi``; ``step`` propagates by the slice spacing (a
    :class:`~.propagation.Propagator`); ``block > 0`` checkpoints every ``block`` slices.
    """
    if block <= 0 or block >= n_slices:
        for s in range(n_slices):
            psi = ops.mul(psi, slices(s))
            if s < n_slices - 1:
                psi = step(psi)
        return psi
    for start in range(0, n_slices, block):
        stop = min(start + block, n_slices)
        ts = [slices(s) for s in range(start, stop)]
        last = stop == n_slices

        def segment(field, *trans, _last=last):
            for i, t in enumerate(trans):
                field = ops.mul(field, t)
                if not (_last and i == len(trans) - 1):
                    field = step(field)
            return field

        psi = checkpoint(segment, psi, *ts)
    return psi
