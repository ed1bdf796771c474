"""Near or far field? A guess from the frames and the geometry that survives real detectors.

Used only where nobody stated the field (``data.field``, ``model.kind``, ``data.source_to_sample_m``
decide first, :mod:`.field`). Each cue votes for near (+) or far (-) field with a weight, or
abstains, and says why in a few words; the sum decides, and the reason names the cues that
carried it. Cues:

* **translation** (scans): in the near field the sample's features move across the frame as the
  sample moves (the frames change by a shift), in the far field the patterns change shape. Frames
  divided by the mean frame (which removes the fixed illumination, whatever part of the detector
  it lights) are correlated pairwise, inside the lit region only (masked normalised
  cross-correlation); the scale (unknown: a cone beam magnifies by an unknown ``M``) and the
  orientation of the scan are searched, and the best consistent score is compared with the same
  search on shuffled scan directions (chance level).
* **fft_order**: a far-field pattern stored with the direct beam in the corners is far more compact
  after ``fftshift`` (near-field frames never are).
* **concentration**: the share of the counts in the brightest 1 % of the pixels of the mean frame
  (hot pixels removed first); a direct beam concentrates counts, a lit field spreads them. The
  median is never used: with partial illumination it falls in the dark rim.
* **lit**: the share of the detector lit above 10 % of the (robust) maximum; a full field is lit
  everywhere, a diffraction pattern never is.
* **geometry**: the Fresnel number of one detector pixel, ``p^2 / (lambda z)``: below 0.1 the
  detector is an imaging camera (a far-field pattern would be oversampled tens of times); and for
  scans, the far-field window at the sample ``lambda z / p``: scan steps larger than half of it
  leave no overlap, which far-field ptychography needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

__all__ = ["Cue", "FieldGuess", "guess_field", "scan_sample", "clean_mean_frame",
           "is_fft_order"]

#: A pixel above this many times the brightest of its 8 neighbours is hot (a direct beam is
#: never one pixel wide: a far-field probe that fits in half the window spans >= 2 px).
HOT_FACTOR = 5.0
#: Below this pixel Fresnel number the detector is an imaging camera (near field).
CAMERA_PIXEL_FRESNEL = 0.1


@dataclass(frozen=True)
class Cue:
    """One piece of evidence: ``vote`` > 0 for near field, < 0 for far, 0 abstains."""

    name: str
    vote: float
    text: str


@dataclass(frozen=True)
class FieldGuess:
    """The guess (``"near"`` | ``"far"``), its summed score and the cues; ``magnification``: the
    scale at which the frames' features follow the scan (a cone beam's ``M``), when they do."""

    field: str
    score: float
    cues: tuple
    magnification: float | None = None

    def reason(self) -> str:
        """The cues that voted the winning way, strongest first, in words."""
        sign = 1 if self.field == "near" else -1
        won = sorted((c for c in self.cues if c.vote * sign > 0), key=lambda c: -abs(c.vote))
        return "; ".join(c.text for c in won) or "no cue decided it (default)"


# ---- frame statistics ---------------------------------------------------------------------------

def hot_pixels(frames: np.ndarray, usable: np.ndarray | None = None) -> np.ndarray:
    """Pixels ``(fy, fx)`` (True = hot) that read more than HOT_FACTOR x their brightest
    neighbour (and more than 5 counts) in at least 3/4 of ``frames`` ``(k, fy, fx)``: a fault of
    the detector, not a feature of the sample (which moves, or has bright neighbours). Never
    within 3 px of the centroid of the other counts, where a far-field direct beam focused to a
    single pixel would sit."""
    f = np.asarray(frames, np.float32)
    if usable is not None:
        f = np.where(usable, f, np.float32(0))
    pad = np.pad(f, ((0, 0), (1, 1), (1, 1)), mode="edge")
    fy, fx = f.shape[1:]
    neigh = np.zeros_like(f)
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        np.maximum(neigh, pad[:, 1 + dy:1 + dy + fy, 1 + dx:1 + dx + fx], out=neigh)
    hot = ((f > HOT_FACTOR * np.maximum(neigh, 1.0)) & (f > 5)).mean(axis=0) >= 0.75
    rest = np.where(hot, 0.0, f.mean(axis=0))
    if hot.any() and rest.sum() > 0:
        yy, xx = np.mgrid[:fy, :fx]
        cy, cx = (rest * yy).sum() / rest.sum(), (rest * xx).sum() / rest.sum()
        hot &= np.hypot(yy - cy, xx - cx) > 3
    return hot


def clean_mean_frame(frames: np.ndarray, good: np.ndarray | None = None) -> tuple:
    """The mean frame with hot pixels (:func:`hot_pixels`) and bad pixels replaced by the median
    of their neighbours; returns ``(mean, usable)`` (usable: bool ``(fy, fx)``)."""
    mean = np.asarray(frames, np.float64).mean(axis=0)
    usable = np.ones(mean.shape, bool) if good is None else np.asarray(good, bool).copy()
    usable &= ~hot_pixels(frames, usable)
    pad = np.pad(np.where(usable, mean, 0.0), 1, mode="edge")
    fy, fx = mean.shape
    neigh = np.stack([pad[1 + dy:1 + dy + fy, 1 + dx:1 + dx + fx]
                      for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    return np.where(usable, mean, np.median(neigh, axis=0)), usable


def is_fft_order(mean: np.ndarray) -> tuple[bool, float]:
    """Whether a pattern's bright part sits in the corners (FFT order): ``(fft, ratio)`` with
    ratio = rms radius about the intensity centroid after / before ``fftshift`` (< 0.5: FFT)."""
    def spread(img):
        w = np.maximum(img - np.percentile(img, 50), 0)
        tot = w.sum()
        if tot <= 0:
            return np.inf
        yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
        cy, cx = (w * yy).sum() / tot, (w * xx).sum() / tot
        return float(np.sqrt((w * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum() / tot))

    before = spread(mean)
    ratio = spread(np.fft.fftshift(mean)) / max(before, 1e-30)
    return ratio < 0.5, ratio


def _concentration(mean: np.ndarray, usable: np.ndarray) -> float:
    v = np.sort(mean[usable])[::-1]
    top = max(1, int(round(0.01 * v.size)))
    return float(v[:top].sum() / max(v.sum(), 1e-30))


def _lit_mask(mean: np.ndarray, usable: np.ndarray, level: float = 0.1) -> np.ndarray:
    robust_max = np.percentile(mean[usable], 99.5)
    return usable & (mean > level * robust_max)


# ---- the translation cue ------------------------------------------------------------------------

def scan_sample(translations_m: np.ndarray, k_anchors: int = 8, k_neighbours: int = 2):
    """Frame indices to read for the translation cue: ``k_anchors`` frames spread over the scan
    and their nearest neighbours. Returns ``(indices, pairs)`` with pairs as index pairs into
    ``indices``."""
    t = np.asarray(translations_m, float)[:, :2]
    n = len(t)
    anchors = np.unique(np.linspace(0, n - 1, min(n, k_anchors)).round().astype(int))
    pairs_global = []
    for a in anchors:
        d = np.hypot(*(t - t[a]).T)
        d[d <= 0] = np.inf
        for b in np.argsort(d)[:k_neighbours]:
            if np.isfinite(d[b]):
                pairs_global.append((int(a), int(b)))
    idx = np.unique(np.array([i for p in pairs_global for i in p] or [0], int))
    where = {int(g): k for k, g in enumerate(idx)}
    return idx, [(where[a], where[b]) for a, b in pairs_global]


def _highpass(img: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    ky, kx = np.fft.fftfreq(img.shape[0])[:, None], np.fft.fftfreq(img.shape[1])[None]
    low = np.fft.ifft2(np.fft.fft2(img) * np.exp(-2 * (np.pi * sigma) ** 2 * (ky ** 2 + kx ** 2)))
    return img - low.real


def _masked_ncc_maps(norm: np.ndarray, w: np.ndarray, pairs, reach: int) -> np.ndarray:
    """Normalised cross-correlations ``c[d] ~ sum b(x) a(x - d)`` of the pairs ``(a, b)`` of
    ``norm`` ``(k, fy, fx)`` over the overlap of the lit region ``w`` with itself shifted
    (Padfield's masked NCC), for shifts up to ``reach`` px (zero padding, no wrap-around);
    shifts whose overlap is under 30 % of the region are 0. ``(n_pairs, gy, gx)``."""
    shape = tuple(sfft.next_fast_len(n + reach, real=True) for n in norm.shape[1:])
    used = sorted({i for pair in pairs for i in pair})
    where = {i: k for k, i in enumerate(used)}
    x = norm[used].astype(np.float32) * w
    f1 = sfft.rfft2(x, shape, workers=-1)                # each frame's transforms once
    f2 = sfft.rfft2(x * norm[used], shape, workers=-1)
    fw = sfft.rfft2(w.astype(np.float32), shape, workers=-1)
    overlap = sfft.irfft2(fw * np.conj(fw), shape)
    out = np.zeros((len(pairs),) + shape, np.float32)
    ok = overlap > 0.3 * w.sum()
    for axis, n in enumerate(shape):   # lags beyond the reach alias: left at 0
        lag = np.minimum(np.arange(n), n - np.arange(n))
        ok &= np.expand_dims(lag <= reach, 1 - axis)
    for k, (i, j) in enumerate(pairs):
        a, b = where[i], where[j]
        num, ea, eb = sfft.irfft2(np.stack([f1[b] * np.conj(f1[a]), fw * np.conj(f2[a]),
                                            f2[b] * np.conj(fw)]), shape, workers=-1)
        out[k][ok] = (num / np.sqrt(np.maximum(ea * eb, 1e-30)))[ok]
    return out


def _sample_maps(maps: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Bilinear value of each map at its shift ``d[k]`` ``(..., n_pairs, 2)`` (wrapped)."""
    n = np.array(maps.shape[1:])
    y0, x0 = np.floor(d[..., 0]), np.floor(d[..., 1])
    wy, wx = d[..., 0] - y0, d[..., 1] - x0
    k = np.arange(len(maps))
    val = 0.0
    for dy, fy in ((0, 1 - wy), (1, wy)):
        for dx, fx in ((0, 1 - wx), (1, wx)):
            val = val + fy * fx * maps[k, (y0 + dy).astype(int) % n[0],
                                       (x0 + dx).astype(int) % n[1]]
    return val


_ORIENT = np.array([[[1, 0], [0, 1]], [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[-1, 0], [0, -1]],
                    [[0, 1], [1, 0]], [[0, -1], [1, 0]], [[0, 1], [-1, 0]], [[0, -1], [-1, 0]]],
                   float)


def _best_consistent(maps: np.ndarray, steps: np.ndarray, frame: int) -> tuple[float, float]:
    """Best mean correlation over scales and orientations of the predicted shifts
    ``scale * O @ step``, and that scale (shift in px per unit of ``steps``)."""
    size = np.median(np.hypot(*steps.T))
    if not size > 0:
        return 0.0, 0.0
    scales = np.exp(np.arange(np.log(1.0 / size), np.log(frame / 3 / size), 0.02))
    if not len(scales):
        return 0.0, 0.0
    pred = np.einsum("oij,pj->opi", _ORIENT, steps)                  # (8, pairs, 2)
    d = scales[:, None, None, None] * pred[None]                       # (S, 8, pairs, 2)
    score = _sample_maps(maps, d).mean(axis=-1)                        # (S, 8)
    best = np.unravel_index(int(np.argmax(score)), score.shape)
    return float(score[best]), float(scales[best[0]])


@dataclass(frozen=True)
class Translation:
    """What the translation search found: ``best`` mean correlation at scan-consistent shifts,
    ``chance`` the same search on shuffled directions, ``scale`` the shift (frame px) per
    plane-wave detector pixel of sample motion (a cone beam's magnification ``M``), ``contrast``
    the rms of the normalised frames."""

    best: float
    chance: float
    scale: float
    contrast: float

    def words(self) -> str:
        return f"correlation {self.best:.2f}, chance {self.chance:.2f}"


def measure_translation(frames, usable, lit, translations_m, pixel_m, pairs) -> Translation | None:
    """See the module docstring. ``frames`` ``(k, fy, fx)``; ``pairs`` index pairs into them;
    None when too few pairs or too little lit area."""
    f = np.asarray(frames, np.float64)
    mean = f.mean(axis=0)
    w = (lit & usable).astype(float)
    if len(pairs) < 4 or w.sum() < 64:
        return None
    norm = np.where(w > 0, f / np.maximum(mean, 1e-30) - 1.0, 0.0)
    norm = np.stack([_highpass(x) * w for x in norm])
    contrast = float(np.sqrt((norm ** 2).sum() / (w.sum() * len(norm))))
    maps = _masked_ncc_maps(norm, w, pairs, max(f.shape[1:]) // 3 + 1)
    t = np.asarray(translations_m, float)[:, :2] / pixel_m
    steps = np.array([t[j, ::-1] - t[i, ::-1] for i, j in pairs])    # (row, col) ~ (y, x)
    frame = min(f.shape[1:])
    best, scale = _best_consistent(maps, steps, frame)
    rng = np.random.default_rng(0)
    chance = 0.0
    for _ in range(3):
        ang = rng.uniform(0, 2 * np.pi, len(steps))
        rot = np.stack([np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)], -1).reshape(-1, 2, 2)
        chance = max(chance, _best_consistent(maps, np.einsum("pij,pj->pi", rot, steps), frame)[0])
    return Translation(best, chance, scale, contrast)


def translation_cue(tr: Translation | None, lit_px: int, nf_pixel: float) -> Cue:
    """The vote of the translation search. Features that shift with the scan are a projection
    image; its magnification (the scale found) and the lit field's width give the illuminated
    field at the sample, ``a = D p / M``; far-field sampling needs ``a`` within half the window
    ``lambda z / p``: ``a / W = D N_F / M`` with ``N_F = p^2 / (lambda z)``. A field several
    windows wide is near field; one that fits is a defocused far-field probe's shadow image."""
    if tr is None:
        return Cue("translation", 0.0, "too few overlapping frames to see whether they shift")
    if tr.best > max(0.25, tr.chance + 0.12):
        width = 2 * np.sqrt(lit_px / np.pi)
        ratio = width * nf_pixel / max(tr.scale, 1e-30)
        what = (f"{tr.words()}; magnified ~{tr.scale:.3g}x, the lit field is {ratio:.2g} "
                "far-field windows wide")
        if ratio > 1.0:
            return Cue("translation", 3.0, f"features shift with the scan ({what})")
        if ratio < 0.5:
            return Cue("translation", -2.0, f"features shift like a defocused far-field probe's "
                                            f"shadow ({what})")
        return Cue("translation", 1.0, f"features shift with the scan ({what})")
    if tr.contrast > 0.05 and tr.best < tr.chance + 0.05:
        return Cue("translation", -1.5, f"frames change shape, not position, with the scan "
                                        f"({tr.words()})")
    return Cue("translation", 0.0, f"undecided whether the frames shift ({tr.words()})")


# ---- the other cues and the vote ----------------------------------------------------------------

def _geometry_cues(energy_ev, distance_m, pixel_m, translations_m) -> list[Cue]:
    lam = 1.239841984e-6 / energy_ev
    out = []
    nf_pixel = pixel_m ** 2 / (lam * distance_m)
    if nf_pixel < CAMERA_PIXEL_FRESNEL:
        out.append(Cue("geometry", 2.0, f"pixel Fresnel number {nf_pixel:.2g} (an imaging "
                                        "camera)"))
    if translations_m is not None and len(translations_m) > 1:
        t = np.asarray(translations_m, float)[:, :2]
        d = np.hypot(*(t[:, None] - t[None]).T)
        d[d <= 0] = np.inf
        nearest = d.min(axis=0)
        step = float(np.median(nearest[np.isfinite(nearest)])) if np.isfinite(nearest).any() else 0
        window = lam * distance_m / pixel_m
        ratio = step / window
        if ratio > 0.35:
            out.append(Cue("geometry", 1.5, f"scan steps of {step * 1e6:.3g} um, {ratio:.2f} "
                                            f"far-field windows ({window * 1e6:.3g} um): no "
                                            "far-field overlap"))
        elif 0 < ratio < 0.15:
            out.append(Cue("geometry", -0.5, f"scan steps of {step * 1e6:.3g} um overlap in a "
                                             f"{window * 1e6:.3g} um far-field window"))
    return out


def guess_field(frames: np.ndarray, good: np.ndarray | None = None, *, energy_ev: float,
                distance_m: float, pixel_m: float, translations_m=None, pairs=()) -> FieldGuess:
    """Guess the field of ``frames`` ``(k, fy, fx)`` (as stored; bad pixels ``~good`` ignored).

    ``translations_m``: ``(k, 2|3)`` sample positions of those frames (m, lab x y), or None;
    ``pairs``: index pairs of neighbouring frames (:func:`scan_sample`) for the translation cue.
    """
    frames = np.asarray(frames, np.float64)
    mean, usable = clean_mean_frame(frames, good)
    cues = []
    fft, ratio = is_fft_order(mean)
    if fft:
        cues.append(Cue("fft_order", -4.0, f"direct beam in the corners (FFT order; "
                                           f"{1 / max(ratio, 1e-3):.3g}x more compact after "
                                           "fftshift)"))
    conc = _concentration(mean, usable)
    if conc > 0.4:
        cues.append(Cue("concentration", -2.0, f"{100 * conc:.0f} % of the counts in 1 % of the "
                                               "pixels (a direct beam)"))
    lit = _lit_mask(mean, usable)
    lit_share = float(lit.sum() / max(usable.sum(), 1))
    if lit_share > 0.6:
        cues.append(Cue("lit", 1.5, f"{100 * lit_share:.0f} % of the detector lit (a full field)"))
    elif lit_share < 0.03:
        cues.append(Cue("lit", -1.0, f"only {100 * lit_share:.1f} % of the detector lit"))
    cues += _geometry_cues(energy_ev, distance_m, pixel_m, translations_m)
    magnification = None
    if translations_m is not None and len(pairs) and not fft:
        tr = measure_translation(frames, usable, lit, translations_m, pixel_m, pairs)
        nf_pixel = pixel_m ** 2 / (1.239841984e-6 / energy_ev * distance_m)
        cues.append(translation_cue(tr, int(lit.sum()), nf_pixel))
        if cues[-1].vote > 0:
            magnification = tr.scale
    score = float(sum(c.vote for c in cues))
    return FieldGuess("near" if score > 0 else "far", score, tuple(cues), magnification)
