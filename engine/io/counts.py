"""Whether floating-point frames hold whole photon counts.

Adorym stores magnitudes as float32 (``sqrt`` of the counts, times the unnormalised FFT's
``sqrt(Ny Nx)``), and many pipelines save counts as floats. Back in the model's intensity units
(photons per pixel) such frames are whole numbers up to single-precision round-off, and their noise
is Poisson -- which the Poisson likelihood uses and the amplitude loss does not: in a weak far-field
pattern most pixels hold 0 or 1 photon, where the amplitude loss is biased towards a dimmer model.
The run log and ``slicewise info`` say so; the default stays the amplitude loss (see
:func:`..recon.setup.measured.decide_loss`).
"""

from __future__ import annotations

import numpy as np

from .datafile import spread_indices

__all__ = ["frames_are_counts"]

#: Frames sampled (angles x spots spread over the data set).
SAMPLE_ANGLES, SAMPLE_SPOTS = 3, 6
#: Values tested: above half a photon and below 2**16, where single precision still resolves a
#: fraction (larger floats are whole numbers whatever they hold).
LOW, HIGH = 0.5, 2.0 ** 16
#: At least this many values in that range, and this share of them within the tolerance of a
#: whole number (random fractions fall within it about 4-13 % of the time).
MIN_VALUES, MIN_SHARE = 200, 0.98
#: ... spread over at least this many different counts.
MIN_LEVELS = 8


def frames_are_counts(ds) -> tuple[bool, str]:
    """``(counts, why)``: whether the data set's model-unit intensities are whole photon counts,
    from a sample of frames; ``why`` is a few words for the log."""
    a = spread_indices(ds.n_angles, SAMPLE_ANGLES)
    s = spread_indices(ds.n_spots, SAMPLE_SPOTS)
    v = np.asarray(ds.frames(a, s), np.float64).ravel()
    v = v[(v >= LOW) & (v < HIGH)]
    if v.size < MIN_VALUES:
        return False, f"only {v.size} sampled pixels hold 0.5 to 65536 photons"
    levels = np.unique(np.round(v))
    if levels.size < MIN_LEVELS:
        # e.g. flat-fielded holograms: every value near 1 is "a whole number"
        return False, f"the sampled intensities round to only {levels.size} different whole numbers"
    # float32 storage (and a magnitude squared back) leaves a relative error of a few 1e-7
    tol = np.maximum(0.02, 1e-6 * v)
    share = float(np.mean(np.abs(v - np.round(v)) <= tol))
    if share >= MIN_SHARE:
        return True, f"{100 * share:.1f} % of sampled intensities are whole photon counts"
    return False, f"{100 * share:.0f} % of sampled intensities are whole numbers"
