"""Pieces shared by the forward models: object parametrisation and rotation to view angles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ops
from ..backend import Backend
from ..physics.constants import wavelength_m
from ..physics.optics import transmission_of_index
from ..physics.rotation import Rotation

OBJECT_PARAMS = ("delta_beta", "complex")


@dataclass(frozen=True)
class Optics:
    """Beam and sampling: energy (eV), pixel size (m), slice spacing (m), propagation method."""

    energy_ev: float
    pixel_size_m: float
    slice_thickness_m: float
    method: str = "fresnel"

    @property
    def wavelength_m(self) -> float:
        return wavelength_m(self.energy_ev)

    @property
    def k(self) -> float:
        return 2 * np.pi / self.wavelength_m


class ObjectView:
    """Turns the object parameters into per-view slice transmissions.

    ``param="delta_beta"``: parameters ``delta`` and ``beta``, real ``(nz, ny, nx)``;
    ``param="complex"``: parameter ``object``, complex transmission ``(nz, ny, nx)``.
    With ``tomo=True`` the object is rotated about y to each requested angle first.
    """

    def __init__(self, shape, optics: Optics, backend: Backend, param: str = "delta_beta",
                 tomo: bool = False):
        if param not in OBJECT_PARAMS:
            raise ValueError(f"object parametrisation must be one of {OBJECT_PARAMS}, got {param!r}")
        self.shape = tuple(int(n) for n in shape)
        self.optics = optics
        self.backend = backend
        self.param = param
        self.tomo = tomo

    @property
    def names(self) -> tuple:
        """Parameter names of the object in this parametrisation."""
        return ("delta", "beta") if self.param == "delta_beta" else ("object",)

    def volumes(self, params: dict, angles_rad) -> list:
        """One entry per angle: the (rotated) object in its parametrisation.

        ``delta_beta`` -> complex ``delta + i beta`` (rotated together, one pass);
        ``complex`` -> the complex transmission.
        """
        if self.param == "delta_beta":
            vol = ops.add(params["delta"], ops.mul(params["beta"], 1j))
        else:
            vol = params["object"]
        if not self.tomo:
            return [vol] * len(angles_rad)
        rotated = Rotation(self.shape, angles_rad, self.backend)(vol)
        return [rotated[i] for i in range(len(angles_rad))]

    def transmissions(self, vol):
        """Slice transmissions ``(nz, ny, nx)`` (or any shape) complex for a view's volume."""
        if self.param == "complex":
            return vol
        return transmission_of_index(vol, self.optics.k, self.optics.slice_thickness_m)

    def slice_transmissions(self, params: dict, angles_rad):
        """Transmissions of every view, slice-major ``(nz, A, ny, nx)``: slice ``s`` of all the
        views is one contiguous ``(A, ny, nx)`` block, what multislice over a batch of angles
        consumes. One rotation and one transmission primitive for the whole batch."""
        if self.param == "delta_beta":
            vol = ops.add(params["delta"], ops.mul(params["beta"], 1j))
        else:
            vol = params["object"]
        nz, ny, nx = self.shape
        if not self.tomo:
            return ops.reshape(self.transmissions(vol), (nz, 1, ny, nx))
        rotated = Rotation(self.shape, angles_rad, self.backend, angle_axis=1)(vol)  # (nz, A, ny, nx)
        return self.transmissions(rotated)

    def vacuum(self) -> dict:
        """Parameters of an empty object (the usual initial guess)."""
        be = self.backend
        if self.param == "delta_beta":
            z = be.xp.zeros(self.shape, dtype=be.real_dtype)
            return {"delta": z, "beta": z.copy()}
        return {"object": be.xp.ones(self.shape, dtype=be.complex_dtype)}
