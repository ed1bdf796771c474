"""Resolution without a ground truth: Fourier ring (2D) / shell (3D) correlation of two
independent reconstructions, e.g. from the odd and the even frames of one scan.

``FRC(r) = Re sum_ring(F_A conj F_B) / sqrt(sum_ring |F_A|^2 sum_ring |F_B|^2)`` on the common,
registered, Hann-windowed region. Thresholds: the fixed 1/7 criterion for half-data maps and the
half-bit curve of van Heel & Schatz (2005), ``T(r) = (0.2071 + 1.9102 / sqrt(n_r)) /
(1.2071 + 0.9102 / sqrt(n_r))`` with ``n_r`` the number of Fourier pixels in ring ``r``. The
resolution is ``pixel / f`` at the first spatial frequency ``f`` (cycles/pixel) where the curve
falls below the threshold (linear interpolation between rings); a curve that stays above it to
Nyquist gives ``2 pixel`` and ``reached = False``.

Inputs are real images ``(ny, nx)`` or volumes ``(nz, ny, nx)`` on the same grid, for example the
projected phase of two half-data objects, or two delta volumes. Their relative shift is removed
first (phase correlation with a sub-pixel parabola): two halves of a scan with refined positions
may be offset by a fraction of a pixel, which would otherwise lower the high-frequency rings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFileError
from ..io.atomic import atomic_write
from ..io.hdf5 import h5py_module, open_h5

__all__ = ["FRCResult", "fourier_ring_correlation", "half_bit_threshold", "register_shift",
           "write_frc", "read_frc", "ONE_SEVENTH"]

#: The fixed threshold for two half-data reconstructions.
ONE_SEVENTH = 1.0 / 7.0


@dataclass
class FRCResult:
    """One FRC/FSC curve and the resolutions it gives.

    ``frequency``: ring centres, cycles per pixel ``(n_rings,)`` (0 .. 0.5); ``frc``: the
    correlation per ring; ``n_pixels``: Fourier pixels per ring; ``half_bit``: the half-bit
    threshold per ring; ``resolution_m``: ``{"1/7": m, "half-bit": m}`` (full-period resolution);
    ``reached``: whether each threshold was crossed before Nyquist; ``shift_px``: the shift of B
    onto A that was removed; ``pixel_size_m``: the pixel the frequencies refer to.
    """

    frequency: np.ndarray
    frc: np.ndarray
    n_pixels: np.ndarray
    half_bit: np.ndarray
    resolution_m: dict
    reached: dict
    shift_px: tuple
    pixel_size_m: float

    def summary(self) -> str:
        """One line: the resolution by both criteria, in nm."""
        parts = []
        for key in ("1/7", "half-bit"):
            nm = self.resolution_m[key] * 1e9
            parts.append(f"{key}: {nm:.4g} nm" + ("" if self.reached[key] else " (Nyquist; not reached)"))
        return "FRC resolution " + ", ".join(parts)


def half_bit_threshold(n_pixels: np.ndarray) -> np.ndarray:
    """The half-bit information curve for rings of ``n_pixels`` Fourier pixels."""
    root = np.sqrt(np.maximum(np.asarray(n_pixels, float), 1.0))
    return (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)


def _hann(shape: tuple) -> np.ndarray:
    w = np.ones(shape)
    for axis, n in enumerate(shape):
        h = np.hanning(n) if n > 2 else np.ones(n)
        w = w * h.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    return w


def register_shift(a: np.ndarray, b: np.ndarray) -> tuple:
    """Shift (per axis, px) that moves ``b`` onto ``a``: the peak of their phase correlation,
    refined by a parabola through its neighbours on each axis."""
    fa, fb = np.fft.fftn(a - a.mean()), np.fft.fftn(b - b.mean())
    cross = fa * np.conj(fb)
    corr = np.real(np.fft.ifftn(cross / np.maximum(np.abs(cross), 1e-30)))
    peak = np.unravel_index(int(np.argmax(corr)), corr.shape)
    shift = []
    for axis, (p, n) in enumerate(zip(peak, corr.shape)):
        idx = list(peak)
        vals = []
        for d in (-1, 0, 1):
            idx[axis] = (p + d) % n
            vals.append(corr[tuple(idx)])
        denom = vals[0] - 2 * vals[1] + vals[2]
        frac = 0.5 * (vals[0] - vals[2]) / denom if denom < 0 else 0.0
        s = p + float(np.clip(frac, -0.5, 0.5))
        shift.append(s - n if s > n / 2 else s)
    return tuple(shift)


def _fourier_shift(b: np.ndarray, shift: tuple) -> np.ndarray:
    fb = np.fft.fftn(b)
    for axis, s in enumerate(shift):
        f = np.fft.fftfreq(b.shape[axis]).reshape([-1 if i == axis else 1 for i in range(b.ndim)])
        fb = fb * np.exp(-2j * np.pi * f * s)
    return np.real(np.fft.ifftn(fb))


def _crossing(freq: np.ndarray, curve: np.ndarray, threshold: np.ndarray) -> float | None:
    """First frequency (interpolated) where ``curve`` falls below ``threshold``, after the two
    lowest rings (ring 0 holds the removed mean, ring 1 mostly the window's own spectrum: after
    the Hann window either can be anything, e.g. -0.2, which would put the crossing at ~0 and
    the resolution at ~infinity); None if it never does."""
    below = np.flatnonzero(curve[2:] < threshold[2:]) + 2
    if not len(below):
        return None
    i = int(below[0])
    d0, d1 = curve[i - 1] - threshold[i - 1], curve[i] - threshold[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(freq[i - 1] + t * (freq[i] - freq[i - 1]))


def fourier_ring_correlation(a, b, pixel_size_m: float, *, register: bool = True,
                             window: bool = True) -> FRCResult:
    """FRC (2D) or FSC (3D) of ``a`` and ``b`` (same shape, real), see the module docstring.

    Non-square grids are cropped to their central square (cube), so that rings are circles in
    cycles per pixel."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"FRC: the two images differ in shape: {a.shape} and {b.shape}")
    if a.ndim not in (2, 3) or min(a.shape) < 8:
        raise ValueError(f"FRC needs two 2D images or 3D volumes of at least 8 px a side; got {a.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("FRC: an input holds NaN or infinite values")
    n = min(a.shape)
    sl = tuple(slice((s - n) // 2, (s - n) // 2 + n) for s in a.shape)
    a, b = a[sl], b[sl]
    shift = tuple(0.0 for _ in a.shape)
    if register:
        shift = register_shift(a, b)
        b = _fourier_shift(b, shift)
    if window:
        w = _hann(a.shape)
        a, b = (a - a.mean()) * w, (b - b.mean()) * w
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    grids = np.meshgrid(*[np.fft.fftfreq(n) for _ in a.shape], indexing="ij")
    radius = np.sqrt(sum(g ** 2 for g in grids))
    ring = np.rint(radius * n).astype(int)          # rings one Fourier pixel wide
    n_rings = n // 2 + 1
    keep = ring < n_rings
    ring, cross = ring[keep], (fa * np.conj(fb)).real[keep]
    pa, pb = (np.abs(fa) ** 2)[keep], (np.abs(fb) ** 2)[keep]
    num = np.bincount(ring, cross, n_rings)
    den = np.sqrt(np.bincount(ring, pa, n_rings) * np.bincount(ring, pb, n_rings))
    counts = np.bincount(ring, minlength=n_rings).astype(float)
    frc = np.where(den > 0, num / np.maximum(den, 1e-300), 0.0)
    freq = np.arange(n_rings) / n
    half_bit = half_bit_threshold(counts)
    resolution, reached = {}, {}
    for key, thr in (("1/7", np.full(n_rings, ONE_SEVENTH)), ("half-bit", half_bit)):
        f = _crossing(freq, frc, thr)
        reached[key] = f is not None
        resolution[key] = pixel_size_m / f if f else 2.0 * pixel_size_m
    return FRCResult(freq, frc, counts, half_bit, resolution, reached, shift, float(pixel_size_m))


def write_frc(path: str | Path, result: FRCResult, *, sources: tuple = ()) -> None:
    """The curve as an HDF5 table (atomically): ``/frc/{frequency_per_px, frc, n_pixels,
    half_bit}``, attributes ``pixel_size_m``, ``resolution_1_7_m``, ``resolution_half_bit_m``,
    ``reached_1_7``, ``reached_half_bit``, ``shift_px``, ``sources`` (the two files compared)."""
    def write(tmp):
        with h5py_module().File(tmp, "w") as f:
            f.attrs["format"] = "slicewise-frc"
            g = f.create_group("frc")
            g["frequency_per_px"] = result.frequency
            g["frc"] = result.frc
            g["n_pixels"] = result.n_pixels
            g["half_bit"] = result.half_bit
            g.attrs["pixel_size_m"] = result.pixel_size_m
            g.attrs["resolution_1_7_m"] = result.resolution_m["1/7"]
            g.attrs["resolution_half_bit_m"] = result.resolution_m["half-bit"]
            g.attrs["reached_1_7"] = result.reached["1/7"]
            g.attrs["reached_half_bit"] = result.reached["half-bit"]
            g.attrs["shift_px"] = np.asarray(result.shift_px, float)
            g.attrs["sources"] = [str(s) for s in sources]

    atomic_write(Path(path), write)


def read_frc(path: str | Path) -> FRCResult:
    """Read :func:`write_frc`'s table back."""
    try:
        with open_h5(path) as f:
            if f.attrs.get("format") != "slicewise-frc" or "frc" not in f:
                raise DataFileError(f"{path}: not a Slicewise FRC table (no /frc group); make one "
                                    "with `slicewise frc A B` or `slicewise reconstruct --halves`")
            g = f["frc"]
            return FRCResult(g["frequency_per_px"][()], g["frc"][()], g["n_pixels"][()],
                             g["half_bit"][()],
                             {"1/7": float(g.attrs["resolution_1_7_m"]),
                              "half-bit": float(g.attrs["resolution_half_bit_m"])},
                             {"1/7": bool(g.attrs["reached_1_7"]),
                              "half-bit": bool(g.attrs["reached_half_bit"])},
                             tuple(float(s) for s in g.attrs["shift_px"]),
                             float(g.attrs["pixel_size_m"]))
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read the FRC table ({exc})") from None
