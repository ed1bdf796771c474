"""Rules about the experiment's geometry that files, configurations and models share.

One place for each: the accepted photon energies and pixel sizes (checked when a data file is read
AND when a configuration overrides them), and what makes a data set a tomography.
"""

from __future__ import annotations

import numpy as np

#: Accepted photon energies, eV: soft X-rays to hard X-rays; outside, the value is surely in the
#: wrong unit (keV, J).
ENERGY_RANGE_EV = (100.0, 200e3)
#: Accepted pixel sizes and slice thicknesses, m (1 pm .. 1 mm); outside: wrong unit (cm, um).
PIXEL_RANGE_M = (1e-12, 1e-3)
#: Detector regimes: far field (ptychography, CDI) and near field (holography).
MODALITIES = ("farfield", "nearfield")


def is_tomography(angles_rad) -> bool:
    """True when the object is seen at several angles, or at one angle other than 0: then the
    models rotate the volume about y to each view."""
    a = np.asarray(angles_rad, dtype=float).ravel()
    return a.size > 1 or (a.size == 1 and abs(float(a[0])) > 0)
