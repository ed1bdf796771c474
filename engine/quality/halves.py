"""Split-half validation: two independent reconstructions from the odd and the even frames, and
the Fourier ring (shell) correlation of what they agree on.

* :func:`split_halves` -- the two halves of a data set: odd and even **angles** for tomography
  (each half a full tomogram from every other view), else odd and even **scan positions**
  (ptychography: each half a full scan at twice the step). "Even" holds the 0-based indices
  0, 2, 4, ..., "odd" 1, 3, 5, ...
* :func:`comparable_image` -- what two results are compared on: for a 2D or multislice object
  the projected phase (a complex object: the sum over slices of its phase; delta/beta: the
  projected delta, proportional to the phase), cropped to the scanned area and with its mean and
  linear ramp removed (a constant phase and a ramp are ambiguities of ptychography, not
  structure); for a tomogram the delta (or phase) volume, compared shell by shell (FSC).
* :func:`frc_of_results` -- the FRC of two result files (:mod:`.frc` registers and windows them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataFileError
from ..geometry import is_tomography
from ..io.results import read_result
from .frc import FRCResult, fourier_ring_correlation

__all__ = ["split_halves", "comparable_image", "frc_of_results", "dip_note", "COMPARE"]

#: What to compare: auto (volume for a tomogram, else the projection), projection, volume.
COMPARE = ("auto", "projection", "volume")


def split_halves(ds) -> tuple:
    """``(even, odd, what)``: two :class:`~..io.datafile.Dataset` subsets and the words for what
    was split ("angles" or "scan positions")."""
    if ds.n_angles > 1 and is_tomography(ds.angles_rad):
        idx = np.arange(ds.n_angles)
        return (ds.subset(angles=idx[0::2], label="even angles"),
                ds.subset(angles=idx[1::2], label="odd angles"), "angles")
    if ds.n_tiles > 1 and ds.n_distances == 1:
        idx = np.arange(ds.n_spots)
        return (ds.subset(spots=idx[0::2], label="even scan positions"),
                ds.subset(spots=idx[1::2], label="odd scan positions"), "scan positions")
    raise DataFileError(f"{ds.source_path or 'the data set'}: {ds.n_angles} angle(s) and "
                        f"{ds.n_tiles} scan position(s) per distance: nothing to split into two "
                        "independent halves (split-half validation needs a scan or a tomogram)")


def _object_volume(res: dict) -> tuple[np.ndarray, str]:
    """The object's real volume ``(nz, ny, nx)`` to compare and its name."""
    p = res["params"]
    if "object" in p:
        return np.angle(np.asarray(p["object"])), "phase"
    if "delta" in p:
        return np.asarray(p["delta"], float), "delta"
    raise DataFileError("the result holds no object (neither /params/object nor /params/delta)")


def _scanned_box(res: dict, shape: tuple) -> tuple[slice, slice]:
    """Rows and columns covered by the scan (positions + window), a quarter window inside."""
    pos, probe = res["params"].get("positions"), res["params"].get("probe")
    if pos is None or probe is None:
        return slice(None), slice(None)
    pos = np.asarray(pos, float)
    win = np.asarray(np.shape(probe)[-2:])
    lo = np.floor(pos.min(axis=0) + win / 4).astype(int)
    hi = np.ceil(pos.max(axis=0) + 3 * win / 4).astype(int)
    lo = np.clip(lo, 0, np.array(shape) - 1)
    hi = np.clip(hi, lo + 1, np.array(shape))
    return slice(lo[0], hi[0]), slice(lo[1], hi[1])


def _flatten(img: np.ndarray) -> np.ndarray:
    """``img`` minus its best-fitting plane (offset and linear ramp)."""
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
    a = np.column_stack([np.ones(img.size), yy.ravel(), xx.ravel()])
    coef = np.linalg.lstsq(a, img.ravel(), rcond=None)[0]
    return img - (a @ coef).reshape(img.shape)


def comparable_image(res: dict, compare: str = "auto") -> tuple[np.ndarray, str]:
    """The image (2D) or volume (3D) of result ``res`` (:func:`~..io.results.read_result`) that
    split-half validation compares, and what it is in words (see the module docstring).
    ``compare``: ``auto`` (a volume when the grid is a tomogram's: cubic along z and x with more
    than 8 slices), ``projection`` or ``volume``."""
    vol, name = _object_volume(res)
    if compare not in COMPARE:
        raise ValueError(f"compare must be one of {COMPARE}, got {compare!r}")
    tomo = vol.shape[0] == vol.shape[2] and vol.shape[0] > 8
    if compare == "volume" or (compare == "auto" and tomo):
        return vol, f"the {name} volume"
    img = vol.sum(axis=0)
    rows, cols = _scanned_box(res, img.shape)
    img = _flatten(img[rows, cols])
    what = "projected phase" if name == "phase" else "projected delta"
    return img, f"the {what} over the scanned area"


def _common_crop(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both cropped, about their centres, to the shape they share."""
    shape = np.minimum(a.shape, b.shape)

    def crop(x):
        start = (np.array(x.shape) - shape) // 2
        return x[tuple(slice(s, s + n) for s, n in zip(start, shape))]

    return crop(a), crop(b)


def frc_of_results(path_a: str | Path, path_b: str | Path, compare: str = "auto"
                   ) -> tuple[FRCResult, str]:
    """FRC (FSC) of two result files and what was compared; their pixel sizes must agree."""
    ra, rb = read_result(path_a), read_result(path_b)
    pa, pb = float(ra["extra"]["pixel_size_m"]), float(rb["extra"]["pixel_size_m"])
    if abs(pa - pb) > 1e-6 * max(pa, pb):
        raise DataFileError(f"{path_a} and {path_b} have different pixel sizes ({pa:.4g} and "
                            f"{pb:.4g} m): reconstructions of the same data are compared")
    (a, what), (b, _) = comparable_image(ra, compare), comparable_image(rb, compare)
    if a.ndim != b.ndim:
        raise DataFileError(f"{path_a} and {path_b}: one gives a volume, the other an image; "
                            "give --compare projection or volume")
    a, b = _common_crop(a, b)
    if min(a.shape) < 8:
        raise DataFileError(f"{path_a}, {path_b}: the common scanned area ({a.shape}) is too "
                            "small for a Fourier ring correlation (at least 8 px a side)")
    n = min(a.shape)  # the FRC compares the central square (cube)
    return fourier_ring_correlation(a, b, pa), f"{what} ({' x '.join([str(n)] * a.ndim)} px)"


def dip_note(result: FRCResult, key: str = "1/7") -> str | None:
    """A sentence when the curve falls below the ``key`` threshold and rises above it again for
    good: the first crossing (the resolution reported) then marks a band of spatial frequencies
    the halves disagree on -- in the near field typically the lowest, whose phase is weakly
    measured (its contrast transfer ``sin(pi lambda z f^2)`` vanishes as ``f -> 0``) -- and the
    halves agree above it, up to the frequency given. None when there is no such dip."""
    thr = np.full(len(result.frc), 1 / 7) if key == "1/7" else result.half_bit
    above = result.frc >= thr
    below = np.flatnonzero(~above[2:]) + 2     # as frc.py: rings 0 and 1 hold no structure
    if not len(below):
        return None
    first = int(below[0])
    again = np.flatnonzero(above[first:])
    if not len(again):
        return None
    rise = first + int(again[0])
    falls = np.flatnonzero(~above[rise:])
    end = rise + int(falls[0]) if len(falls) else len(above)
    if end - rise < 3:             # a blip, not a band of agreement
        return None
    per_um = result.frequency / result.pixel_size_m * 1e-6
    upto = result.pixel_size_m / result.frequency[end - 1] if end < len(above) else \
        2 * result.pixel_size_m
    return (f"the curve dips below {key} between {per_um[first]:.3g} and {per_um[rise]:.3g} /um "
            f"and rises above it again: the halves disagree on that band (in the near field, low "
            f"spatial frequencies of the phase are weakly measured) and agree above it, up to "
            f"{upto * 1e9:.4g} nm" + (" (Nyquist)" if end == len(above) else ""))
