"""What the noise of a data set is: photon counts, scaled counts, or a level read from the data.

Every measurement is noisy; how noisy decides how much a fit may trust the frames (regularisation,
when to stop). :func:`estimate_noise` answers from a sample of frames spread over the data set, in
the model's intensity units (:class:`~.datafile.Dataset`):

* **integer counts** -- frames stored as integers (``Dataset.meta["integer_counts"]``, e.g. CXI
  int32): photon counts, Poisson noise, one photon per unit;
* **scaled counts** -- floats that are whole multiples of one quantum ``q``: counts divided by a
  common scale (per data set, or per frame: a monitor normalisation) or by a per-pixel flat field
  (the quantum is then per pixel), possibly minus a dark level. The quantum is the smallest step
  between the distinct values, checked by every value being (up to single-precision round-off)
  an offset plus a whole number of quanta; photons per data unit = ``1 / q``;
* **estimated** -- otherwise (an integrating detector, interpolated or filtered frames): the
  variance is measured on the data itself, as a function of the intensity, from residuals that a
  smooth image does not have (a separable second difference of each frame) and, with several
  frames, from differences of the most alike frames (neighbouring scan positions of a weak object,
  repeated exposures). Both are upper bounds (any signal they let through only adds variance), so
  the smaller is kept in each intensity bin, and ``var = gain * I + floor`` is fitted. The bound
  is close (within ~20 %) where the noise outweighs the object's signal at the finest scale
  (near-field frames of a few 1e3-1e4 photons per pixel); on sharper or brighter data it can be
  many times the noise, and far-field patterns (a few bright pixels, most counts 0) are beyond
  it: they are photon counts, recognised as such above (benchmarks/README.md, "Noise");
* **stated** -- the user's ``data.photons_per_unit`` wins over all of these.

The result, :class:`NoiseEstimate`, carries a per-pixel variance model (:class:`NoiseModel`) and
the misfit the losses expect at the noise level (``NoiseModel.expected_misfit``): a fit that
drives the data loss below it is fitting noise (the discrepancy principle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .datafile import spread_indices

__all__ = ["NoiseModel", "NoiseEstimate", "estimate_noise", "find_quantum", "KINDS",
           "amplitude_misfit_per_photon", "poisson_misfit_per_photon"]

KINDS = ("integer counts", "scaled counts", "estimated", "stated")

#: At most this many frames, and this many pixel values, are read (spread over the data set).
MAX_FRAMES = 256
MAX_VALUES = 2_000_000
#: Single precision's relative spacing: float32 frames (and a magnitude squared back) are whole
#: multiples of a quantum only to within a few of these, relative to the value.
EPS32 = 2.0 ** -23
#: A lattice needs this many informative values (round-off below 0.2 quantum), this share of them
#: within the tolerance of a lattice point, spread over this many distinct levels.
MIN_VALUES, MIN_SHARE, MIN_LEVELS = 200, 0.98, 8
#: Quantum candidates tried: the smallest step between distinct values, divided by 1..MAX_DIVISOR
#: (with few values the smallest step present may span several quanta).
MAX_DIVISOR = 6
#: Values (spread over the sample) tested for one lattice, frames tested one by one, pixels
#: tested one by one (larger frames: the other pixels take the median quantum).
LATTICE_VALUES, LATTICE_FRAMES, LATTICE_PIXELS = 200_000, 64, 16_384
#: Per-pixel lattices (flat-fielded counts) need at least this many frames, whose values of a
#: pixel are informative and spread over MIN_LEVELS / 2 levels.
MIN_FRAMES_PER_PIXEL = 16
#: Intensity bins of the estimated variance model (quantiles), none wider than a factor BIN_RATIO.
N_BINS, BIN_RATIO = 12, 2.0
#: Mean square of a unit Gaussian inside its central 98 % (|x| < 2.326): 1 - 2 z phi(z) / 0.98.
TRIM_98 = 1 - 2 * 2.3263 * math.exp(-2.3263 ** 2 / 2) / math.sqrt(2 * math.pi) / 0.98


@dataclass(frozen=True)
class NoiseModel:
    """Per-pixel variance of a measured intensity ``d`` (data units) of mean ``I``:
    ``var(d) = gain * I + floor``.

    gain: data units per photon (``1 / photons_per_unit``): a float, or a float64 ``(fy, fx)``
        map for flat-fielded counts (model convention: far-field maps unshifted).
    floor: intensity-independent variance (read-out noise, a subtracted dark), data units^2.
    """

    gain: float | np.ndarray
    floor: float = 0.0

    def variance(self, intensity):
        """``gain * I + floor`` for intensities ``I`` (any shape ending in ``(fy, fx)`` when the
        gain is a map)."""
        return self.gain * np.maximum(intensity, 0) + self.floor

    def expected_misfit(self, intensity, loss: str = "amplitude") -> float:
        """Mean over pixels of the loss at the truth, for noise-free intensities ``intensity``:
        ``E (sqrt(d) - sqrt(I))^2`` (amplitude; ~gain / 4 where counts are high) or
        ``E (I - d - d log(I / d))`` (poisson; ~gain / 2). The floor's share (amplitude only) is
        ``floor / (4 I)`` where the intensity is well above its noise."""
        i = np.maximum(np.asarray(intensity, np.float64), 0)
        gain = np.broadcast_to(np.asarray(self.gain, np.float64), i.shape)
        photons = i / np.maximum(gain, 1e-300)
        if loss == "amplitude":
            per = gain * amplitude_misfit_per_photon(photons)
            if self.floor > 0:
                per = per + self.floor / (4 * i + 4 * math.sqrt(self.floor))
        elif loss == "poisson":
            per = gain * poisson_misfit_per_photon(photons)
        else:
            raise ValueError(f"unknown loss {loss!r}; choose amplitude or poisson")
        return float(np.mean(per))


@dataclass(frozen=True)
class NoiseEstimate:
    """What :func:`estimate_noise` found.

    kind: one of :data:`KINDS`. photons_per_unit: photons per data unit (the median over pixels
    for a flat field), None when only a level without a photon scale was measured. model: the
    per-pixel variance (:class:`NoiseModel`). reason: one line for the log.
    """

    kind: str
    photons_per_unit: float | None
    model: NoiseModel
    reason: str

    @property
    def counts(self) -> bool:
        """Whether the frames are (scaled) photon counts, whose noise is Poisson."""
        return self.kind in ("integer counts", "scaled counts")

    @property
    def known(self) -> bool:
        """Whether the level is the noise's own (counts, scaled counts, stated), not an upper
        bound measured from the frames (where the object's finest detail counts as noise)."""
        return self.kind != "estimated"


# ---- the expected misfit of a Poisson count, per photon ----------------------------------------

def _poisson_expectations(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``E[sqrt(n)]`` and ``E[n log(n / lam)]`` for ``n ~ Poisson(lam)``, lam <= 200, by sums."""
    kmax = int(np.max(lam) + 14 * math.sqrt(np.max(lam) + 1) + 30)
    k = np.arange(kmax + 1, dtype=np.float64)
    lg = np.cumsum(np.log(np.maximum(k, 1)))                    # log k!
    lam = np.maximum(lam, 1e-300)[:, None]
    pmf = np.exp(k * np.log(lam) - lam - lg)
    klogk = np.where(k > 0, k * np.log(np.maximum(k, 1)), 0.0)
    sqrt_n = pmf @ np.sqrt(k)
    nlog = pmf @ klogk - lam[:, 0] * np.log(lam[:, 0])
    return sqrt_n, nlog


_LAM_GRID = np.concatenate([np.geomspace(1e-6, 1, 40, endpoint=False), np.geomspace(1, 200, 80)])
_SQRT_N, _NLOG = _poisson_expectations(_LAM_GRID)
_AMP_GRID = 2 * _LAM_GRID - 2 * np.sqrt(_LAM_GRID) * _SQRT_N
_POI_GRID = _NLOG  # E[lam - n - n log(lam / n)] = E[n log(n / lam)], since E[n] = lam


def _on_grid(lam, grid_values, small, large):
    lam = np.asarray(lam, np.float64)
    out = np.interp(np.log(np.clip(lam, _LAM_GRID[0], _LAM_GRID[-1])), np.log(_LAM_GRID),
                    grid_values)
    out = np.where(lam < _LAM_GRID[0], small(lam), out)
    return np.where(lam > _LAM_GRID[-1], large(np.maximum(lam, 1.0)), out)


def amplitude_misfit_per_photon(lam):
    """``E (sqrt(n) - sqrt(lam))^2`` for Poisson counts ``n`` of mean ``lam`` (photons): ``lam``
    where almost every count is 0, ``1/4 + 7 / (64 lam)`` where counts are high."""
    return _on_grid(lam, _AMP_GRID, lambda x: x, lambda x: 0.25 + 7 / (64 * x))


def poisson_misfit_per_photon(lam):
    """``E (lam - n - n log(lam / n))`` (the Poisson loss at the truth, per pixel): ``lam`` where
    almost every count is 0, ``1/2 + 1 / (12 lam)`` where counts are high."""
    return _on_grid(lam, _POI_GRID, lambda x: x, lambda x: 0.5 + 1 / (12 * x))


# ---- reading a sample --------------------------------------------------------------------------

def sample_frames(ds, max_frames: int = MAX_FRAMES, max_values: int = MAX_VALUES) -> tuple:
    """``(frames, good)``: up to ``max_frames`` frames spread over angles and spots (and about
    ``max_values`` pixels in all: of very large frames, at least two, a central window), float64
    ``(k, fy', fx')`` in model units, and the detector's good pixels there (bool)."""
    per_frame = int(np.prod(ds.frame_shape))
    k = max(2, min(max_frames, max_values // max(per_frame, 1), ds.n_angles * ds.n_spots))
    n_a = min(ds.n_angles, max(1, int(round(math.sqrt(k * ds.n_angles / max(ds.n_spots, 1))))))
    n_s = min(ds.n_spots, max(1, k // n_a))
    a, s = spread_indices(ds.n_angles, n_a), spread_indices(ds.n_spots, n_s)
    frames = np.concatenate([np.asarray(ds.frames([i], s), np.float64)[0] for i in a])
    good = np.ones(ds.frame_shape, bool) if ds.mask is None else np.asarray(ds.mask) > 0
    if frames.size > max_values:   # frames larger than the budget: a window of each
        side = [min(n, max(16, int(math.sqrt(max_values / len(frames))))) for n in ds.frame_shape]
        win = tuple(slice((n - w) // 2, (n - w) // 2 + w) for n, w in zip(ds.frame_shape, side))
        frames, good = frames[(slice(None),) + win], good[win]
    return frames, good


# ---- lattices of whole quanta ------------------------------------------------------------------

def find_quantum(values) -> tuple[float, float, float] | None:
    """``(quantum, offset, share)`` when the finite ``values`` (one lattice: the frames of a
    common scale, or one frame) are ``offset + n * quantum`` with whole ``n`` up to float32
    round-off; ``share`` is the fraction of informative values on the lattice. None when they
    are not, or when it cannot be told (too few values or levels, round-off of a quarter
    quantum or more)."""
    v = np.asarray(values, np.float64).ravel()
    v = np.sort(v[np.isfinite(v)])[:, None]
    q, off, share, ok = _lattices(v)
    return (float(q[0]), float(off[0]), float(share[0])) if ok[0] else None


def _lattices(v: np.ndarray, min_values: int = MIN_VALUES, min_levels: int = MIN_LEVELS):
    """Per column of ``v`` (float64 ``(K, P)``, each column sorted ascending, NaN = no value):
    ``(quantum, offset, share, ok)`` arrays ``(P,)``. The quantum starts from the smallest step
    between values above their round-off (the most precisely stored of the steps within 25 % of
    it; or that step divided by 2..MAX_DIVISOR: with few values the smallest step present may span
    several quanta), is refined by least squares (:func:`_refine`) and is accepted where the values
    sit on its lattice; the largest accepted quantum wins."""
    ulp = np.spacing(np.abs(v).astype(np.float32)).astype(np.float64)
    steps = np.diff(v, axis=0)
    real = steps > 3 * ulp[1:]
    smin = np.where(real, steps, np.inf).min(axis=0)
    near = real & (steps <= 1.25 * smin)
    pick = np.where(near, ulp[1:], np.inf).argmin(axis=0)
    cols = np.arange(v.shape[1])
    q0 = np.where(np.isfinite(smin), steps[pick, cols] if len(steps) else np.nan, np.nan)
    rel0 = 2 * ulp[1:][pick, cols] / q0 if len(steps) else np.full(v.shape[1], np.nan)
    best = [np.full(v.shape[1], np.nan) for _ in range(3)]
    for div in range(MAX_DIVISOR, 0, -1):   # the largest quantum that fits is written last
        q, ref = _refine(v, q0 / div, rel0)
        off, share, ok = _check(v, q, ref, ulp, min_values, min_levels)
        for b, new in zip(best, (q, off, share)):
            b[ok] = new[ok]
    ok = np.isfinite(best[0])
    return best[0], best[1], best[2], ok


def _refine(v: np.ndarray, q: np.ndarray, rel: np.ndarray):
    """Least-squares quantum (and a lattice point near the median value) per column, from a
    first guess ``q`` of relative error ``rel``. The fit starts on the values within a few quanta
    of the median value and widens its window while the count of quanta to every value in it
    stays certain (the window times the quantum's relative error below 0.3 quantum); a column
    whose window cannot grow to hold every value gets NaN."""
    valid = np.isfinite(v) & np.isfinite(q)[None, :]
    # a value itself (a lattice point), the lower median: columns are sorted, NaN last
    mid = np.maximum(np.isfinite(v).sum(0) - 1, 0) // 2
    ref = v[mid, np.arange(v.shape[1])]
    q, rel = np.where(valid.any(0), q, np.nan), np.maximum(rel, 1e-12)
    w = np.minimum(8.0, 0.3 / rel) * q
    active = valid.any(0)
    for _ in range(200):
        y = np.where(valid, v - ref, 0.0)
        sel = valid & (np.abs(y) <= w)
        qs = np.where(active, q, 1.0)
        m = np.where(sel, np.round(y / qs), 0.0)
        s, sm, smm = sel.sum(0), m.sum(0), (m * m).sum(0)
        sy, smy = (y * sel).sum(0), (m * y).sum(0)
        den = s * smm - sm * sm
        fit = active & (den > 0) & (s >= 3)
        qn = np.where(fit, (s * smy - sm * sy) / np.where(den > 0, den, 1.0), q)
        c = np.where(fit, (sy - qn * sm) / np.maximum(s, 1), 0.0)
        res = np.where(sel, y - qn * m - c, 0.0)
        se = np.sqrt((res * res).sum(0) / np.maximum(s - 2, 1) * s / np.where(den > 0, den, 1.0))
        rel = np.where(fit, np.maximum(3 * se / np.abs(qn), 1e-12), rel)
        q, ref = qn, ref + c
        done = ~active | (sel == valid).all(0)
        grown = np.minimum(2 * w, 0.3 / rel * np.abs(q))
        stuck = active & ~done & (grown <= w * (1 + 1e-9))
        q = np.where(stuck, np.nan, q)
        active &= ~done & ~stuck
        if not active.any():
            break
        w = np.where(active, grown, w)
    return q, ref


def _check(v, q, ref, ulp, min_values: int, min_levels: int):
    """``(offset in [0, q), share on the lattice, ok)`` per column (see :func:`_lattices`)."""
    qs = np.where(np.isfinite(q) & (q > 0), q, np.nan)
    r = (v - ref) / qs
    tol = np.maximum(0.02, 2.5 * ulp / qs)
    informative = np.isfinite(r) & (tol < 0.25)
    dev = np.abs(r - np.round(r))
    n_inf = informative.sum(0)
    share = np.where(n_inf > 0, (informative & (dev <= tol)).sum(0) / np.maximum(n_inf, 1), 0.0)
    levels = np.where(informative, np.round(r), np.nan)
    levels = np.sort(levels, axis=0)
    n_levels = (np.diff(levels, axis=0) > 0).sum(0) + (n_inf > 0)
    ok = (n_inf >= min_values) & (share >= MIN_SHARE) & (n_levels >= min_levels)
    off = np.mod(ref, np.where(np.isfinite(qs), qs, 1.0))
    # the offset is known only where the quantum's error over the distance to 0 stays small
    off = np.where(np.nanmin(np.abs(v), axis=0) < 1e3 * np.abs(qs), off, 0.0)
    return off, share, ok


def _per_pixel(frames: np.ndarray, good: np.ndarray):
    """``(quantum map (fy, fx), share of lattice pixels)`` for flat-fielded counts (values of
    one pixel across the sampled frames), or None."""
    k = frames.shape[0]
    if k < MIN_FRAMES_PER_PIXEL:
        return None
    pix = _spread(np.flatnonzero(good.ravel()), LATTICE_PIXELS)
    v = np.sort(frames.reshape(k, -1)[:, pix], axis=0)
    q, _off, _share, ok = _lattices(v, MIN_FRAMES_PER_PIXEL, MIN_LEVELS // 2)
    share = float(ok.mean())
    if share < 0.9:
        return None
    # pixels not tested (large frames) and the few without a lattice take the median quantum
    qmap = np.full(good.size, np.nanmedian(q[ok]))
    qmap[pix[ok]] = q[ok]
    return qmap.reshape(frames.shape[1:]), share


# ---- a level measured on the data ---------------------------------------------------------------

def _box3(frames: np.ndarray) -> np.ndarray:
    """3x3 means of the frames' interior ``(k, fy - 2, fx - 2)``."""
    fy, fx = frames.shape[1:]
    return sum(frames[:, i:fy - 2 + i, j:fx - 2 + j] for i in range(3) for j in range(3)) / 9.0


def _second_difference(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(residual, local mean)`` of each frame's interior: the separable second difference
    ``[1 -2 1] x [1 -2 1] / 6`` (white noise of variance s^2 keeps s^2; a signal linear along
    either axis vanishes) and the 3x3 mean."""
    d2y = frames[:, :-2] - 2 * frames[:, 1:-1] + frames[:, 2:]
    r = (d2y[:, :, :-2] - 2 * d2y[:, :, 1:-1] + d2y[:, :, 2:]) / 6.0
    return r, _box3(frames)


def _alike_differences(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(half-difference, local mean)`` of each frame with its most alike other frame, on the
    interior: the noise of both, plus whatever signal tells them apart; the local mean is the
    pair's 3x3 mean (binning by a pixel's own noisy value would select low differences into low
    bins). The partner is chosen on the pixels of one colour of a checkerboard (a chi-square
    distance, so that the brightest pixels do not decide alone) and the residuals are kept on the
    other colour only: a partner chosen on the same pixels would be one whose noise happens to
    agree (far-field centres: a quarter of the true variance)."""
    k = frames.shape[0]
    if k < 2:
        return None
    fy, fx = frames.shape[1:]
    black = (np.add.outer(np.arange(fy), np.arange(fx)) % 2) == 0
    pick = np.flatnonzero(black.ravel())
    pick = pick[np.linspace(0, pick.size - 1, min(pick.size, 4096)).astype(int)]
    f = frames.reshape(k, -1)[:, pick]
    scale = np.maximum(f.mean(0), 1e-12 * max(float(f.max()), 1e-300))
    g = f / np.sqrt(scale)                        # chi-square distance as a Euclidean one
    sq = (g * g).sum(1)
    dist = sq[:, None] + sq[None, :] - 2 * g @ g.T
    np.fill_diagonal(dist, np.inf)
    j = dist.argmin(axis=1)
    half = (frames - frames[j]) / math.sqrt(2)
    half[:, black] = np.nan                       # the residuals of the pixels not chosen on
    return half[:, 1:-1, 1:-1], _box3((frames + frames[j]) / 2)


def _bin_edges(m: np.ndarray) -> np.ndarray:
    """Intensity bins: quantiles of the positive local means (1st to 99.5th percentile), each
    bin split further until it spans at most a factor BIN_RATIO (far-field patterns span decades:
    within one wide bin the brightest pixels would carry the variance and the trimming cut them)."""
    pos = m[m > 0]
    if pos.size == 0:
        return np.array([0.0, 1e-300])
    lo, hi = np.percentile(pos, [1, 99.5])
    q = np.quantile(pos[(pos >= lo) & (pos <= hi)], np.linspace(0, 1, N_BINS + 1))
    geo = np.geomspace(lo, hi, max(2, int(np.ceil(np.log(hi / lo) / np.log(BIN_RATIO))) + 1)) \
        if hi > lo > 0 else q
    return np.unique(np.concatenate([q, geo]))


def _binned_variance(res: np.ndarray, mean: np.ndarray, edges: np.ndarray) -> tuple:
    """``(variance, mean intensity)`` of ``res`` in bins of ``mean`` (NaN where fewer than 50
    values): the mean square of the values inside their 98 % central range, corrected for that
    trimming (exact for Gaussian noise; a median-based estimate would read 0 where most counts
    are 0)."""
    idx = np.digitize(mean, edges) - 1          # outside the edges: -1 or len(edges) - 1
    var = np.full(len(edges) - 1, np.nan)
    centre = np.full(len(edges) - 1, np.nan)
    for b in range(len(var)):
        inside = idx == b
        sel = res[inside]
        if sel.size >= 50:
            sel = sel - np.mean(sel)
            cut = np.quantile(np.abs(sel), 0.98)
            kept = sel[np.abs(sel) <= cut]
            var[b] = float(np.mean(kept * kept)) / TRIM_98
            centre[b] = float(np.mean(mean[inside]))
    return var, centre


def _fit_variance(centres: np.ndarray, var: np.ndarray) -> tuple[float, float]:
    """``(gain, floor) >= 0`` of ``var = gain * I + floor``, least squares relative to ``var``;
    the gain alone where the intensities span less than a factor 2 (flat-fielded holograms)."""
    ok = np.isfinite(var) & (var > 0) & (centres > 0)
    c, v = centres[ok], var[ok]
    if c.size == 0:
        return 0.0, 0.0
    if c.max() < 2 * c.min():   # too narrow a range to tell the two apart: counts (a gain) alone
        return float(np.median(v / c)), 0.0
    a = np.stack([c / v, 1 / v], 1)
    (gain, floor), *_ = np.linalg.lstsq(a, np.ones_like(v), rcond=None)
    if gain < 0 or floor < 0:      # one term alone
        g1 = float(np.median(v / np.maximum(c, 1e-300)))
        f1 = float(np.median(v))
        e_g = np.sum((g1 * c / v - 1) ** 2)
        e_f = np.sum((f1 / v - 1) ** 2)
        return (g1, 0.0) if e_g <= e_f else (0.0, f1)
    return float(gain), float(floor)


def _measured_level(frames: np.ndarray, good: np.ndarray) -> tuple[NoiseModel, str]:
    """The variance model fitted on the data (see the module docstring), and how."""
    g2 = _box3(good[None].astype(float))[0] > 1 - 1e-9      # 3x3 neighbourhoods of good pixels
    r, m = _second_difference(frames)
    r, m = r[:, g2].ravel(), m[:, g2].ravel()
    edges = _bin_edges(m)
    var, centres = _binned_variance(r, m, edges)
    how = "second differences within frames"
    alike = _alike_differences(frames)
    if alike is not None:
        dv, dm = alike
        dv, dm = dv[:, g2].ravel(), dm[:, g2].ravel()
        white = np.isfinite(dv)
        var2, centres2 = _binned_variance(dv[white], dm[white], edges)
        smaller = np.isfinite(var2) & ~(var2 >= var)
        if smaller.sum() > np.isfinite(var).sum() / 2:
            how = "differences of the most alike frames"
        var = np.where(smaller, var2, var)
        centres = np.where(smaller, centres2, centres)
    gain, floor = _fit_variance(centres, var)
    return NoiseModel(gain, floor), how


# ---- the answer ---------------------------------------------------------------------------------

def estimate_noise(ds, photons_per_unit: float | None = None) -> NoiseEstimate:
    """The noise of data set ``ds`` (see the module docstring); ``photons_per_unit``: the user's
    statement (``data.photons_per_unit``), which wins."""
    if photons_per_unit is not None:
        if not photons_per_unit > 0:
            raise ValueError(f"photons_per_unit must be positive, got {photons_per_unit!r}")
        return NoiseEstimate("stated", float(photons_per_unit),
                             NoiseModel(1.0 / float(photons_per_unit)),
                             f"data.photons_per_unit = {photons_per_unit:g} (as configured)")
    frames, good = sample_frames(ds)
    where = f"{frames.shape[0]} frames sampled"
    if ds.meta.get("integer_counts"):
        return NoiseEstimate("integer counts", 1.0, NoiseModel(1.0),
                             f"stored as {ds.meta.get('frames_dtype', 'integers')}: photon counts, "
                             "Poisson noise")
    found = _scaled_counts(frames, good, where)
    if found is not None:
        return found
    model, how = _measured_level(frames, good)
    level = float(np.median(frames[:, good]))
    ppu = 1.0 / model.gain if model.gain > 0 else None
    reason = (f"no lattice of whole quanta in the values ({where}); noise measured from {how}: "
              f"variance at most {model.gain:.3g} x I + {model.floor:.3g} (an upper bound: "
              "any of the object's signal at the finest scale counts as noise)")
    if ppu is not None:
        reason += f" (~{ppu:.3g} photons per unit, {level * ppu:.3g} per pixel at the median)"
    return NoiseEstimate("estimated", ppu, model, reason)


def _scaled_counts(frames: np.ndarray, good: np.ndarray, where: str) -> NoiseEstimate | None:
    """Scaled counts: one quantum for the data set, one per frame, or one per pixel."""
    pooled = find_quantum(_spread(frames[:, good].ravel(), LATTICE_VALUES))
    if pooled is not None:
        q, off, _ = pooled
        return NoiseEstimate("scaled counts", 1.0 / q, NoiseModel(q),
                             f"the values are whole multiples of {q:.6g} ({1 / q:.6g} photons "
                             f"per unit{_dark(off, q)}; {where})")
    quanta = [find_quantum(_spread(f[good], LATTICE_VALUES // 4))
              for f in frames[spread_indices(len(frames), LATTICE_FRAMES)]]
    found = [f for f in quanta if f is not None]
    if len(found) >= max(2, int(0.9 * len(quanta))):
        q = np.array([f[0] for f in found])
        qm = float(np.median(q))
        return NoiseEstimate("scaled counts", 1.0 / qm, NoiseModel(qm),
                             f"each frame's values are whole multiples of its own quantum (a "
                             f"per-frame scale, e.g. a monitor): {1 / q.max():.4g} to "
                             f"{1 / q.min():.4g} photons per unit"
                             f"{_dark(float(np.median([f[1] for f in found])), qm)}; {where}")
    pixels = _per_pixel(frames, good)
    if pixels is None:
        return None
    qmap, share = pixels
    ppu = float(np.median(1.0 / qmap[good]))
    lo, hi = np.percentile(1.0 / qmap[good], [5, 95])
    return NoiseEstimate("scaled counts", ppu, NoiseModel(qmap),
                         f"each pixel's values are whole multiples of its own quantum (counts "
                         f"divided by a flat field): {lo:.4g} to {hi:.4g} photons per unit "
                         f"(5-95 %), {100 * share:.0f} % of pixels; {where}")


def _spread(values: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` of ``values``, evenly spread over them (the lattice test needs a few
    thousand; sorting millions would cost seconds)."""
    return values if values.size <= n else values[np.linspace(0, values.size - 1, n).astype(int)]


def _dark(offset: float, q: float) -> str:
    """Words for a lattice offset (``offset`` in [0, q)) far from 0: a subtracted dark level."""
    near = min(offset, q - offset)
    return f", offset {offset:.3g}: a subtracted dark" if near > 0.05 * q else ""
