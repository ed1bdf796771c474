"""The :class:`Dataset` every part of Slicewise reads measured or simulated data through.

A ``Dataset`` holds the geometry in SI units and reads frames lazily, already converted to the
**model convention** (ARCHITECTURE.md): intensities, float32 ``(n_angles, n_spots, fy, fx)``;
far-field frames as ``|fft2_ortho(psi)|^2`` unshifted (zero frequency at ``[0, 0]``), near-field
frames as ``|psi|^2``. Sources: :func:`open_dataset` (Adorym-style or Slicewise HDF5) and
:meth:`Dataset.from_arrays` (in memory). Everything is validated once at the boundary; problems are
:class:`DataFileError` messages naming the dataset/field and the expected form.

Spots: ``n_spots = n_distances x n_tiles``, distance-major (spot ``s`` is distance
``s // n_tiles``, tile ``s % n_tiles``). Far-field data have one "distance" (``distances_m`` is
None) and ``n_tiles = n_spots`` scan positions. ``positions_px`` always has ``n_spots`` rows.

Slicewise HDF5 layout (written by :func:`write_dataset`, SI units, format_version 1)::

    /                          attrs: format = "slicewise", format_version = 1
    /data/intensities          float32 (n_angles, n_spots, fy, fx), model convention;
                               attrs: quantity = "intensity", convention = "model"
                               (a reader also honours quantity = "magnitude", centered = True,
                               fft_norm = "backward" for data stored otherwise)
    /geometry                  attrs: modality ("farfield" | "nearfield"), energy_ev,
                               pixel_size_m, slice_thickness_m
    /geometry/angles_rad       float64 (n_angles,)
    /geometry/positions_px     float64 (n_spots, 2) top-left (y, x) of the probe window  [optional]
    /geometry/distances_m      float64 (n_distances,) sample-detector distances  [near field only]
    /geometry/object_shape_yx  int64 (2,)  object grid (ny, nx)  [optional; else taken from
                               /truth/delta (nz, ny, nx) when present, else inferred]
    /probe                     complex128 (n_modes, py, px)  [optional]
    /mask                      float32 (fy, fx) detector weights, 1 = use, 0 = bad pixel, model
                               convention (far field: unshifted)  [optional]
    /truth/<name>              ground truth, e.g. delta, beta float (nz, ny, nx)  [optional]
    /provenance                attrs: software, version, date (ISO 8601, UTC),
                               parameters (JSON text), meta (JSON text)
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFileError

HC_EV_M = 1.239841984e-6            # h c in eV m: lambda = HC_EV_M / E
MODALITIES = ("farfield", "nearfield")
ENERGY_RANGE_EV = (100.0, 200e3)    # accepted photon energies
PIXEL_RANGE_M = (1e-12, 1e-3)       # accepted pixel / slice sizes
SLICEWISE_FORMAT = "slicewise"
SLICEWISE_FORMAT_VERSION = 1
MAX_ABS_POSITION_PX = 1e6           # beyond this, positions are surely in the wrong unit


def _h5py():
    """Import h5py with the compression filters registered (Blosc, LZ4, Zstd, bitshuffle ...)."""
    import hdf5plugin  # noqa: F401, PLC0415 - registers the filters with HDF5 on import
    import h5py  # noqa: PLC0415

    return h5py


# ---------------------------------------------------------------------------------------------
# Frame conversion and sources
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameConversion:
    """How stored frames map to model-convention intensities.

    quantity: ``"intensity"`` or ``"magnitude"`` (square it).
    centered: zero frequency stored at ``(fy//2, fx//2)`` (``fftshift``-ed); undone by ifftshift.
    fft_norm: ``"ortho"`` (unitary FFT) or ``"backward"`` (unnormalised forward FFT, as Adorym:
        ``sum(I) = fy fx sum|psi|^2``); the latter is divided by ``fy * fx``.
    """

    quantity: str = "intensity"
    centered: bool = False
    fft_norm: str = "ortho"

    def to_model(self, raw: np.ndarray) -> np.ndarray:
        a = np.asarray(raw, dtype=np.float32)
        if self.quantity == "magnitude":
            a = a * a
        if self.centered:
            a = np.fft.ifftshift(a, axes=(-2, -1))
        if self.fft_norm == "backward":
            a = a / np.float32(a.shape[-1] * a.shape[-2])
        return np.ascontiguousarray(a, dtype=np.float32)

    def from_model(self, intensity: np.ndarray) -> np.ndarray:
        a = np.asarray(intensity, dtype=np.float64)
        if self.fft_norm == "backward":
            a = a * (a.shape[-1] * a.shape[-2])
        if self.centered:
            a = np.fft.fftshift(a, axes=(-2, -1))
        if self.quantity == "magnitude":
            a = np.sqrt(np.maximum(a, 0.0))
        return a.astype(np.float32)

    def describe(self) -> str:
        parts = ["magnitudes" if self.quantity == "magnitude" else "intensities"]
        if self.centered or self.fft_norm != "ortho":
            parts.append("centred, unnormalised FFT" if self.centered else f"fft_norm={self.fft_norm}")
        return ", ".join(parts)


MODEL_CONVENTION = FrameConversion()


def _check_raw(raw: np.ndarray, label: str, where: str) -> None:
    if not np.all(np.isfinite(raw)):
        raise DataFileError(f"{label}: frames {where} contain NaN or infinite values; "
                            "measured frames must be finite")
    mn = float(raw.min()) if raw.size else 0.0
    if mn < 0:
        raise DataFileError(f"{label}: frames {where} contain negative values (min {mn:g}); "
                            "frames must be non-negative intensities or magnitudes "
                            "(clip after background subtraction)")


class ArraySource:
    """Frames held in memory, shape ``(A, S, fy, fx)``, in ``conversion`` (default model)."""

    def __init__(self, frames: np.ndarray, label: str = "intensities",
                 conversion: FrameConversion = MODEL_CONVENTION):
        self.array, self.label, self.conversion = frames, label, conversion
        self.shape = tuple(frames.shape)

    def read(self, a_idx: np.ndarray, s_idx: np.ndarray, check: bool = True) -> np.ndarray:
        raw = self.array[np.ix_(a_idx, s_idx)]
        if check:
            _check_raw(raw, self.label, f"at angles {a_idx.tolist()[:8]}, spots {s_idx.tolist()[:8]}")
        return self.conversion.to_model(raw)

    def close(self) -> None:
        pass


class H5Source:
    """Frames read lazily from an HDF5 dataset ``(A, S, fy, fx)`` (or ``(A, fy, fx)``, S = 1).

    The file is opened on first use and kept open (reopened after a fork or pickling). h5py
    needs increasing indices, so reads are per angle over the sorted unique spots (a slice when
    they are contiguous) and reordered afterwards.
    """

    def __init__(self, path: str, name: str, shape: tuple[int, ...], conversion: FrameConversion):
        self.path, self.name, self.conversion = path, name, conversion
        self.has_spot_axis = len(shape) == 4
        self.shape = tuple(shape) if self.has_spot_axis else (shape[0], 1, shape[1], shape[2])
        self.label = name
        self._file, self._pid = None, None

    def _dataset(self):
        if self._file is None or self._pid != os.getpid():
            self._file = _h5py().File(self.path, "r")
            self._pid = os.getpid()
        return self._file[self.name]

    def read(self, a_idx: np.ndarray, s_idx: np.ndarray, check: bool = True) -> np.ndarray:
        dset = self._dataset()
        fy, fx = self.shape[-2:]
        s_u, s_inv = np.unique(s_idx, return_inverse=True)
        contiguous = s_u[-1] - s_u[0] + 1 == len(s_u)
        a_u, a_inv = np.unique(a_idx, return_inverse=True)
        raw = np.empty((len(a_u), len(s_u), fy, fx), dtype=np.float32)
        for i, a in enumerate(a_u):
            if not self.has_spot_axis:
                raw[i, 0] = dset[int(a)]
            elif contiguous:
                raw[i] = dset[int(a), int(s_u[0]):int(s_u[-1]) + 1]
            else:
                raw[i] = dset[int(a), s_u.tolist()]
        if check:
            _check_raw(raw, self.name, f"at angles {a_u.tolist()[:8]}, spots {s_u.tolist()[:8]}")
        return self.conversion.to_model(raw[np.ix_(a_inv.ravel(), s_inv.ravel())])

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None
        return state


class LazyTruth(Mapping):
    """Ground-truth arrays of a file, loaded (and cached) on first access.

    ``transform(name, array)`` converts the stored array (e.g. Adorym ``[y,x,z]`` -> ``(z,y,x)``).
    """

    def __init__(self, path: str, group: str, names: list[str], transform=None):
        self._path, self._group, self._names = path, group, list(names)
        self._transform = transform or (lambda name, a: a)
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, key):
        if key not in self._names:
            raise KeyError(f"no ground truth {key!r} in {self._path}; available: {self._names}")
        if key not in self._cache:
            with _h5py().File(self._path, "r") as f:
                self._cache[key] = self._transform(key, np.asarray(f[self._group][key][()]))
        return self._cache[key]

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


# ---------------------------------------------------------------------------------------------
# The Dataset
# ---------------------------------------------------------------------------------------------
_DEFAULT_LABELS = {k: k for k in ("energy_ev", "pixel_size_m", "slice_thickness_m", "angles_rad",
                                  "positions_px", "distances_m", "probe", "modality",
                                  "object_shape_yx", "mask")}


class Dataset:
    """Geometry (SI units) plus lazily read frames in model convention.

    Attributes
    ----------
    modality: ``"farfield"`` (ptychography / CDI) or ``"nearfield"`` (holography).
    energy_ev: photon energy, eV.  pixel_size_m: object/detector-plane pixel, m.
    slice_thickness_m: multislice slice thickness, m (default: the pixel size, cubic voxels).
    angles_rad: float64 ``(n_angles,)`` rotation angles about y.
    positions_px: float64 ``(n_spots, 2)`` top-left ``(y, x)`` of each window, or None.
    distances_m: float64 ``(n_distances,)`` sample-detector distances (near field) or None.
    probe: complex128 ``(n_modes, py, px)`` known/initial probe, or None.
    source_path: the file read, or None.  truth: mapping of ground-truth arrays (lazy).
    meta: free-form dict (layout, stored quantity, provenance ...).
    mask: float32 ``(fy, fx)`` detector weights in model convention (1 = use the pixel, 0 = bad,
        excluded from the loss), or None (every pixel is good). Readers convert the file's own
        mask convention into this one (e.g. CXI: nonzero = bad, engine/io/cxi.py).
    """

    def __init__(self, source, *, modality, energy_ev, pixel_size_m, angles_rad=None,
                 positions_px=None, distances_m=None, slice_thickness_m=None, probe=None,
                 object_shape_yx=None, source_path=None, truth=None, meta=None, labels=None,
                 n_sample_frames: int = 4, mask=None):
        self._source = source
        self._labels = {**_DEFAULT_LABELS, **(labels or {})}
        lab = self._labels
        shape = tuple(source.shape)
        if len(shape) != 4 or min(shape) < 1:
            raise DataFileError(f"{source.label}: frames must have shape (n_angles, n_spots, fy, fx) "
                                f"with every size >= 1, got {shape}")
        n_a, n_s = shape[0], shape[1]
        self.frame_shape = (int(shape[2]), int(shape[3]))

        if modality not in MODALITIES:
            raise DataFileError(f"{lab['modality']}: modality must be one of {MODALITIES}, got {modality!r}")
        self.modality = modality
        self.energy_ev = _ranged(energy_ev, ENERGY_RANGE_EV, lab["energy_ev"], "photon energy", "eV")
        self.pixel_size_m = _ranged(pixel_size_m, PIXEL_RANGE_M, lab["pixel_size_m"], "pixel size", "m")
        self.slice_thickness_m = (self.pixel_size_m if slice_thickness_m is None else
                                  _ranged(slice_thickness_m, PIXEL_RANGE_M,
                                          lab["slice_thickness_m"], "slice thickness", "m"))

        if angles_rad is None:
            if n_a != 1:
                raise DataFileError(f"{lab['angles_rad']} is missing: {n_a} rotation angles "
                                    "(first axis of the frames) need one angle each, in radians")
            angles_rad = [0.0]
        self.angles_rad = _vector(angles_rad, lab["angles_rad"], "rotation angles (rad)")
        if len(self.angles_rad) != n_a:
            raise DataFileError(f"{lab['angles_rad']}: {len(self.angles_rad)} angles, but the frames "
                                f"have n_angles = {n_a} (first axis); expected shape ({n_a},)")

        if modality == "farfield":
            if distances_m is not None:
                raise DataFileError(f"{lab['distances_m']}: far-field data take no propagation "
                                    "distances (give modality='nearfield' for holography)")
            self.distances_m = None
        else:
            if distances_m is None:
                raise DataFileError(f"{lab['distances_m']} is missing: near-field data need the "
                                    "sample-detector distance(s)")
            d = _vector(distances_m, lab["distances_m"], "distances")
            if len(d) == 0 or np.any(d <= 0):
                raise DataFileError(f"{lab['distances_m']}: distances must be positive, got "
                                    f"{d.tolist()} m")
            if n_s % len(d):
                raise DataFileError(f"{lab['distances_m']}: {len(d)} distances do not divide "
                                    f"n_spots = {n_s}; the spot axis must be n_distances x n_tiles "
                                    "(distance-major)")
            self.distances_m = d
        self.n_tiles = n_s // self.n_distances

        self._object_shape_yx = None
        if object_shape_yx is not None:
            osh = np.asarray(object_shape_yx)
            if osh.shape != (2,) or np.any(osh < 1) or np.any(osh != np.round(osh)):
                raise DataFileError(f"{lab['object_shape_yx']}: expected two positive integers "
                                    f"(ny, nx), got {object_shape_yx!r}")
            self._object_shape_yx = (int(osh[0]), int(osh[1]))
        self.positions_px = self._check_positions(positions_px, n_s)
        self.probe = self._check_probe(probe)
        self.mask = self._check_mask(mask)

        self.source_path = None if source_path is None else str(source_path)
        self.truth = {} if truth is None else truth
        self.meta = dict(meta or {})
        self._check_sample(n_sample_frames)

    # ---- validation helpers ----------------------------------------------------------------
    def _check_positions(self, positions_px, n_s):
        lab = self._labels["positions_px"]
        if positions_px is None:
            if (self.modality == "farfield" and n_s > 1) or self.n_tiles > 1:
                raise DataFileError(f"{lab} is missing: {self.n_tiles} scan positions need "
                                    "positions (n_spots, 2) of (y, x) in object pixels")
            return None
        p = np.asarray(positions_px)
        if p.ndim != 2 or p.shape[1] != 2 or not np.issubdtype(p.dtype, np.number):
            raise DataFileError(f"{lab}: expected a numeric (n_spots, 2) array of (y, x), got shape "
                                f"{p.shape}")
        p = p.astype(np.float64)
        if len(p) == self.n_tiles and self.n_distances > 1:
            p = np.tile(p, (self.n_distances, 1))  # same tiles at every distance
        if len(p) != n_s:
            raise DataFileError(f"{lab}: {len(p)} positions, but the frames have n_spots = {n_s} "
                                f"(second axis); expected shape ({n_s}, 2)")
        if not np.all(np.isfinite(p)) or np.abs(p).max() > MAX_ABS_POSITION_PX:
            raise DataFileError(f"{lab}: positions must be finite pixel coordinates "
                                f"(|value| < {MAX_ABS_POSITION_PX:g}); check the units")
        fy, fx = self.frame_shape
        bad = (p[:, 0] <= -fy) | (p[:, 1] <= -fx)
        if self._object_shape_yx is not None:
            bad |= (p[:, 0] >= self._object_shape_yx[0]) | (p[:, 1] >= self._object_shape_yx[1])
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise DataFileError(f"{lab}: position {i} (y, x) = {tuple(p[i].tolist())} puts the {fy}x{fx} "
                                f"window entirely outside the object grid "
                                f"{self._object_shape_yx or '(starting at 0, 0)'}; "
                                "positions are the top-left corner in object pixels")
        return p

    def _check_probe(self, probe):
        if probe is None:
            return None
        lab = self._labels["probe"]
        p = np.asarray(probe)
        if p.ndim == 2:
            p = p[None]
        if p.ndim != 3 or p.shape[1:] != self.frame_shape:
            raise DataFileError(f"{lab}: expected a complex (n_modes, py, px) probe with (py, px) = "
                                f"frame shape {self.frame_shape}, got shape {np.shape(probe)}")
        p = p.astype(np.complex128)
        if not np.all(np.isfinite(p)):
            raise DataFileError(f"{lab}: probe contains NaN or infinite values")
        return p

    def _check_mask(self, mask):
        if mask is None:
            return None
        m = np.asarray(mask, dtype=np.float32)
        if m.shape != self.frame_shape:
            raise DataFileError(f"{self._labels.get('mask', 'mask')}: detector mask shape {m.shape} "
                                f"differs from the frame shape {self.frame_shape}")
        if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
            raise DataFileError(f"{self._labels.get('mask', 'mask')}: detector weights must lie in "
                                "[0, 1] (1 = use the pixel, 0 = ignore it)")
        if m.sum() <= 0:
            raise DataFileError(f"{self._labels.get('mask', 'mask')}: the detector mask excludes "
                                "every pixel")
        return m

    def with_geometry(self, **changes) -> "Dataset":
        """A new Dataset on the same frames with some geometry replaced (``pixel_size_m``,
        ``distances_m``, ``positions_px``, ``slice_thickness_m``, ``object_shape_yx``, ``meta``...);
        used for the cone-beam (Fresnel scaling) conversion to the effective geometry."""
        kwargs = dict(modality=self.modality, energy_ev=self.energy_ev,
                      pixel_size_m=self.pixel_size_m, angles_rad=self.angles_rad,
                      positions_px=self.positions_px, distances_m=self.distances_m,
                      slice_thickness_m=self.slice_thickness_m, probe=self.probe,
                      object_shape_yx=self._object_shape_yx, source_path=self.source_path,
                      truth=self.truth, meta=self.meta, labels=self._labels, mask=self.mask)
        kwargs.update(changes)
        return Dataset(self._source, **kwargs, n_sample_frames=0)

    def _check_sample(self, n: int) -> None:
        """Read a few frames spread over the data (cheap) and check them."""
        total = self.n_angles * self.n_spots
        if n <= 0:
            return
        for k in sorted({int(round(v)) for v in np.linspace(0, total - 1, min(n, total))}):
            self._source.read(np.array([k // self.n_spots]), np.array([k % self.n_spots]))

    # ---- shape properties ------------------------------------------------------------------
    @property
    def n_angles(self) -> int:
        return int(self._source.shape[0])

    @property
    def n_spots(self) -> int:
        return int(self._source.shape[1])

    @property
    def n_distances(self) -> int:
        """Number of propagation distances (1 for far-field data)."""
        return 1 if self.distances_m is None else len(self.distances_m)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.n_angles, self.n_spots, *self.frame_shape)

    @property
    def wavelength_m(self) -> float:
        return HC_EV_M / self.energy_ev

    @property
    def conversion(self) -> FrameConversion:
        """How the stored frames are converted into model convention."""
        return self._source.conversion

    @property
    def object_shape_yx(self) -> tuple[int, int]:
        """Object grid ``(ny, nx)``: from the file when stated, else the smallest grid holding
        every window (windows may overhang; the object is padded with vacuum there)."""
        if self._object_shape_yx is not None:
            return self._object_shape_yx
        fy, fx = self.frame_shape
        if self.positions_px is None:
            return (fy, fx)
        return (max(fy, int(math.ceil(self.positions_px[:, 0].max())) + fy),
                max(fx, int(math.ceil(self.positions_px[:, 1].max())) + fx))

    def spot_index(self, distance_idx: int, tile_idx: int) -> int:
        return int(distance_idx) * self.n_tiles + int(tile_idx)

    def split_spot(self, spot_idx):
        """``(distance index, tile index)`` of spot(s) ``spot_idx``."""
        s = np.asarray(spot_idx)
        return s // self.n_tiles, s % self.n_tiles

    # ---- frames ----------------------------------------------------------------------------
    def frames(self, angle_idx=None, spot_idx=None) -> np.ndarray:
        """Model-convention intensities, float32 ``(A, S, fy, fx)``; ``None`` means all.

        Only the requested frames are read from disk; they are checked for NaN/negative values.
        """
        a = _indices(angle_idx, self.n_angles, "angle_idx")
        s = _indices(spot_idx, self.n_spots, "spot_idx")
        return self._source.read(a, s)

    def close(self) -> None:
        self._source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return (f"Dataset({self.modality}, {self.energy_ev:g} eV, pixel {self.pixel_size_m:g} m, "
                f"frames {self.shape}, source={self.source_path!r})")

    # ---- constructors ----------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, intensities, *, modality, energy_ev, pixel_size_m, angles_rad=None,
                    positions_px=None, distances_m=None, slice_thickness_m=None, probe=None,
                    object_shape_yx=None, truth=None, meta=None, mask=None) -> Dataset:
        """In-memory data set; ``intensities`` float ``(n_angles, n_spots, fy, fx)`` in model
        convention (NumPy or CuPy). Same validation as files; all frames are checked."""
        from ..backend import to_host  # noqa: PLC0415

        arr = np.ascontiguousarray(to_host(intensities), dtype=np.float32)
        if arr.ndim != 4:
            raise DataFileError("intensities: expected shape (n_angles, n_spots, fy, fx), got "
                                f"{arr.shape}")
        if arr.size:
            _check_raw(arr, "intensities", "(all)")
        return cls(ArraySource(arr), modality=modality, energy_ev=energy_ev,
                   pixel_size_m=pixel_size_m, angles_rad=angles_rad, positions_px=positions_px,
                   distances_m=distances_m, slice_thickness_m=slice_thickness_m, probe=probe,
                   object_shape_yx=object_shape_yx, truth=truth,
                   meta={"layout": "memory", **(meta or {})}, n_sample_frames=0, mask=mask)


def _ranged(value, bounds, label, what, unit) -> float:
    try:
        v = float(np.asarray(value).reshape(-1)[0]) if np.size(value) == 1 else float("nan")
    except (TypeError, ValueError):
        v = float("nan")
    lo, hi = bounds
    if not (lo <= v <= hi):
        shown = f"{v:g} {unit}" + (" (converted from cm)" if label.endswith("_cm") else "")
        raise DataFileError(f"{label}: {what} {shown if np.size(value) == 1 else repr(value)} is "
                            f"outside the accepted range {lo:g}..{hi:g} {unit} (expected a "
                            "positive scalar; check the units)")
    return v


def _vector(value, label, what) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64).reshape(-1) if np.ndim(value) <= 1 else None
    except (TypeError, ValueError):
        v = None
    if v is None or not np.all(np.isfinite(v)):
        raise DataFileError(f"{label}: expected a 1-D array of finite {what}, got {value!r}"[:300])
    return v


def _indices(idx, n, name) -> np.ndarray:
    if idx is None:
        return np.arange(n)
    a = np.atleast_1d(np.asarray(idx))
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise IndexError(f"{name} must be an integer or a 1-D integer array, got {idx!r}")
    if a.size and (a.min() < -n or a.max() >= n):
        raise IndexError(f"{name} out of range: valid indices are 0..{n - 1}")
    return a % n if a.size else a


# ---------------------------------------------------------------------------------------------
# Files: open / write / describe
# ---------------------------------------------------------------------------------------------
def _compression_kwargs(compression) -> dict:
    """h5py dataset keywords for ``None``, ``"gzip"``, ``"blosc"``/``"lz4"`` or a ready dict."""
    if compression is None:
        return {}
    if isinstance(compression, Mapping):
        return dict(compression)
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    import hdf5plugin  # noqa: PLC0415

    if compression == "blosc":
        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if compression == "lz4":
        return dict(hdf5plugin.LZ4())
    raise DataFileError(f"compression must be None, 'gzip', 'blosc' or 'lz4', got {compression!r}")


def _h5_open(path):
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{path}: no such data file")
    h5py = _h5py()
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise DataFileError(f"{path}: not a readable HDF5 file ({exc})") from None


def open_dataset(path) -> Dataset:
    """Open a Slicewise, CXI, DXchange or Adorym-style HDF5 data set (detected from its content)."""
    from .cxi import is_cxi, read_cxi  # noqa: PLC0415
    from .dxchange import is_dxchange, read_dxchange  # noqa: PLC0415

    with _h5_open(path) as f:
        fmt = f.attrs.get("format", "")
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        is_slicewise = fmt == SLICEWISE_FORMAT or "data/intensities" in f
        cxi, dxchange = is_cxi(f), is_dxchange(f)
        is_adorym = "exchange/data" in f
    if is_slicewise:
        return _read_slicewise(str(path))
    if cxi:
        return read_cxi(str(path))
    if dxchange:
        return read_dxchange(str(path))
    if is_adorym:
        from .adorym import read_adorym  # noqa: PLC0415

        return read_adorym(str(path))
    raise DataFileError(f"{path}: not a Slicewise data file (/data/intensities), a CXI file "
                        "(entry_1/instrument_1/detector_1), a DXchange file (exchange/data with "
                        "data_white/theta) nor an Adorym-style file (exchange/data + metadata); "
                        "see docs/real-data.md for the layouts")


def _attr_str(attrs, key, default=None):
    v = attrs.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _read_slicewise(path: str) -> Dataset:
    with _h5_open(path) as f:
        if "data/intensities" not in f:
            raise DataFileError(f"{path}: dataset /data/intensities is missing (Slicewise layout)")
        d = f["data/intensities"]
        if d.ndim != 4:
            raise DataFileError(f"/data/intensities: expected shape (n_angles, n_spots, fy, fx), "
                                f"got {d.shape}")
        conv = FrameConversion(_attr_str(d.attrs, "quantity", "intensity"),
                               bool(d.attrs.get("centered", False)),
                               _attr_str(d.attrs, "fft_norm", "ortho"))
        if conv.quantity not in ("intensity", "magnitude") or conv.fft_norm not in ("ortho", "backward"):
            raise DataFileError(f"/data/intensities: attributes quantity={conv.quantity!r}, "
                                f"fft_norm={conv.fft_norm!r} not understood; expected quantity "
                                "'intensity'|'magnitude' and fft_norm 'ortho'|'backward'")
        if "geometry" not in f:
            raise DataFileError(f"{path}: group /geometry is missing (Slicewise layout)")
        g = f["geometry"]
        ga = g.attrs
        for key in ("modality", "energy_ev", "pixel_size_m"):
            if key not in ga:
                raise DataFileError(f"/geometry attribute {key} is missing (Slicewise layout)")

        def opt(name):
            return np.asarray(g[name][()]) if name in g else None

        prov = {k: _attr_str(f["provenance"].attrs, k) for k in f["provenance"].attrs} \
            if "provenance" in f else {}
        meta = json.loads(prov.pop("meta", None) or "{}")
        kwargs = dict(modality=_attr_str(ga, "modality"), energy_ev=ga["energy_ev"],
                      pixel_size_m=ga["pixel_size_m"],
                      slice_thickness_m=ga.get("slice_thickness_m"),
                      angles_rad=opt("angles_rad"), positions_px=opt("positions_px"),
                      distances_m=opt("distances_m"), object_shape_yx=opt("object_shape_yx"),
                      probe=np.asarray(f["probe"][()]) if "probe" in f else None,
                      mask=np.asarray(f["mask"][()]) if "mask" in f else None)
        truth_names = sorted(f["truth"].keys()) if "truth" in f else []
        if kwargs["object_shape_yx"] is None:
            for key in ("delta", "beta", "object"):  # the object grid of a ground-truth volume
                if key in truth_names and f["truth"][key].ndim == 3:
                    kwargs["object_shape_yx"] = f["truth"][key].shape[1:]
                    break
        src = H5Source(path, "data/intensities", d.shape, conv)
    labels = {k: f"/geometry/{k}" for k in _DEFAULT_LABELS}
    labels["probe"] = "/probe"
    labels["mask"] = "/mask"
    return Dataset(src, **kwargs, source_path=path, labels=labels,
                   truth=LazyTruth(path, "truth", truth_names),
                   meta={**meta, "layout": "slicewise", "provenance": prov})


def write_dataset(path, dataset: Dataset, truth=None, provenance=None, compression=None) -> None:
    """Write ``dataset`` in the Slicewise layout (module docstring), atomically.

    ``truth``: extra/overriding ground-truth arrays (merged over ``dataset.truth``).
    ``provenance``: parameters (JSON-serialisable dict) that produced the data.
    ``compression``: None, ``"gzip"``, ``"blosc"``, ``"lz4"`` or h5py keyword dict.
    Reading the file back gives identical arrays and geometry.
    """
    from .. import __version__  # noqa: PLC0415
    from ..backend import to_host  # noqa: PLC0415
    from .atomic import atomic_write  # noqa: PLC0415

    all_truth = {**{k: dataset.truth[k] for k in dataset.truth}, **(truth or {})}
    ckw = _compression_kwargs(compression)
    h5py = _h5py()

    def writer(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = SLICEWISE_FORMAT
            f.attrs["format_version"] = SLICEWISE_FORMAT_VERSION
            fy, fx = dataset.frame_shape
            d = f.create_dataset("data/intensities", shape=dataset.shape, dtype=np.float32,
                                 chunks=(1, 1, fy, fx), **ckw)
            d.attrs["quantity"] = "intensity"
            d.attrs["convention"] = "model"
            d.attrs["description"] = ("far field: |fft2_ortho(psi)|^2 unshifted; "
                                      "near field: |psi|^2")
            for a in range(dataset.n_angles):  # one angle at a time keeps memory bounded
                d[a] = dataset.frames([a])[0]
            g = f.create_group("geometry")
            g.attrs["modality"] = dataset.modality
            g.attrs["energy_ev"] = float(dataset.energy_ev)
            g.attrs["pixel_size_m"] = float(dataset.pixel_size_m)
            g.attrs["slice_thickness_m"] = float(dataset.slice_thickness_m)
            g["angles_rad"] = dataset.angles_rad
            if dataset.positions_px is not None:
                g["positions_px"] = dataset.positions_px
            if dataset.distances_m is not None:
                g["distances_m"] = dataset.distances_m
            if dataset._object_shape_yx is not None:
                g["object_shape_yx"] = np.asarray(dataset._object_shape_yx, dtype=np.int64)
            if dataset.probe is not None:
                f["probe"] = dataset.probe
            if dataset.mask is not None:
                f["mask"] = dataset.mask
            for k, v in all_truth.items():
                f.create_dataset(f"truth/{k}", data=to_host(v), **(ckw if np.ndim(v) >= 2 else {}))
            p = f.create_group("provenance")
            p.attrs["software"] = "slicewise"
            p.attrs["version"] = __version__
            p.attrs["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            p.attrs["parameters"] = json.dumps(provenance or {}, default=str)
            meta = {k: v for k, v in dataset.meta.items() if k not in ("layout", "provenance")}
            p.attrs["meta"] = json.dumps(meta, default=str)
            if dataset.source_path:
                p.attrs["source_path"] = dataset.source_path

    atomic_write(path, writer)


def describe_file(path) -> str:
    """A few human-readable lines about a data file (for ``slicewise info`` and the GUI)."""
    ds = open_dataset(path)
    try:
        lines = [f"{path}: {ds.meta.get('layout', '?')} layout, {ds.modality} data",
                 f"  energy {ds.energy_ev:g} eV (wavelength {ds.wavelength_m * 1e12:.4g} pm), "
                 f"pixel {ds.pixel_size_m * 1e9:.4g} nm, slice {ds.slice_thickness_m * 1e9:.4g} nm",
                 f"  frames {ds.n_angles} angles x {ds.n_spots} spots x {ds.frame_shape[0]}x"
                 f"{ds.frame_shape[1]} px ({ds.conversion.describe()} in the file), "
                 f"{np.prod(ds.shape) * 4 / 2**20:.1f} MiB as float32"]
        a = np.degrees(ds.angles_rad)
        lines.append(f"  angles {a.min():.4g}..{a.max():.4g} deg" if ds.n_angles > 1
                     else f"  single angle {a[0]:.4g} deg")
        if ds.distances_m is not None:
            lines.append(f"  distances {', '.join(f'{d * 1e3:.4g}' for d in ds.distances_m)} mm "
                         f"({ds.n_tiles} tile(s) per distance)")
        if ds.positions_px is not None:
            lo, hi = ds.positions_px.min(0), ds.positions_px.max(0)
            lines.append(f"  {ds.n_tiles} scan positions, y {lo[0]:.4g}..{hi[0]:.4g}, "
                         f"x {lo[1]:.4g}..{hi[1]:.4g} px; object grid {ds.object_shape_yx}")
        lines.append(f"  probe: {ds.probe.shape[0]} mode(s) {ds.probe.shape[1:]}"
                     if ds.probe is not None else "  probe: none in the file")
        lines.extend(_describe_real(ds))
        if len(ds.truth):
            lines.append(f"  ground truth: {', '.join(ds.truth)}")
        return "\n".join(lines)
    finally:
        ds.close()


def _describe_real(ds: Dataset) -> list[str]:
    """Lines on what a measured-data reader found (mask, counts, detector geometry)."""
    m = ds.meta
    out = []
    if ds.mask is not None:
        out.append(f"  detector mask: {int((ds.mask == 0).sum())} bad pixel(s) of {ds.mask.size}"
                   f" (from {m.get('mask_from') or ds._labels.get('mask')}; 1 = use, 0 = bad)")
    if "frames_dtype" in m:
        kind = "integer counts" if m.get("integer_counts") else "floats"
        out.append(f"  stored as {m['frames_dtype']} ({kind}); default loss "
                   f"{'poisson' if m.get('integer_counts') else 'amplitude'}")
    if "detector_pixel_m" in m:
        out.append(f"  detector pixel {m['detector_pixel_m'] * 1e6:.4g} um at "
                   f"{m['detector_distance_m']:.4g} m; for a cone beam set data.source_to_sample_m "
                   "(effective pixel = pixel / M)")
    for key, what in (("energy_from", "energy"), ("basis_from", "detector axes"),
                      ("translations_from", "translations"), ("modality_from", "modality"),
                      ("flat_dark", "flat/dark")):
        if m.get(key):
            out.append(f"  {what}: {m[key]}")
    if "scan_range_m" in m:
        rx, ry = m["scan_range_m"]
        out.append(f"  scan range x {rx * 1e6:.4g} um, y {ry * 1e6:.4g} um")
    return out


def estimate_memory_bytes(dataset: Dataset, object_shape, n_slices: int, batch: int,
                          dtype="complex64") -> int:
    """Rough peak memory (bytes) of a reconstruction run; within a factor ~2.

    Counts: object parameters (delta and beta, each ``object_shape`` real) times 4 (value,
    gradient, two Adam moments) plus a rotated copy for tomography; the forward tape of one batch
    (``batch`` windows x probe modes x ``n_slices`` x about 4 complex arrays per slice: incident,
    transmitted, propagated wave and transmission); the batch of measured frames; the probe.
    """
    c = np.dtype(dtype).itemsize if np.dtype(dtype).kind == "c" else 2 * np.dtype(dtype).itemsize
    r = c // 2
    n_obj = int(np.prod(object_shape))
    obj = 2 * n_obj * r * 4 + (2 * n_obj * r * 2 if dataset.n_angles > 1 else 0)
    n_modes = 1 if dataset.probe is None else dataset.probe.shape[0]
    win = int(np.prod(dataset.frame_shape))
    tape = int(batch) * n_modes * max(int(n_slices), 1) * win * c * 4
    frames = int(batch) * win * r * 3  # measured, model and residual
    probe = n_modes * win * c * 4
    return int(obj + tape + frames + probe)
