"""A far-field probe guessed from the data when nothing gives it.

The mean diffraction pattern fixes the probe's Fourier amplitude (a weak object leaves it close to
``|FT(probe)|^2``) but not its Fourier phase, hence not its size in real space: the flat-phase
probe it implies is the *focus* of the beam, while the sample usually sits out of focus, where the
beam is wider. A blind reconstruction started from a probe far smaller than the true one plateaus
for a long time (a 64-frame far-field CXI scan of a Siemens star with a structured 25 px probe:
correlation 0.1-0.3 after 60 L-BFGS iterations, 0.98 after 200), while one started from a probe of
about the right size converges (0.96-0.98 after 60).

The size comes from the detector window: far-field ptychography needs the probe to fill at most
half the window in each direction (oversampling >= 2, so that the frames sample its Fourier
transform), and experiments choose windows close to that bound. So the focus is propagated
(Fresnel, exact in the far field) until its rms radius reaches that of a disc spanning
:data:`PROBE_DIAMETER_FRACTION` of the window -- never shrunk: a focus already that wide (a tight
window) is kept as it is.

Conventions: probes are ``(py, px)`` complex, centred at ``((py - 1) / 2, (px - 1) / 2)``;
frames are model-convention (unshifted) intensities.
"""

from __future__ import annotations

import math

import numpy as np

from ...io.datafile import spread_indices

__all__ = ["MEAN_PATTERN_FRAMES", "PROBE_DIAMETER_FRACTION", "WEAK_CONTRAST",
           "probe_from_mean_pattern", "rms_radius", "defocus", "spread_to_window", "frame_contrast"]

#: Frames averaged for the data-derived probe (evenly spread over the scan).
MEAN_PATTERN_FRAMES = 256

#: The guessed probe's diameter as a fraction of the window (oversampling ~2.2). Measured on the
#: CXI example above (true probe: 40 % of the window), three seeds, 60 iterations: 0.35 -> 0.84-0.90,
#: 0.4 -> 0.93-0.95, 0.45 -> 0.96-0.98, 0.5 -> 0.92-0.95: a guess somewhat too wide is safer than
#: one too narrow.
PROBE_DIAMETER_FRACTION = 0.45


#: Below this :func:`frame_contrast` the object barely shows in the frames, and a probe refined
#: from a guess limits the result: its Fourier phase shows only through the object, so its errors
#: outweigh the object's signal (1 nm SiO2 cones at 5 keV, contrast 0.0007-0.0008: 0.80-0.86 after
#: 15 epochs against 0.95-1.0 with the true probe; objects of 0.75-1 rad: 0.17-0.20, 0.96-1.0).
WEAK_CONTRAST = 0.01


def frame_contrast(ds, n_angles: int = 4, n_spots: int = 16) -> float:
    """Rms deviation of the frames' amplitudes from the amplitude of their mean, relative to it,
    on up to ``n_angles`` x ``n_spots`` frames: how much the object changes the frames."""
    f = np.asarray(ds.frames(np.arange(min(ds.n_angles, n_angles)),
                             np.arange(min(ds.n_spots, n_spots))), np.float64)
    a = np.sqrt(np.maximum(f, 0))
    mean = np.sqrt(np.maximum(f, 0).mean(axis=(0, 1)))
    scale = math.sqrt(float((mean ** 2).mean()))
    return float(np.sqrt(((a - mean) ** 2).mean()) / scale) if scale > 0 else 0.0


def probe_from_mean_pattern(ds) -> np.ndarray:
    """The focus ``(py, px)`` that the mean diffraction pattern implies: its square root with a
    flat phase, transformed back and centred in the window -- the data's size and power,
    whatever the optics."""
    spots = spread_indices(ds.n_spots, MEAN_PATTERN_FRAMES)
    mean = np.asarray(ds.frames([0], spots), np.float64)[0].mean(axis=0)
    amp = np.sqrt(np.maximum(mean, 0))
    fy, fx = np.fft.fftfreq(amp.shape[0]), np.fft.fftfreq(amp.shape[1])
    # half a pixel puts an even window's centre at (p - 1) / 2: the centre of the window the
    # models cut (windows symmetric about the rotation axis) and of Adorym's probes
    ramp = np.exp(1j * np.pi * (fy[:, None] * (1 - amp.shape[0] % 2)
                                + fx[None, :] * (1 - amp.shape[1] % 2)))
    return np.fft.fftshift(np.fft.ifft2(amp * ramp, norm="ortho"))


def rms_radius(probe: np.ndarray) -> float:
    """Rms radius of ``|probe|^2`` about its centroid, px."""
    w = np.abs(probe) ** 2
    yy, xx = np.mgrid[:probe.shape[0], :probe.shape[1]].astype(float)
    s = w.sum()
    cy, cx = (w * yy).sum() / s, (w * xx).sum() / s
    return float(math.sqrt((w * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum() / s))


def defocus(probe: np.ndarray, alpha: float) -> np.ndarray:
    """``probe`` propagated by the Fresnel kernel ``exp(-i alpha k^2)``, ``k`` in cycles/px
    (``alpha = pi lambda z / pixel^2`` for a distance ``z`` downstream); the centre stays put."""
    ky, kx = np.fft.fftfreq(probe.shape[0]), np.fft.fftfreq(probe.shape[1])
    f = np.fft.fft2(np.fft.ifftshift(probe))
    return np.fft.fftshift(np.fft.ifft2(f * np.exp(-1j * alpha * (ky[:, None] ** 2 + kx[None] ** 2))))


def spread_to_window(focus: np.ndarray, fraction: float = PROBE_DIAMETER_FRACTION
                     ) -> tuple[np.ndarray, float]:
    """``(probe, alpha)``: ``focus`` propagated (``alpha`` as in :func:`defocus`, >= 0) until its
    rms radius is that of a uniform disc of diameter ``fraction`` of the smaller window side;
    ``alpha = 0`` (``focus`` itself) when it is already that wide."""
    target = fraction * min(focus.shape) / (2 * math.sqrt(2))   # disc: r_rms = D / (2 sqrt 2)
    if rms_radius(focus) >= target:
        return focus, 0.0
    lo, hi = 0.0, 1.0
    while rms_radius(defocus(focus, hi)) < target:
        lo, hi = hi, hi * 4
        if hi > 1e7:  # a pattern without extent (a single bright pixel): keep the focus
            return focus, 0.0
    for _ in range(40):  # the radius grows monotonically with alpha here: bisect
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rms_radius(defocus(focus, mid)) < target else (lo, mid)
    return defocus(focus, hi), hi
