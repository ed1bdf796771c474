"""Near-field (full-field) holography: multislice, one or several detector distances, tomography.

For a batch of view angles::

    psi_0 = illumination (plane wave of ones, or a given probe)                  (A, ny, nx)
    psi   = multislice through the rotated object, propagating by the slice spacing
    I_d   = |propagate(psi, distance_d)|^2 for each detector distance d           (A, D, ny, nx)

Distances are parameters (``params["distances"]``, metres) so they can be refined.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..backend import Backend
from ..geometry import is_tomography
from ..physics.multislice import multislice
from ..physics.propagation import Propagator, propagate
from .base import intensity, object_words
from .common import ObjectView, Optics


class HoloModel:
    """Near-field holography as a :class:`~.base.ForwardModel`: fields ``(A, D, 1, ny, nx)``.

    ``object_shape``: ``(nz, ny, nx)``; the detector frame is ``(ny, nx)`` (same sampling).
    ``angles_rad``: all view angles; a single angle of 0 means no rotation (plain holography).
    ``illumination``: complex ``(ny, nx)`` incident field or None for a unit plane wave; with a
    ``probe`` entry in ``params`` that one is used (and can be refined).
    """

    name = "holo"
    splits_spots = False       # the distances of one angle share one exit wave
    unshifted_frames = False   # near-field images are images
    whole_object_images = True   # full-field holograms

    def __init__(self, object_shape, optics: Optics, backend: Backend, *, angles_rad=(0.0,),
                 param: str = "delta_beta", illumination=None, checkpoint_slices: int = 0):
        self.object_shape = tuple(int(n) for n in object_shape)
        self.frame_shape = self.object_shape[1:]
        self.optics = optics
        self.backend = backend
        self.angles = np.asarray(angles_rad, dtype=float).ravel()
        self.view = ObjectView(self.object_shape, optics, backend, param,
                               tomo=is_tomography(self.angles))
        # "probe": the (refinable) illumination, present when the problem sets one
        self.unknowns = tuple(self.view.names) + ("probe", "distances")
        self.illumination = None if illumination is None else backend.to_complex(illumination)
        self.step = Propagator(self.frame_shape, optics.pixel_size_m, optics.slice_thickness_m,
                               optics.wavelength_m, backend, optics.method)
        self.checkpoint_slices = int(checkpoint_slices)

    def exit_waves(self, params: dict, angle_idx):
        """Exit waves ``(A, ny, nx)`` behind the last slice."""
        angles = self.angles[np.asarray(angle_idx)]
        # (nz, A, ny, nx): each slice step handles every angle of the batch at once
        trans = self.view.slice_transmissions(params, angles)
        if "probe" in params:
            psi = ops.reshape(params["probe"], (1,) + self.frame_shape)
        elif self.illumination is not None:
            psi = self.illumination[None]
        else:
            psi = self.backend.xp.ones((1,) + self.frame_shape, dtype=self.backend.complex_dtype)
        return multislice(psi, lambda s: trans[s], self.object_shape[0], self.step,
                          block=self.checkpoint_slices)

    def describe(self) -> str:
        return f"near-field holography, {object_words(self.view)}"

    def fields(self, params: dict, angle_idx, spot_idx):
        """Complex fields ``(A, D, 1, ny, nx)`` at the distances ``params["distances"][spot_idx]``
        (one coherent mode)."""
        exit_ = self.exit_waves(params, angle_idx)                     # (A, ny, nx)
        dist = ops.getitem(params["distances"], np.asarray(spot_idx))
        f = propagate(ops.reshape(exit_, (-1, 1) + self.frame_shape), dist,
                      pixel_m=self.optics.pixel_size_m, wavelength_m=self.optics.wavelength_m,
                      backend=self.backend, method=self.optics.method)   # (A, D, ny, nx)
        return ops.reshape(f, (len(np.asarray(angle_idx)), len(np.asarray(spot_idx)), 1)
                           + self.frame_shape)

    def predict(self, params: dict, angle_idx, spot_idx):
        """Intensities ``(A, D, ny, nx)`` at the distances ``params["distances"][spot_idx]``."""
        return intensity(self.fields(params, angle_idx, spot_idx))
