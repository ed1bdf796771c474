"""Adorym's missing object grid: when the grid a file leaves unstated matters, say so.

Adorym keeps the object grid (its ``obj_size``) in the reconstruction script, not in the data
file, and scan positions are window corners on that grid. Slicewise then takes the grid from
(0, 0) to the last window's far edge, or, where windows overhang the near edge (and for
tomography, where they start inside), a grid on which the scan is centred
(:attr:`Dataset.object_shape_yx`). That is right for a scan that starts at the grid's corner and
covers it, and for Adorym's symmetric overhanging rasters; it is a guess when

* the windows do not start at the grid origin (the first corner is not at 0, or corners are
  negative): the scan covered part of a larger object, or windows overhang its edge;
* the data are tomographic: the rotation axis passes through the centre of the object grid, so
  a wrong width puts the axis in the wrong place.

:func:`object_grid_note` returns one line saying so, naming ``model.object_shape``, or None.
"""

from __future__ import annotations

import numpy as np

__all__ = ["object_grid_note"]


def object_grid_note(ds) -> str | None:
    """A note for ``slicewise info`` and the run log when the unstated object grid matters."""
    if ds.stated_object_shape_yx is not None or ds.positions_px is None:
        return None
    if ds.meta.get("layout") == "cxi":  # CXI's translations imply no object grid to guess
        return None
    pos = np.asarray(ds.positions_px, float)
    lo = pos.min(axis=0)
    reasons = []
    if np.any(np.abs(lo) > 0.5):
        reasons.append(f"the scan windows start at (y, x) = ({lo[0]:.4g}, {lo[1]:.4g}) px, not at "
                       "the grid origin, so they may cover part of a larger object or overhang it")
    if ds.n_angles > 1:
        reasons.append("the rotation axis passes through the centre of the object grid, so its "
                       "width places the axis")
    if not reasons:
        return None
    ny, nx = ds.object_shape_yx
    return (f"the file does not state the object grid (Adorym keeps obj_size outside the file); "
            f"using {ny} x {nx} px, the scanned area (centred on the object where windows "
            "overhang), but "
            + "; and ".join(reasons) + ". If the original grid differed, set model.object_shape = "
            "[nz, ny, nx] in the configuration")
