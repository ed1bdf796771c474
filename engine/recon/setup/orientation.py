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

import logging

import numpy as np
import scipy.fft as sfft

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
    d = np.abs(pos[None] - pos[:, None]).max(axis=-1)     # (n, n) largest axis distance
    i, j = np.triu_indices(len(pos), 1)                    # in itertools.combinations order
    keep = (d[i, j] >= lo) & (d[i, j] <= hi)
    out = list(zip(i[keep].tolist(), j[keep].tolist()))
    if len(out) > max_pairs:
        keep = np.linspace(0, len(out) - 1, max_pairs).astype(int)
        out = [out[k] for k in keep]
    return out


def _correlation_maps(norm: np.ndarray, pairs) -> np.ndarray:
    """``(n_pairs, gy, gx)`` normalised cross-correlations ``c[d] = sum b(x) a(x - d)`` of the
    pairs' normalised frames, mildly whitened (|F|^-1/2) so that fine features count as much as
    the coarse ones. Zero-padded by a quarter frame: shifts up to ``frame / 4`` (the pairs'
    largest, :func:`_pairs`) do not wrap around."""
    shape = tuple(sfft.next_fast_len(n + (n + 3) // 4, real=True) for n in norm.shape[1:])
    used = sorted({i for pair in pairs for i in pair})
    where = {i: k for k, i in enumerate(used)}
    # each frame's transform once (a frame is in many pairs), real-to-complex, single precision
    spectra = sfft.rfft2(norm[used].astype(np.float32), shape, workers=-1)
    out = np.empty((len(pairs),) + shape, np.float32)
    for start in range(0, len(pairs), 32):
        chunk = pairs[start:start + 32]
        cross = (spectra[[where[j] for _, j in chunk]]
                 * np.conj(spectra[[where[i] for i, _ in chunk]]))
        cross /= np.maximum(np.sqrt(np.abs(cross)), 1e-30)
        c = sfft.irfft2(cross, shape, workers=-1)
        out[start:start + len(chunk)] = c / np.maximum(np.abs(c).max(axis=(1, 2), keepdims=True),
                                                       1e-30)
    return out


def _sample(maps: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Bilinear value of each map at its shift ``d[k]`` (pixels, (y, x), wrapped)."""
    n = np.array(maps.shape[1:])
    y0, x0 = np.floor(d[:, 0]), np.floor(d[:, 1])
    wy, wx = d[:, 0] - y0, d[:, 1] - x0
    k = np.arange(len(maps))
    val = 0.0
    for dy, fy in ((0, 1 - wy), (1, wy)):
        for dx, fx in ((0, 1 - wx), (1, wx)):
            val = val + fy * fx * maps[k, (y0 + dy).astype(int) % n[0], (x0 + dx).astype(int) % n[1]]
    return val


def orientation_scores(frames: np.ndarray, positions_px: np.ndarray, good=None,
                       max_pairs: int = 240) -> np.ndarray | None:
    """Per orientation (``ORIENTATIONS``), the mean over pairs of overlapping frames of their
    normalised cross-correlation at the shift that orientation predicts, ``(8, n_pairs)``.

    Unlike the position of a correlation peak, this needs no unique peak: a Siemens star's
    nearly parallel spokes correlate along a whole line of shifts (the aperture problem), which
    makes peak positions random, but only the true orientation predicts shifts that land on
    those lines pair after pair. None when fewer than 3 pairs overlap."""
    pos = np.asarray(positions_px, float)
    good = np.ones(frames.shape[1:], bool) if good is None else np.asarray(good, bool)
    pairs = _pairs(pos, frames.shape[1:], max_pairs)
    if len(pairs) < 3:
        return None
    maps = _correlation_maps(_normalised(np.asarray(frames, np.float32), good), pairs)
    steps = np.array([pos[j] - pos[i] for i, j in pairs])
    return np.array([_sample(maps, -steps @ m.T) for m in ORIENTATIONS])


def orient_positions(frames: np.ndarray, positions_px: np.ndarray, good=None,
                     max_pairs: int = 240) -> tuple[np.ndarray | None, str]:
    """The (2, 2) matrix to apply to the positions (``pos @ m.T``; None: keep them as read), and a
    sentence saying what was found.

    frames: ``(n, fy, fx)`` near-field intensities; positions_px: ``(n, 2)`` (y, x) window
    corners; good: boolean ``(fy, fx)`` usable pixels. An orientation other than the one read
    replaces it only if its mean correlation (:func:`orientation_scores`) beats the one read by
    0.05 and by 3 standard errors of the per-pair differences.
    """
    scores = orientation_scores(frames, positions_px, good, max_pairs)
    if scores is None:
        return None, "scan orientation not checked (too few overlapping pairs of frames)"
    mean = scores.mean(axis=1)
    best = int(np.argmax(mean))
    # the best must beat the orientation as read clearly: by 3 standard errors of the paired
    # per-pair differences and by 0.05 of correlation
    diff = scores[best] - scores[0]
    sigma = float(diff.std()) / np.sqrt(len(diff))
    npairs = scores.shape[1]
    if best == 0 or not (diff.mean() > max(3 * sigma, 0.05)):
        return None, (f"scan orientation as read confirmed by the frames (correlation "
                      f"{mean[0]:.2f} over {npairs} pairs; best alternative {np.sort(mean)[-2]:.2f})"
                      if best == 0 else
                      f"scan orientation kept as read; the frames do not decide it (correlation "
                      f"{mean[0]:.2f} as read, {mean[best]:.2f} for the best alternative)")
    m = ORIENTATIONS[best]
    return m, (f"scan orientation corrected: the frames move as positions (y, x) -> "
               f"{m.astype(int).tolist()} (y, x) predicts (correlation {mean[best]:.2f} vs "
               f"{mean[0]:.2f} as read, {npairs} pairs); set data.scan_orientation = 'as_read' "
               "to keep the file's")
