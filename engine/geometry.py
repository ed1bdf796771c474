"""The experiment's geometry, and the rules about it that files, configurations and models share.

One place for each: the accepted photon energies and pixel sizes (checked when a data file is read
AND when a configuration overrides them), what makes a data set a tomography, and the
:class:`Geometry` value that readers, :class:`~.io.datafile.Dataset` and the writers pass around.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .physics.constants import wavelength_m

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


#: The fields of :class:`Geometry`, for code that splits keyword arguments.
GEOMETRY_FIELDS = ("modality", "energy_ev", "pixel_size_m", "angles_rad", "positions_px",
                   "distances_m", "slice_thickness_m", "object_shape_yx")


@dataclass(frozen=True)
class Geometry:
    """How the frames were taken, in SI units: one value instead of long parameter lists.

    modality: ``"farfield"`` (ptychography, CDI) or ``"nearfield"`` (holography).
    energy_ev: photon energy, eV.  pixel_size_m: object / detector-plane pixel, m.
    angles_rad: ``(n_angles,)`` rotation angles about y, or None for one view at 0.
    positions_px: ``(n_spots, 2)`` top-left ``(y, x)`` of each probe window, object pixels, or None.
    distances_m: ``(n_distances,)`` sample-detector distances (near field), or None.
    slice_thickness_m: multislice slice thickness, m; None = the pixel size (cubic voxels).
    object_shape_yx: the object grid ``(ny, nx)``, or None (inferred from the scan).

    The values are taken as given; :class:`~.io.datafile.Dataset` checks them against the frames
    (with the file's own names in its messages) and keeps the checked copy as ``dataset.geometry``.
    """

    modality: str
    energy_ev: float
    pixel_size_m: float
    angles_rad: Any = None
    positions_px: Any = None
    distances_m: Any = None
    slice_thickness_m: float | None = None
    object_shape_yx: tuple | None = None

    def replace(self, **changes) -> "Geometry":
        """A copy with some fields changed (e.g. the effective pixel of a cone beam)."""
        return dataclasses.replace(self, **changes)

    @property
    def wavelength_m(self) -> float:
        return wavelength_m(self.energy_ev)

    @property
    def tomography(self) -> bool:
        return is_tomography(0.0 if self.angles_rad is None else self.angles_rad)
