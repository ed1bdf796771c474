"""Check (and fix) the orientation of near-field scan positions against the frames themselves.

Writers disagree on the sign of sample translations and on detector axes (CXI's ``basis_vectors``
are often missing or left at a default), and a wrong sign or an x/y swap makes ptychography fail
without any error. In the near field the sample's features move across the frame as the sample
moves, while the probe's structure stays put; dividing each frame by the mean frame removes most
of the probe, and the shift between two such normalised frames (phase correlation) is the
object's move, ``-(p_j - p_i)`` for window positions ``p``. Of the eight signed permutations of
(y, x) the one that predicts the measured shifts best is chosen; the positions as read are kept
unless another orientation is clearly better.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

log = logging.getLogger(__name__)

#: The 8 signed permutations of (y, x), identity first.
ORIENTATIONS = [np.array(m, float) for m in (
    [[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
    [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[0, 1], [-1, 0]], [[0, -1], [-1, 0]])]


def _normalised(frames: np.ndarray, good: np.ndarray) -> np.ndarray:
    mean = frames.mean(axis=0)
    floor = 1e-3 * max(float(mean[good].max()), 1e-30)
    out = frames / np.maximum(mean, floor) - 1
    out[:, ~good] = 0
    win = np.outer(np.hanning(frames.shape[1]), np.hanning(frames.shape[2]))  # no edge jumps
    return (out - out[:, good].mean(axis=1)[:, None, None]) * win


def measured_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shift ``d`` (pixels, (y, x), integer) with ``b(x) ~ a(x - d)``, by phase correlation."""
    cross = np.fft.fft2(b) * np.conj(np.fft.fft2(a))
    corr = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-30)).real
    # what is left of the probe's fixed pattern peaks at zero shift: the pairs move >= 2 px
    corr[np.ix_([0, 1, -1], [0, 1, -1])] = -np.inf
    peak = np.array(np.unravel_index(int(np.argmax(corr)), corr.shape), float)
    n = np.array(corr.shape)
    return np.where(peak > n / 2, peak - n, peak)


def _pairs(pos: np.ndarray, frame_shape, max_pairs: int) -> list[tuple[int, int]]:
    lo, hi = 2.0, min(frame_shape) / 4  # far enough to measure, close enough to overlap
    out = []
    for i, j in itertools.combinations(range(len(pos)), 2):
        d = np.abs(pos[j] - pos[i]).max()
        if lo <= d <= hi:
            out.append((i, j))
    if len(out) > max_pairs:
        keep = np.linspace(0, len(out) - 1, max_pairs).astype(int)
        out = [out[k] for k in keep]
    return out


def orient_positions(frames: np.ndarray, positions_px: np.ndarray, good=None,
                     max_pairs: int = 60) -> tuple[np.ndarray | None, str]:
    """The (2, 2) matrix to apply to the positions (``pos @ m.T``; None: keep them as read), and a
    sentence saying what was found.

    frames: ``(n, fy, fx)`` near-field intensities; positions_px: ``(n, 2)`` (y, x) window
    corners; good: boolean ``(fy, fx)`` usable pixels. An orientation other than the one read
    replaces it only if the one read misses the measured shifts by more than 3 px and the other
    misses by less than 0.3 times that (medians over pairs of overlapping frames).
    """
    pos = np.asarray(positions_px, float)
    good = np.ones(frames.shape[1:], bool) if good is None else np.asarray(good, bool)
    pairs = _pairs(pos, frames.shape[1:], max_pairs)
    if len(pairs) < 3:
        return None, "scan orientation not checked (too few overlapping pairs of frames)"
    norm = _normalised(np.asarray(frames, float), good)
    meas = np.array([measured_shift(norm[i], norm[j]) for i, j in pairs])
    steps = np.array([pos[j] - pos[i] for i, j in pairs])
    errors = [float(np.median(np.linalg.norm(meas + steps @ m.T, axis=1))) for m in ORIENTATIONS]
    best = int(np.argmin(errors))
    if best == 0 or not (errors[best] < 0.3 * errors[0] and errors[0] > 3.0):
        return None, (f"scan orientation as read confirmed by the frames (median mismatch "
                     f"{errors[0]:.2g} px over {len(pairs)} pairs)" if errors[0] < 1.5 else
                     f"scan orientation kept as read; the frames do not decide it (median mismatch "
                     f"{errors[0]:.2g} px, best alternative {errors[best]:.2g} px)")
    m = ORIENTATIONS[best]
    return m, (f"scan orientation corrected: the frames move as positions (y, x) -> "
                 f"{m.astype(int).tolist()} (y, x) predicts (median mismatch {errors[best]:.2g} px "
                 f"vs {errors[0]:.2g} px as read, {len(pairs)} pairs); set "
                 "data.scan_orientation = 'as_read' to keep the file's")
