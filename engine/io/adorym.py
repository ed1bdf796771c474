"""Adorym-style HDF5 data sets: read into a :class:`Dataset`, and write (tests, simulator).

Layout and conventions, as Adorym's own readers and simulators use them:

=========================== ====================================================================
``exchange/data``           float32 ``[n_theta, n_spots, y, x]`` frames; magnitudes unless an
                            attribute ``quantity`` / ``raw_data_type`` (on the dataset, the file
                            root or ``metadata``) says ``intensity``. ``[n_theta, y, x]`` is read
                            as one spot.
``metadata/energy_ev``      scalar, eV
``metadata/psize_cm``       scalar, cm (cubic voxels: slice thickness = pixel size)
``metadata/slice_thickness_cm`` Slicewise extension, optional: slice thickness when not cubic
``metadata/theta``          ``[n_theta]`` radians (may be absent for a single angle: 0)
``metadata/probe_pos_px``   ``[n_spots, 2]`` (y, x) top-left corners, object pixels (int; floats
                            accepted). With several distances, ``n_tiles`` rows are accepted too.
``metadata/free_prop_cm``   absent, a string or inf: far field; scalar or ``[n_dist]``: near
                            field, cm; spot axis distance-major (``n_spots = n_dist x n_tiles``)
``metadata/probe_real/imag`` ``[py, px]`` (also ``[n_modes, py, px]`` or ``[py, px, n_modes]``)
``truth/<name>``            Slicewise extension: ground truth; 3-D arrays stored ``[y, x, z]``
=========================== ====================================================================

Conversions at this boundary: cm -> m; ``[y, x, z]`` -> ``(z, y, x)``; far-field frames from
Adorym's centred, unnormalised-FFT magnitudes to model intensities
``I = ifftshift(mag^2) / (ny nx)``; near-field frames ``I = mag^2`` (no shift).
"""

from __future__ import annotations

import numpy as np

from ..backend import to_host
from ..errors import DataFileError
from ..geometry import Geometry
from .atomic import atomic_write
from .datafile import Dataset
from .frames import FrameConversion, H5Source, LazyTruth
from .hdf5 import compression_kwargs, h5py_module, open_h5

CM = 1e-2  # metres per centimetre
QUANTITY_KEYS = ("quantity", "raw_data_type", "data_type")
_QUANTITY_WORDS = {"magnitude": "magnitude", "magnitudes": "magnitude", "amplitude": "magnitude",
                   "mag": "magnitude", "intensity": "intensity", "intensities": "intensity"}

LABELS = {"energy_ev": "metadata/energy_ev", "pixel_size_m": "metadata/psize_cm",
          "slice_thickness_m": "metadata/slice_thickness_cm", "angles_rad": "metadata/theta",
          "positions_px": "metadata/probe_pos_px", "distances_m": "metadata/free_prop_cm",
          "probe": "metadata/probe_real, metadata/probe_imag", "modality": "metadata/free_prop_cm",
          "object_shape_yx": "truth (object shape)"}


def sniff(f) -> bool:
    """Whether the open h5py file ``f`` is Adorym-style: it has ``exchange/data``."""
    return "exchange/data" in f


def _text(v):
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.decode() if isinstance(v, bytes) else v


def _detect_quantity(f) -> tuple[str, str]:
    """``("magnitude"|"intensity", where it was found)``; Adorym's default is magnitude."""
    places = [("exchange/data", f["exchange/data"].attrs), ("/", f.attrs)]
    if "metadata" in f:
        places.append(("metadata", f["metadata"].attrs))
    for where, attrs in places:
        for key in QUANTITY_KEYS:
            if key in attrs:
                word = str(_text(attrs[key])).strip().lower()
                if word not in _QUANTITY_WORDS:
                    raise DataFileError(f"{where} attribute {key}={word!r}: expected 'magnitude' "
                                        "or 'intensity'")
                return _QUANTITY_WORDS[word], f"{where}@{key}"
    for key in QUANTITY_KEYS:
        if f"metadata/{key}" in f:
            word = str(_text(f[f"metadata/{key}"][()])).strip().lower()
            if word in _QUANTITY_WORDS:
                return _QUANTITY_WORDS[word], f"metadata/{key}"
    return "magnitude", "default"


def _scalar(f, name):
    if name not in f:
        raise DataFileError(f"{name} is missing from the Adorym file (expected a scalar)")
    v = np.asarray(f[name][()])
    if v.size != 1 or not np.issubdtype(v.dtype, np.number):
        raise DataFileError(f"{name}: expected a numeric scalar, got {v!r}"[:200])
    return float(v.reshape(-1)[0])


def _distances_cm(f):
    """``None`` (far field) or a float array of distances in cm."""
    name = "metadata/free_prop_cm"
    if name not in f:
        return None
    v = np.asarray(f[name][()])
    if v.dtype.kind in "SUO":  # a string such as 'inf' or 'None' marks the far field
        return None
    if not np.issubdtype(v.dtype, np.number):
        raise DataFileError(f"{name}: expected a number, an array of numbers, or a string, got {v!r}")
    v = v.astype(np.float64).reshape(-1)
    if v.size and np.all(np.isinf(v)):
        return None
    return v  # Dataset validates positivity/finiteness with the label metadata/free_prop_cm


def _probe(f, frame_shape):
    has_r, has_i = "metadata/probe_real" in f, "metadata/probe_imag" in f
    if not (has_r or has_i):
        return None
    if has_r != has_i:
        raise DataFileError("metadata/probe_real and metadata/probe_imag must both be present "
                            "(or neither)")
    re_, im_ = np.asarray(f["metadata/probe_real"][()]), np.asarray(f["metadata/probe_imag"][()])
    if re_.shape != im_.shape:
        raise DataFileError(f"metadata/probe_real {re_.shape} and metadata/probe_imag {im_.shape} "
                            "must have the same shape")
    p = re_.astype(np.float64) + 1j * im_.astype(np.float64)
    if p.ndim == 3 and p.shape[1:] != tuple(frame_shape) and p.shape[:2] == tuple(frame_shape):
        p = np.moveaxis(p, -1, 0)  # [py, px, n_modes] -> (n_modes, py, px)
    return p


def _truth_transform(name, a):
    return np.ascontiguousarray(np.transpose(a, (2, 0, 1))) if a.ndim == 3 else a


def read_adorym(path: str) -> Dataset:
    """Read an Adorym-style HDF5 file into a :class:`Dataset` (frames stay on disk)."""
    with open_h5(path) as f:
        if "exchange/data" not in f:
            raise DataFileError(f"{path}: exchange/data is missing (Adorym layout: frames "
                                "[n_theta, n_spots, y, x])")
        d = f["exchange/data"]
        if not isinstance(d, h5py_module().Dataset):
            raise DataFileError(f"{path}: exchange/data is a group, not a dataset; the frames must "
                                "be one array [n_theta, n_spots, y, x]")
        if d.ndim not in (3, 4) or not np.issubdtype(d.dtype, np.number):
            raise DataFileError(f"exchange/data: expected numeric frames [n_theta, n_spots, y, x], "
                                f"got shape {d.shape}, dtype {d.dtype}")
        quantity, found = _detect_quantity(f)
        frame_shape = d.shape[-2:]
        dist_cm = _distances_cm(f)
        far = dist_cm is None
        if ("metadata/free_prop_cm" not in f and "metadata/probe_pos_px" not in f
                and d.ndim == 4 and d.shape[1] > 1):
            # far field by default, but without scan positions this is more likely holography
            raise DataFileError("metadata/free_prop_cm is missing, and so is metadata/probe_pos_px: "
                                "for holography give the sample-detector distance(s) in cm as "
                                "free_prop_cm; for ptychography give the scan positions (n_spots, 2)")
        conv = FrameConversion(quantity, centered=far, fft_norm="backward" if far else "ortho")
        psize_m = _scalar(f, "metadata/psize_cm") * CM
        dz_m = (_scalar(f, "metadata/slice_thickness_cm") * CM
                if "metadata/slice_thickness_cm" in f else psize_m)
        geometry = Geometry(
            modality="farfield" if far else "nearfield",
            energy_ev=_scalar(f, "metadata/energy_ev"),
            pixel_size_m=psize_m, slice_thickness_m=dz_m,
            angles_rad=np.asarray(f["metadata/theta"][()]) if "metadata/theta" in f else None,
            positions_px=(np.asarray(f["metadata/probe_pos_px"][()])
                          if "metadata/probe_pos_px" in f else None),
            distances_m=None if far else dist_cm * CM)
        probe = _probe(f, frame_shape)
        truth_names = sorted(f["truth"].keys()) if "truth" in f else []
        obj_shape = None
        for key in ("delta", "beta"):  # object grid from a ground-truth volume [y, x, z]
            if key in truth_names and f["truth"][key].ndim == 3:
                obj_shape = f["truth"][key].shape[:2]
                break
        src = H5Source(path, "exchange/data", d.shape, conv)
    return Dataset(src, geometry.replace(object_shape_yx=obj_shape), probe=probe, source_path=path,
                   labels=LABELS,
                   truth=LazyTruth(path, "truth", truth_names, _truth_transform),
                   meta={"layout": "adorym", "quantity": quantity, "quantity_from": found})


def write_adorym(path, intensities, geometry: Geometry, *, probe=None, truth=None,
                 quantity: str = "magnitude", compression=None) -> None:
    """Write model-convention data in Adorym's layout and conventions (atomically).

    Parameters
    ----------
    intensities: float ``(n_theta, n_spots, fy, fx)`` model-convention intensities.
    geometry: a :class:`~..geometry.Geometry`. Its ``modality``: ``"farfield"`` (frames stored
        centred, unnormalised-FFT scale; ``free_prop_cm = 'inf'``) or ``"nearfield"``
        (``distances_m`` required, spot axis distance-major). Energy and pixel size are stored as
        eV and cm; ``slice_thickness_m`` as ``metadata/slice_thickness_cm`` (a Slicewise extension
        Adorym ignores) only when it differs from the pixel size; ``positions_px`` as int when all
        integral, else as float (Adorym itself expects integers). ``object_shape_yx`` is not stored
        (Adorym has no place for it).
    probe: complex ``(py, px)`` or ``(n_modes, py, px)``; one mode is stored 2-D.
    truth: dict of ground-truth arrays; 3-D volumes ``(nz, ny, nx)`` are stored ``[y, x, z]``.
    quantity: ``"magnitude"`` (Adorym's default) or ``"intensity"``; stored as attribute
        ``quantity`` on ``exchange/data``.
    compression: None, ``"gzip"``, ``"blosc"``, ``"lz4"`` or an h5py keyword dict.
    """

    far = _check_write_args(geometry, quantity)
    data = np.asarray(to_host(intensities), dtype=np.float64)
    if data.ndim != 4:
        raise DataFileError(f"intensities: expected (n_theta, n_spots, fy, fx), got {data.shape}")
    conv = FrameConversion(quantity, centered=far, fft_norm="backward" if far else "ortho")
    ckw = compression_kwargs(compression)
    h5py = h5py_module()

    def writer(tmp):
        with h5py.File(tmp, "w") as f:
            fy, fx = data.shape[-2:]
            d = f.create_dataset("exchange/data", shape=data.shape, dtype=np.float32,
                                 chunks=(1, 1, fy, fx), **ckw)
            for a in range(data.shape[0]):
                d[a] = conv.from_model(data[a])
            d.attrs["quantity"] = quantity
            _write_metadata(f.create_group("metadata"), geometry, probe)
            for k, v in (truth or {}).items():
                v = np.asarray(to_host(v))
                f[f"truth/{k}"] = np.transpose(v, (1, 2, 0)) if v.ndim == 3 else v

    atomic_write(path, writer)


def _check_write_args(g: Geometry, quantity: str) -> bool:
    """Refuse a geometry Adorym's layout cannot hold; returns whether it is far field."""
    if g.modality not in ("farfield", "nearfield"):
        raise DataFileError(f"modality must be 'farfield' or 'nearfield', got {g.modality!r}")
    if quantity not in ("magnitude", "intensity"):
        raise DataFileError(f"quantity must be 'magnitude' or 'intensity', got {quantity!r}")
    far = g.modality == "farfield"
    if not far and g.distances_m is None:
        raise DataFileError("distances_m is required for near-field data")
    if far and g.distances_m is not None:
        raise DataFileError("distances_m must be None for far-field data (Adorym marks the far "
                            "field with free_prop_cm = 'inf')")
    return far


def _write_metadata(m, g: Geometry, probe) -> None:
    """Adorym's ``metadata`` group (cm, radians) from a geometry; ``m`` is the open group."""

    m["energy_ev"] = float(g.energy_ev)
    m["psize_cm"] = float(g.pixel_size_m) / CM
    if g.slice_thickness_m is not None and g.slice_thickness_m != g.pixel_size_m:
        m["slice_thickness_cm"] = float(g.slice_thickness_m) / CM
    angles = [0.0] if g.angles_rad is None else g.angles_rad
    m["theta"] = np.asarray(angles, dtype=np.float64).reshape(-1)
    if g.positions_px is not None:
        pos = np.asarray(g.positions_px, dtype=np.float64)
        m["probe_pos_px"] = pos.astype(np.int64) if np.all(pos == np.round(pos)) else pos
    if g.modality == "farfield":
        m["free_prop_cm"] = "inf"
    else:
        dist = np.asarray(g.distances_m, dtype=np.float64).reshape(-1) / CM
        m["free_prop_cm"] = dist[0] if dist.size == 1 else dist
    if probe is not None:
        p = np.asarray(to_host(probe), dtype=np.complex128)
        p = p[0] if p.ndim == 3 and p.shape[0] == 1 else p
        m["probe_real"], m["probe_imag"] = p.real, p.imag
