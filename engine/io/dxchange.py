"""DXchange tomography files (HDF5, APS Data Exchange) -> :class:`Dataset`, flat/dark corrected.

=================================================== =============================================
``exchange/data``                                   projections ``(n_angles, y, x)``, any dtype,
                                                    read lazily (one angle at a time)
``exchange/data_white``, ``exchange/data_dark``     flat (beam, no sample) and dark (no beam)
                                                    fields ``(n, y, x)`` or ``(y, x)``; optional
``exchange/theta``                                  rotation angles; degrees unless its ``units``
                                                    attribute says rad (DXchange writers use
                                                    degrees); unlabelled values spanning less than
                                                    7 over more than 20 angles are read as radians
``measurement/instrument/monochromator/energy``     photon energy (``units``: keV default, eV, J)
``measurement/instrument/detector/pixel_size_x``    detector pixel (``units``: m default, um, nm)
``measurement/instrument/detector/distance`` (also  sample-detector distance (``units``: m
``.../sample/distance``, ``.../detection_system/... default, mm)
distance``)
=================================================== =============================================

Correction (holotomography): ``I = (raw - mean(dark)) / (mean(white) - mean(dark))``, so vacuum
reads 1. Pixels whose flat is not above the dark (dead or unlit) go into the detector mask
(weight 0) and read 0; negative corrected values are clipped to 0. The corrected frames are
floats, so the loss default is the amplitude loss. The geometry is the lab geometry: a cone beam is
converted to the effective plane-wave geometry by ``data.source_to_sample_m`` (docs/real-data.md).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import DataFileError
from ..geometry import Geometry
from .atomic import atomic_write
from .cxi import _ENERGY_UNITS_EV, _LENGTH_UNITS, _units
from .datafile import Dataset
from .frames import FrameConversion, LazyH5File, check_raw, refuse_complex
from .hdf5 import h5py_module, open_h5

log = logging.getLogger(__name__)

ENERGY_PATHS = ("measurement/instrument/monochromator/energy", "measurement/instrument/source/energy",
                "exchange/energy")
PIXEL_PATHS = ("measurement/instrument/detector/pixel_size_x",
               "measurement/instrument/detector/actual_pixel_size_x",
               "measurement/instrument/detection_system/objective/resolution")
DISTANCE_PATHS = ("measurement/instrument/detector/distance", "measurement/instrument/sample/distance",
                  "measurement/instrument/detection_system/distance",
                  "measurement/instrument/sample/detector_distance")


def is_dxchange(f) -> bool:
    """DXchange: ``exchange/data`` with flats, darks or theta, and no Adorym ``metadata``."""
    return "exchange/data" in f and "metadata" not in f and any(
        f"exchange/{k}" in f for k in ("data_white", "data_dark", "theta"))


def _first(f, paths):
    for p in paths:
        if p in f and hasattr(f[p], "dtype"):
            v = np.asarray(f[p][()]).reshape(-1)
            if v.size and np.issubdtype(v.dtype, np.number):
                return float(v[0]), f[p]
    return None, None


def _geometry(f, path):
    e, d = _first(f, ENERGY_PATHS)
    if e is None:
        raise DataFileError(f"{path}: no photon energy ({ENERGY_PATHS[0]}, keV)")
    u = _units(d) or ("ev" if e > 200 else "kev")  # DXchange writers use keV; 200+ is surely eV
    if u not in _ENERGY_UNITS_EV:
        raise DataFileError(f"{d.name}: unknown energy unit {u!r}")
    energy_ev = e * _ENERGY_UNITS_EV[u]
    p, d = _first(f, PIXEL_PATHS)
    if p is None:
        raise DataFileError(f"{path}: no detector pixel size ({PIXEL_PATHS[0]}, m)")
    u = _units(d) or ("um" if p > 1e-3 else "m")  # a bare "6.5" is micrometres
    pixel = p * _LENGTH_UNITS.get(u, float("nan"))
    z, d = _first(f, DISTANCE_PATHS)
    if z is None:
        raise DataFileError(f"{path}: no sample-detector distance ({DISTANCE_PATHS[0]}, m)")
    u = _units(d) or ("mm" if z > 20 else "m")  # "> 20 m" is not a lab distance: millimetres
    return energy_ev, pixel, z * _LENGTH_UNITS.get(u, float("nan"))


def _angles_rad(f) -> np.ndarray | None:
    if "exchange/theta" not in f:
        return None
    d = f["exchange/theta"]
    t = np.asarray(d[()], dtype=np.float64).reshape(-1)
    u = _units(d)
    if u in ("rad", "radian", "radians"):
        return t
    if u is None and len(t) > 20 and np.ptp(t) < 7:
        log.warning("exchange/theta has no unit and spans %.3g over %d angles: read as radians",
                    np.ptp(t), len(t))
        return t
    return np.radians(t)


def _mean_field(f, name, shape):
    if name not in f:
        return None
    a = np.asarray(f[name][()], dtype=np.float64)
    a = a.mean(axis=0) if a.ndim == 3 else a
    if a.shape != shape:
        raise DataFileError(f"{name}: shape {a.shape} differs from the projection shape {shape}")
    return a


class DxSource(LazyH5File):
    """Projections ``(n_angles, y, x)`` as ``(A, 1, y, x)``, flat/dark corrected on reading."""

    def __init__(self, path, n_angles, shape, dark, gain, bad):
        self.path, self.name, self.label = path, "exchange/data", "exchange/data"
        self.shape = (int(n_angles), 1, int(shape[0]), int(shape[1]))
        self.conversion = FrameConversion()
        self.dark, self.gain, self.bad = dark, gain, bad

    def read(self, a_idx, s_idx, check: bool = True) -> np.ndarray:
        if np.any(np.asarray(s_idx) != 0):
            raise IndexError("a DXchange file holds one frame per angle: spot index must be 0")
        dset = self._h5()["exchange/data"]
        refuse_complex(dset.dtype, "exchange/data")
        a_u, a_inv = np.unique(a_idx, return_inverse=True)
        raw = np.asarray(dset[a_u.tolist()], dtype=np.float32)
        if check:
            check_raw(np.where(self.bad, 0, raw), "exchange/data", "",
                      lambda i: f"(angle {int(a_u[i])})")
        out = (raw - self.dark) * self.gain
        out[:, self.bad] = 0
        np.maximum(out, 0, out=out)
        out = out[a_inv.ravel()][:, None]
        return np.repeat(out, len(s_idx), axis=1).astype(np.float32)



def read_dxchange(path) -> Dataset:
    """Open a DXchange file as a near-field (holotomography) :class:`Dataset`."""
    path = str(path)
    with open_h5(path) as f:
        d = f["exchange/data"]
        if d.ndim == 2:
            n, shape = 1, d.shape
        elif d.ndim == 3:
            n, shape = d.shape[0], d.shape[1:]
        else:
            raise DataFileError(f"exchange/data: expected projections (n_angles, y, x), got {d.shape}")
        shape = (int(shape[0]), int(shape[1]))
        dark = _mean_field(f, "exchange/data_dark", shape)
        white = _mean_field(f, "exchange/data_white", shape)
        energy_ev, pixel, dist = _geometry(f, path)
        angles = _angles_rad(f)
        dtype = d.dtype
    dark = np.zeros(shape) if dark is None else dark
    if white is None:
        log.warning("%s: no exchange/data_white: frames are used as stored (no flat field)", path)
        gain, bad = np.ones(shape), np.zeros(shape, bool)
    else:
        span = white - dark
        bad = ~(span > 1e-6 * max(float(np.abs(span).max()), 1e-30))
        gain = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, span))
    if angles is None:
        angles = np.zeros(n) if n == 1 else None
    src = DxSource(path, n, shape, dark.astype(np.float32), gain.astype(np.float32), bad)
    meta = {"layout": "dxchange", "frames_dtype": str(dtype), "integer_counts": False,
            "flat_dark": "corrected" if white is not None else "none",
            "detector_pixel_m": pixel, "detector_distance_m": dist, "n_bad_pixels": int(bad.sum())}
    labels = {"energy_ev": ENERGY_PATHS[0], "pixel_size_m": PIXEL_PATHS[0],
              "distances_m": DISTANCE_PATHS[0], "angles_rad": "exchange/theta",
              "slice_thickness_m": PIXEL_PATHS[0], "mask": "flat field <= dark field",
              "positions_px": "positions", "probe": "probe", "modality": "exchange",
              "object_shape_yx": "exchange/data"}
    mask = (~bad).astype(np.float32) if bad.any() else None
    return Dataset(src,
                   Geometry(modality="nearfield", energy_ev=energy_ev, pixel_size_m=pixel,
                            angles_rad=angles, distances_m=[dist]),
                   source_path=path, meta=meta, labels=labels, mask=mask, n_sample_frames=2)


def write_dxchange(path, projections, *, theta_deg, energy_kev: float, pixel_size_m: float,
                   distance_m: float, white=None, dark=None) -> None:
    """Write a minimal DXchange file (tests, simulations): projections as stored, theta in
    degrees, energy in keV, lengths in metres, each with a ``units`` attribute."""

    h5py = h5py_module()

    def writer(tmp):
        with h5py.File(tmp, "w") as f:
            f["implements"] = "exchange:measurement"
            f["exchange/data"] = np.asarray(projections)
            f["exchange/theta"] = np.asarray(theta_deg, float)
            f["exchange/theta"].attrs["units"] = "deg"
            if white is not None:
                f["exchange/data_white"] = np.asarray(white)
            if dark is not None:
                f["exchange/data_dark"] = np.asarray(dark)
            for name, value, unit in (("monochromator/energy", energy_kev, "keV"),
                                      ("detector/pixel_size_x", pixel_size_m, "m"),
                                      ("detector/pixel_size_y", pixel_size_m, "m"),
                                      ("detector/distance", distance_m, "m")):
                ds = f.create_dataset(f"measurement/instrument/{name}", data=float(value))
                ds.attrs["units"] = unit

    atomic_write(path, writer)
