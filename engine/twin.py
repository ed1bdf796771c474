"""Simulated twin of a synchrotron near-field ptychography scan, written as a CXI file.

The real check of Slicewise is a measured near-field ptychography scan of a Siemens star (12.66 keV,
55 um detector pixels at 1.12 m, focus 3.65 mm upstream of the sample, 200 frames of 100x100 int32
counts up to ~29,000, a raster-like scan over ~20 um, 5 dead pixels). This module makes a data set
with the same geometry and statistics, so the reading, the cone-beam conversion and the
reconstruction can be tested where the truth is known:

* a Siemens star with a phase of ``phase_rad`` and a weak absorption in the spokes;
* a strongly structured probe (random smooth phase, stripes, a soft-edged field, free propagation
  turning them into intensity fringes), never given to the reconstruction;
* the wave simulated on a window much larger than the frame (no periodic wrap-around reaches the
  frame: unlike the model, whose window is only slightly padded), Poisson counts, int32;
* translations written the way CXI means them (sample positions in metres, lab axes, spot = -t),
  with a stage offset, jitter, a CXI bit-field mask (nonzero = bad) and ``data_1`` soft links.

All lengths inside are in the effective (plane-wave) geometry of the Fresnel scaling theorem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .backend import get_backend
from .io.cxi import write_cxi
from .phantoms import siemens_star
from .physics.constants import wavelength_m
from .physics.propagation import Propagator


@dataclass(frozen=True)
class ConeBeamGeometry:
    """Point-source (cone-beam) geometry: focus -> sample ``z1``, sample -> detector ``z2``."""

    energy_ev: float = 12660.0
    detector_pixel_m: float = 55e-6
    detector_distance_m: float = 1.12       # z2
    source_to_sample_m: float = 3.65e-3     # z1

    @property
    def magnification(self) -> float:
        return (self.source_to_sample_m + self.detector_distance_m) / self.source_to_sample_m

    @property
    def pixel_m(self) -> float:
        """Effective pixel in the sample plane."""
        return self.detector_pixel_m / self.magnification

    @property
    def distance_m(self) -> float:
        """Effective propagation distance z2 / M."""
        return self.detector_distance_m / self.magnification

    @property
    def wavelength_m(self) -> float:
        return wavelength_m(self.energy_ev)


def structured_probe(shape, rng: np.random.Generator, pixel_m: float, distance_m: float,
                     wl_m: float, lit_px: float | None = None) -> np.ndarray:
    """A KB-focus-like near-field probe ``(wy, wx)`` complex128 (peak amplitude ~1).

    ``lit_px``: the illuminated field is a disc of this many pixels (area), dark outside, as a
    focused beam's cone seen on the detector; None: a soft-edged field over most of the window."""
    wy, wx = shape
    y = (np.arange(wy) - wy / 2)[:, None] / (wy / 2)
    x = (np.arange(wx) - wx / 2)[None, :] / (wx / 2)
    envelope = np.exp(-((y / 0.8) ** 6 + (x / 0.85) ** 6))           # soft-edged illuminated field
    if lit_px is not None:
        r = np.hypot(y * wy / 2, x * wx / 2)
        envelope = 0.5 * (1 - np.tanh((r - np.sqrt(lit_px / np.pi)) / 1.5))
    phase = gaussian_filter(rng.standard_normal(shape), 4.0)
    phase *= 3.0 / np.abs(phase).max()                                # +-3 rad wavefront errors
    phase += 0.8 * np.sin(2 * np.pi * 7.3 * y + 0.5) + 0.6 * np.sin(2 * np.pi * 5.1 * x)  # mirror stripes
    amp = envelope * (1 + 0.3 * gaussian_filter(rng.standard_normal(shape), 2.0) /
                      max(1e-9, np.abs(gaussian_filter(rng.standard_normal(shape), 2.0)).max()))
    be = get_backend("numpy", "double")
    p = Propagator(shape, pixel_m, 3 * distance_m, wl_m, be).fwd(amp * np.exp(1j * phase))
    return p / np.abs(p).max()


def raster_positions(n_frames: int, scan_px: float, rng: np.random.Generator) -> np.ndarray:
    """Raster-like ``(n, 2)`` (row, col) positions over ``scan_px``, with 2 % jitter."""
    n_rows = max(1, int(round(math.sqrt(n_frames / 2))))
    n_cols = int(math.ceil(n_frames / n_rows))
    rr, cc = np.meshgrid(np.linspace(0, scan_px, n_rows), np.linspace(0, scan_px, n_cols),
                         indexing="ij")
    pos = np.stack([rr.ravel(), cc.ravel()], 1)[:n_frames]
    return pos + rng.uniform(-0.02, 0.02, pos.shape) * scan_px


def simulate_twin(path, *, n_frames: int = 200, frame: int = 100, scan_m: float = 20e-6,
                  max_counts: float = 29000.0, n_dead: int = 5, phase_rad: float = 0.9,
                  absorption: float = 0.08, n_spokes: int = 36, seed: int = 0,
                  geometry: ConeBeamGeometry = ConeBeamGeometry(), margin_px: int = 40,
                  position_error_px: float = 0.0, lit_fraction: float | None = None) -> dict:
    """Write the twin as a CXI file at ``path``; return the truth.

    ``lit_fraction``: the illumination is a disc over this share of the detector with a dark rim
    (a focused beam; real scans light 20-50 %), instead of a soft field over most of it.

    Returns a dict: ``transmission`` complex ``(ny, nx)`` (object pixels, frame windows at
    ``positions``), ``probe`` complex (the sample-plane probe on the simulation window, frame at
    offset ``margin_px``), ``positions`` ``(n, 2)`` (row, col) top-left corners of the frames,
    ``dead`` (the bad pixels), ``geometry``, ``file_positions`` (what the file says: the true
    positions plus gaussian errors of ``position_error_px`` rms per axis, as encoders give).
    """
    rng = np.random.default_rng(seed)
    g = geometry
    px, z, wl = g.pixel_m, g.distance_m, g.wavelength_m
    positions = raster_positions(n_frames, scan_m / px, rng)
    positions += margin_px - positions.min(axis=0)
    ny = nx = int(math.ceil(positions.max())) + frame + margin_px + 1
    star = siemens_star((ny, nx), n_spokes=n_spokes, radius_px=0.47 * min(ny, nx))
    trans = np.exp((-1j * phase_rad - absorption) * star.astype(np.float64))
    win = frame + 2 * margin_px
    probe = structured_probe((win, win), rng, px, z, wl,
                             None if lit_fraction is None else lit_fraction * frame * frame)
    be = get_backend("numpy", "double")
    prop = Propagator((win, win), px, z, wl, be)
    fy = np.fft.fftfreq(win)[:, None]
    fx = np.fft.fftfreq(win)[None, :]
    frames = np.empty((n_frames, frame, frame))
    for j, (r, c) in enumerate(positions):
        # the probe and the detector stay put; the sample moves (by a sub-pixel Fourier shift of
        # the large window: its wrapped edges never reach the frame)
        r0, c0 = int(round(r)) - margin_px, int(round(c)) - margin_px
        sy, sx = r - round(r), c - round(c)
        window = np.fft.ifft2(np.fft.fft2(trans[r0:r0 + win, c0:c0 + win])
                              * np.exp(2j * np.pi * (fy * sy + fx * sx)))
        psi = prop.fwd(probe * window)
        frames[j] = np.abs(psi[margin_px:margin_px + frame, margin_px:margin_px + frame]) ** 2
    frames *= max_counts / frames.max() * 0.97  # the brightest counts reach ~max_counts with noise
    counts = rng.poisson(frames).astype(np.int32)
    dead = rng.choice(frame * frame, size=n_dead, replace=False)
    mask = np.zeros((frame, frame), np.uint32)
    mask.flat[dead] = 1                      # CXI bit 0: invalid pixel
    counts[:, mask.astype(bool)] = 0         # dead pixels read nothing
    # CXI translations: sample positions (m), lab x/y; the spot moves by -t over the sample, rows
    # run along -y and columns along -x (the default CXI detector axes), plus a stage offset
    written = positions + rng.normal(0, 1, positions.shape) * position_error_px
    t = np.zeros((n_frames, 3))
    t[:, 0] = written[:, 1] * px + 1.234e-3
    t[:, 1] = written[:, 0] * px - 0.5e-3
    t[:, 2] = 0.01

    write_cxi(path, counts, energy_ev=g.energy_ev, distance_m=g.detector_distance_m,
              pixel_size_m=g.detector_pixel_m, translations_m=t, mask=mask)
    return {"transmission": trans, "probe": probe, "positions": positions, "dead": mask > 0,
            "file_positions": written,
            "geometry": g, "star": star}


def phase_correlation(obj, truth, model_positions, true_positions, frame: int, inset: int = 8) -> float:
    """Pearson correlation of the phase of a reconstruction ``obj`` (complex ``(ny, nx)``) with
    the twin's ``truth`` transmission over the scanned area (``inset`` px inside the outermost
    frames), the two grids aligned by the mean scan position. A constant phase offset (the
    usual ambiguity) does not count."""
    mp, tp = np.asarray(model_positions, float), np.asarray(true_positions, float)
    off = np.round(tp.mean(0) - mp.mean(0)).astype(int)
    r0, c0 = (mp.min(0) + inset).astype(int)
    r1, c1 = (mp.max(0) + frame - inset).astype(int)
    a = np.angle(obj[r0:r1, c0:c1])
    b = np.angle(truth[r0 + off[0]:r1 + off[0], c0 + off[1]:c1 + off[1]])
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def position_error_px(positions, initial_positions, true_positions) -> float:
    """RMS distance (px) of ``positions`` from the truth, the truth placed on the model's grid by
    the mean of ``initial_positions`` (a common shift is not an error)."""
    p0 = np.asarray(initial_positions, float)
    t = np.asarray(true_positions, float)
    t = t - t.mean(0) + p0.mean(0)
    return float(np.sqrt(((np.asarray(positions, float) - t) ** 2).sum(1).mean()))
