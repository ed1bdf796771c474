"""What every forward model offers the solver: the :class:`ForwardModel` protocol.

A forward model maps the unknowns (a dict of arrays/Tensors keyed by the parameter names of
docs/ARCHITECTURE.md) to complex detector fields for a minibatch of view angles and "spots". A spot
is whatever the data set's second axis counts: a scan position (far-field ptychography), a
propagation distance (near-field holography), or a (distance, scan position) pair (near-field
ptychography: ``n_spots = n_distances x n_tiles``, distance-major).

Every model returns fields of ONE shape, ``(A, S, m, fy, fx)``: angles, spots, incoherent modes
(``m = 1`` for a coherent model), detector rows and columns. The modelled intensity is
``sum over m of |field|^2`` (:func:`intensity`), so the loss, the solver and the display need no
knowledge of which model produced the fields.

To add a model: implement the attributes and methods below (any class; no base class needed),
then register how to build it from a configuration in ``engine/recon/setup/model_setup.py``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .. import ops
from .common import ObjectView, Optics

#: Axis of the incoherent modes in the fields every model returns.
MODE_AXIS = 2


@runtime_checkable
class ForwardModel(Protocol):
    """Parameters -> complex detector fields ``(A, S, m, fy, fx)``.

    Attributes
    ----------
    name: short identifier, the value of ``model.kind`` in the configuration (``"ptycho"``).
    optics: energy, pixel size, slice spacing and propagation method (SI units).
    object_shape: ``(nz, ny, nx)`` voxels of the object unknowns.
    frame_shape: ``(fy, fx)`` detector pixels.
    view: how the object parameters become slice transmissions (``view.param``, ``view.tomo``).
    unknowns: names of the parameters :meth:`fields` reads (e.g. ``("delta", "beta", "probe",
        "positions")``); which of them are refined is the solver's business.
    splits_spots: True when the spots of one angle are independent views (scan positions) and may
        be split into minibatches (and over MPI ranks); False when they share one exit wave
        (distances of holography), so a minibatch always holds all of them.
    unshifted_frames: True when the detector frames have the zero spatial frequency at ``[0, 0]``
        (far field); displays ``fftshift`` them.
    whole_object_images: True when each view's frames are near-field images of the whole object
        (one per distance), from which closed-form phase retrieval (Paganin, CTF) gives a starting
        object.
    """

    name: str
    optics: Optics
    object_shape: tuple
    frame_shape: tuple
    view: ObjectView
    unknowns: tuple
    splits_spots: bool
    unshifted_frames: bool
    whole_object_images: bool

    def fields(self, params: dict, angle_idx, spot_idx):
        """Complex detector fields ``(len(angle_idx), len(spot_idx), m, fy, fx)`` (recorded on the
        AD tape when ``params`` hold Tensors)."""

    def describe(self) -> str:
        """One line for logs and the GUI, e.g. ``far-field ptychography, multislice (8 slices)``."""


def intensity(fields):
    """Modelled intensities ``(A, S, fy, fx)``: ``sum over modes |field|^2`` of model fields."""
    return ops.sum(ops.abs2(fields), axis=MODE_AXIS)


def object_words(view: ObjectView) -> str:
    """``"tomography, multislice (8 slices)"`` and the like, for :meth:`ForwardModel.describe`."""
    nz = view.shape[0]
    parts = ["tomography"] if view.tomo else []
    parts.append(f"multislice ({nz} slices)" if nz > 1 else "single slice")
    parts.append("delta/beta object" if view.param == "delta_beta" else "complex object")
    return ", ".join(parts)
