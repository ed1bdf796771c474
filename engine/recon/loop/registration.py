"""Registration of frames on the object: candidate positions scored by the data misfit.

The pieces a position-correction pass (:mod:`.positions`) is made of: the amplitude misfit of
frames at given positions through the model's own forward pass (:func:`frame_misfits`), a
:class:`Block` of frames with the cost that ranks their candidates (misfit in units of the typical
one plus a prior on the stage error), the pattern search from a lattice point
(:func:`pattern_search`: the centre and its four axis neighbours, stepping to the best, then a
parabola for the sub-pixel minimum) and the lattice search around a frame's anchor
(:func:`lattice_search`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...autodiff import no_grad
from ...backend import to_host
from ...models.base import MODE_AXIS

__all__ = ["Block", "frame_misfits", "pattern_search", "lattice_search", "LATTICE_STEP_PX",
           "LOCAL_STEPS"]

#: Step of the lattice searched around a frame's anchor, px.
LATTICE_STEP_PX = 2.0
#: Moves of the pattern search per frame and pass (one pixel each).
LOCAL_STEPS = 4

#: The centre and its four neighbours along the axes (a diagonal move takes two steps).
_NEIGHBOURS = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)], float)


def frame_misfits(problem, params: dict, spots: np.ndarray, positions: np.ndarray, amplitudes,
                  chunk: int) -> np.ndarray:
    """Amplitude misfit ``sum_pixels mask (|psi| - a)^2`` of frames ``spots`` (view 0) with their
    windows at ``positions`` ``(len(spots), 2)`` (held on the model's grid); ``amplitudes``: the
    measured ``a`` ``(1, len(spots), fy, fx)``. Returns float64 ``(len(spots),)``. The amplitude
    misfit whatever the run's loss: its noise is about the same at every count level."""
    xp = problem.backend.xp
    lo, hi = problem.model.position_bounds()
    trial = np.array(to_host(params["positions"]), dtype=float)
    trial[spots] = np.clip(positions, lo, hi)
    p = {**params, "positions": problem.backend.to_real(trial)}
    out = np.empty(len(spots))
    for i in range(0, len(spots), chunk):
        with no_grad():
            f = problem.fields(p, [0], spots[i:i + chunk])
        amp = xp.sqrt((f.real ** 2 + f.imag ** 2).sum(axis=MODE_AXIS))   # (1, s, fy, fx)
        r = (amp - amplitudes[:, i:i + chunk]) ** 2
        if problem.mask is not None:
            r = r * problem.mask
        out[i:i + chunk] = to_host(r.sum(axis=(0, 2, 3)))
    return out


@dataclass
class Block:
    """The frames of one block of a pass and what scores their candidates."""

    spots: np.ndarray         # (b,) frame indices
    amplitudes: object        # (1, b, fy, fx) measured amplitudes, backend
    anchors: np.ndarray       # (b, 2) prior centres, px
    scale: np.ndarray         # (b,) N / (2 m_typ): misfit -> cost
    prior_px: float           # spread of the prior

    def cost(self, misfit: np.ndarray, pos: np.ndarray, idx) -> np.ndarray:
        """``N/2 m/m_typ + |p - anchor|^2 / (2 s^2)`` of frames ``idx`` with misfits ``misfit``
        at ``pos``."""
        d2 = ((pos - self.anchors[idx]) ** 2).sum(axis=-1)
        return self.scale[idx] * misfit + d2 / (2 * self.prior_px ** 2)

    def misfits(self, problem, params: dict, idx: np.ndarray, positions: np.ndarray):
        """Misfits of frames ``idx`` of the block at ``positions``."""
        return frame_misfits(problem, params, self.spots[idx], positions,
                             self.amplitudes[:, idx], max(len(idx), 1))


def pattern_search(problem, params: dict, block: Block, start: np.ndarray,
                   idx: np.ndarray):
    """Pattern search for frames ``idx`` of ``block`` from lattice points ``start``
    ``(len(idx), 2)``: up to :data:`LOCAL_STEPS` moves of one pixel to the best of the
    centre and its four axis neighbours, then a parabola through them where the centre is
    best. Returns positions, misfits and costs of the frames, and the data's curvature there
    (cost per px^2, the smaller axis; 0 where a frame is still moving)."""
    pos = np.array(start, dtype=float)
    k = len(idx)
    table = np.zeros((k, len(_NEIGHBOURS)))
    misfit = np.zeros_like(table)
    settled = np.zeros(k, bool)
    for _ in range(LOCAL_STEPS):
        todo = np.flatnonzero(~settled)
        if not len(todo):
            break
        for j, d in enumerate(_NEIGHBOURS):
            trial = pos[todo] + d
            misfit[todo, j] = block.misfits(problem, params, idx[todo], trial)
            table[todo, j] = block.cost(misfit[todo, j], trial, idx[todo])
        best = table[todo].argmin(axis=1)
        pos[todo] += _NEIGHBOURS[best]
        settled[todo[best == 0]] = True
    rows, best = np.arange(k), table.argmin(axis=1)
    pos[settled] += _parabola(table[settled])
    sharp = np.where(settled, _curvature(block.scale[idx, None] * misfit), 0.0)
    return pos, misfit[rows, best], table[rows, best], sharp


def lattice_search(problem, params: dict, block: Block, idx: np.ndarray,
                   radius: float) -> np.ndarray:
    """The least-cost point ``(len(idx), 2)`` of the integer lattice within the search
    radius of each frame's anchor (on a step that keeps about 80 points)."""
    centre = np.rint(block.anchors[idx])
    best_cost = np.full(len(idx), np.inf)
    best = centre.copy()
    for d in _lattice(radius):
        trial = centre + d
        c = block.cost(block.misfits(problem, params, idx, trial), trial, idx)
        better = c < best_cost
        best_cost[better], best[better] = c[better], trial[better]
    return best


def _lattice(radius: float) -> np.ndarray:
    """Integer offsets ``(k, 2)`` within ``radius`` px on a step of :data:`LATTICE_STEP_PX` (the
    pattern search that follows covers the gaps): about 80 for a radius of 10 px."""
    step = LATTICE_STEP_PX
    r = np.arange(-np.floor(radius / step), np.floor(radius / step) + 1) * step
    yy, xx = np.meshgrid(r, r, indexing="ij")
    d = np.stack([yy.ravel(), xx.ravel()], axis=1)
    return d[np.hypot(d[:, 0], d[:, 1]) <= radius + 1e-9]


def _parabola(table: np.ndarray) -> np.ndarray:
    """Sub-pixel offsets ``(k, 2)`` of the minimum from cost tables ``(k, 5)`` over
    :data:`_NEIGHBOURS` (centre best): a parabola through the centre and its two neighbours along
    each axis, within half a step."""
    out = np.zeros((len(table), 2))
    for axis, (lo, hi) in enumerate(((1, 2), (3, 4))):
        curv = table[:, lo] + table[:, hi] - 2 * table[:, 0]
        ok = curv > 0
        out[ok, axis] = np.clip(0.5 * (table[ok, lo] - table[ok, hi]) / curv[ok], -0.5, 0.5)
    return out


def _curvature(table: np.ndarray) -> np.ndarray:
    """The smaller of the two axes' second differences ``(k,)`` of tables ``(k, 5)`` over
    :data:`_NEIGHBOURS` (a frame's position is known to about ``1 / sqrt`` of it, px, where the
    table is a chi-square)."""
    return np.minimum(table[:, 1] + table[:, 2] - 2 * table[:, 0],
                      table[:, 3] + table[:, 4] - 2 * table[:, 0])
