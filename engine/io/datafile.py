"""The :class:`Dataset` every part of Slicewise reads measured or simulated data through.

A ``Dataset`` holds the geometry in SI units and reads frames lazily, already converted to the
**model convention** (ARCHITECTURE.md): intensities, float32 ``(n_angles, n_spots, fy, fx)``;
far-field frames as ``|fft2_ortho(psi)|^2`` unshifted (zero frequency at ``[0, 0]``), near-field
frames as ``|psi|^2``. Sources: the format readers (:mod:`.readers`) and :meth:`Dataset.from_arrays` (in memory). Everything is validated once at the boundary; problems are
:class:`DataFileError` messages naming the dataset/field and the expected form.

Spots: ``n_spots = n_distances x n_tiles``, distance-major (spot ``s`` is distance
``s // n_tiles``, tile ``s % n_tiles``). Far-field data have one "distance" (``distances_m`` is
None) and ``n_tiles = n_spots`` scan positions. ``positions_px`` always has ``n_spots`` rows.

Files are opened through :func:`.readers.open_dataset` (the registry of formats).
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import to_host
from ..errors import DataFileError
from ..geometry import (
    ENERGY_RANGE_EV,
    GEOMETRY_FIELDS,
    MODALITIES,
    PIXEL_RANGE_M,
    Geometry,
    is_tomography,
)
from .frames import ArraySource, FrameConversion, SubsetSource, check_raw, refuse_complex

MAX_ABS_POSITION_PX = 1e6           # beyond this, positions are surely in the wrong unit

DEFAULT_LABELS = {k: k for k in ("energy_ev", "pixel_size_m", "slice_thickness_m", "angles_rad",
                                  "positions_px", "distances_m", "probe", "modality",
                                  "object_shape_yx", "mask")}


class Dataset:
    """Geometry (SI units) plus lazily read frames in model convention.

    ``Dataset(source, geometry, probe=..., mask=..., ...)``: ``source`` is a frame source
    (:mod:`.frames`), ``geometry`` a :class:`~..geometry.Geometry`; both are checked here, and
    ``labels`` maps each geometry field to the name the file gave it, for the messages.

    Attributes
    ----------
    geometry: the checked :class:`~..geometry.Geometry`; its fields are also read-only attributes
    (properties reading it):
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

    def __init__(self, source, geometry: Geometry, *, probe=None, mask=None, source_path=None,
                 truth=None, meta=None, labels=None, n_sample_frames: int = 4):
        g = geometry
        self._source = source
        self.labels = {**DEFAULT_LABELS, **(labels or {})}   # geometry field -> the file's name
        lab = self.labels
        shape = tuple(source.shape)
        if len(shape) != 4 or min(shape) < 1:
            raise DataFileError(f"{source.label}: frames must have shape (n_angles, n_spots, fy, fx) "
                                f"with every size >= 1, got {shape}")
        n_a, n_s = shape[0], shape[1]
        self.frame_shape = (int(shape[2]), int(shape[3]))

        if g.modality not in MODALITIES:
            raise DataFileError(f"{lab['modality']}: modality must be one of {MODALITIES}, got "
                                f"{g.modality!r}")
        pixel = _ranged(g.pixel_size_m, PIXEL_RANGE_M, lab["pixel_size_m"], "pixel size", "m")
        # the checked geometry, completed field by field below (the checks read earlier fields)
        self.geometry = Geometry(
            g.modality, _ranged(g.energy_ev, ENERGY_RANGE_EV, lab["energy_ev"], "photon energy",
                                "eV"), pixel,
            slice_thickness_m=(pixel if g.slice_thickness_m is None else
                               _ranged(g.slice_thickness_m, PIXEL_RANGE_M,
                                       lab["slice_thickness_m"], "slice thickness", "m")),
            angles_rad=self._check_angles(g.angles_rad, n_a),
            object_shape_yx=self._check_object_shape(g.object_shape_yx))
        self.geometry = self.geometry.replace(distances_m=self._check_distances(g.distances_m, n_s))
        self.n_tiles = n_s // self.n_distances
        self.geometry = self.geometry.replace(positions_px=self._check_positions(g.positions_px, n_s))
        self.probe = self._check_probe(probe)
        self.mask = self._check_mask(mask)

        self.source_path = None if source_path is None else str(source_path)
        self.truth = {} if truth is None else truth
        self.meta = dict(meta or {})
        self._check_sample(n_sample_frames)

    # the geometry's fields, read from the one checked Geometry (not copies of it)
    modality = property(lambda self: self.geometry.modality,
                        doc='``"farfield"`` (ptychography / CDI) or ``"nearfield"`` (holography)')
    energy_ev = property(lambda self: self.geometry.energy_ev, doc="photon energy, eV")
    pixel_size_m = property(lambda self: self.geometry.pixel_size_m, doc="pixel size, m")
    slice_thickness_m = property(lambda self: self.geometry.slice_thickness_m,
                                 doc="multislice slice thickness, m")
    angles_rad = property(lambda self: self.geometry.angles_rad,
                          doc="float64 ``(n_angles,)`` rotation angles about y")
    positions_px = property(lambda self: self.geometry.positions_px,
                            doc="float64 ``(n_spots, 2)`` window corners ``(y, x)``, or None")
    distances_m = property(lambda self: self.geometry.distances_m,
                           doc="float64 ``(n_distances,)`` sample-detector distances, or None")
    wavelength_m = property(lambda self: self.geometry.wavelength_m, doc="wavelength, m")

    @property
    def stated_object_shape_yx(self) -> tuple[int, int] | None:
        """The object grid ``(ny, nx)`` as the file states it, or None (then inferred:
        :attr:`object_shape_yx`)."""
        return self.geometry.object_shape_yx

    # ---- validation helpers ----------------------------------------------------------------
    def _check_angles(self, angles_rad, n_a) -> np.ndarray:
        lab = self.labels["angles_rad"]
        if angles_rad is None:
            if n_a != 1:
                raise DataFileError(f"{lab} is missing: {n_a} rotation angles (first axis of the "
                                    "frames) need one angle each, in radians")
            angles_rad = [0.0]
        angles = _vector(angles_rad, lab, "rotation angles (rad)")
        if len(angles) != n_a:
            raise DataFileError(f"{lab}: {len(angles)} angles, but the frames have n_angles = {n_a} "
                                f"(first axis); expected shape ({n_a},)")
        return angles

    def _check_object_shape(self, object_shape_yx) -> tuple[int, int] | None:
        if object_shape_yx is None:
            return None
        osh = np.asarray(object_shape_yx)
        if osh.shape != (2,) or np.any(osh < 1) or np.any(osh != np.round(osh)):
            raise DataFileError(f"{self.labels['object_shape_yx']}: expected two positive integers "
                                f"(ny, nx), got {object_shape_yx!r}")
        return (int(osh[0]), int(osh[1]))

    def _check_distances(self, distances_m, n_s):
        lab = self.labels["distances_m"]
        if self.modality == "farfield":
            if distances_m is not None:
                raise DataFileError(f"{lab}: far-field data take no propagation distances (give "
                                    "modality='nearfield' for holography)")
            return None
        if distances_m is None:
            raise DataFileError(f"{lab} is missing: near-field data need the sample-detector "
                                "distance(s)")
        d = _vector(distances_m, lab, "distances")
        if len(d) == 0 or np.any(d <= 0):
            raise DataFileError(f"{lab}: distances must be positive, got {d.tolist()} m")
        if n_s % len(d):
            raise DataFileError(f"{lab}: {len(d)} distances do not divide n_spots = {n_s}; the spot "
                                "axis must be n_distances x n_tiles (distance-major)")
        return d

    def _check_positions(self, positions_px, n_s):
        lab = self.labels["positions_px"]
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
        grid = self.stated_object_shape_yx
        if grid is not None:
            bad |= (p[:, 0] >= grid[0]) | (p[:, 1] >= grid[1])
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise DataFileError(f"{lab}: position {i} (y, x) = {tuple(p[i].tolist())} puts the {fy}x{fx} "
                                f"window entirely outside the object grid "
                                f"{grid or '(starting at 0, 0)'}; "
                                "positions are the top-left corner in object pixels")
        return p

    def _check_probe(self, probe):
        if probe is None:
            return None
        lab = self.labels["probe"]
        p = np.asarray(probe)
        if p.ndim == 2:
            p = p[None]
        if p.ndim != 3 or p.shape[1:] != self.frame_shape:
            raise DataFileError(f"{lab}: expected a complex (n_modes, py, px) probe with (py, px) = "
                                f"frame shape {self.frame_shape}, got shape {np.shape(probe)}")
        p = p.astype(np.complex128)
        if not np.all(np.isfinite(p)):
            raise DataFileError(f"{lab}: probe contains NaN or infinite values")
        if not np.any(p):
            raise DataFileError(f"{lab}: the probe is zero everywhere; store the measured or "
                                "expected illumination, or remove it (a guess is then made)")
        return p

    def _check_mask(self, mask):
        if mask is None:
            return None
        m = np.asarray(mask, dtype=np.float32)
        if m.shape != self.frame_shape:
            raise DataFileError(f"{self.labels.get('mask', 'mask')}: detector mask shape {m.shape} "
                                f"differs from the frame shape {self.frame_shape}")
        if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
            raise DataFileError(f"{self.labels.get('mask', 'mask')}: detector weights must lie in "
                                "[0, 1] (1 = use the pixel, 0 = ignore it)")
        if m.sum() <= 0:
            raise DataFileError(f"{self.labels.get('mask', 'mask')}: the detector mask excludes "
                                "every pixel")
        return m

    def with_geometry(self, **changes) -> "Dataset":
        """A new Dataset on the same frames with some geometry replaced (``pixel_size_m``,
        ``distances_m``, ``positions_px``, ``slice_thickness_m``, ``object_shape_yx``), and
        optionally ``meta``, ``probe``, ``mask``; used for the cone-beam (Fresnel scaling)
        conversion to the effective geometry."""
        geo = {k: changes.pop(k) for k in list(changes) if k in GEOMETRY_FIELDS}
        kwargs = dict(probe=self.probe, source_path=self.source_path, truth=self.truth,
                      meta=self.meta, labels=self.labels, mask=self.mask)
        kwargs.update(changes)
        return Dataset(self._source, self.geometry.replace(**geo), **kwargs, n_sample_frames=0)

    def subset(self, angles=None, spots=None, label: str = "") -> "Dataset":
        """The frames of some ``angles`` and scan ``spots`` (index arrays; None = all), on the
        same object grid (so that two subsets reconstruct on identical grids), for split-half
        validation. Spots are scan positions of a one-distance data set; a data set with
        several distances is split by angle only. ``label`` is kept in ``meta["subset"]``."""
        a = np.arange(self.n_angles) if angles is None else np.asarray(angles, int)
        s = np.arange(self.n_spots) if spots is None else np.asarray(spots, int)
        if spots is not None and self.n_distances > 1:
            raise DataFileError("a subset of spots of a data set with several distances would "
                                "break the distance-major spot order; split by angle")
        if len(a) == 0 or len(s) == 0:
            raise DataFileError(f"{self.source_path or 'the data'}: an empty subset of frames")
        geo = self.geometry.replace(
            angles_rad=self.angles_rad[a],
            positions_px=None if self.positions_px is None else self.positions_px[s],
            object_shape_yx=self.object_shape_yx if self.positions_px is not None else None)
        return Dataset(SubsetSource(self._source, a, s), geo, probe=self.probe, mask=self.mask,
                       source_path=self.source_path, truth=self.truth,
                       meta={**self.meta, "subset": label or f"{len(a)} angles x {len(s)} spots"},
                       labels=self.labels, n_sample_frames=0)

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
    def conversion(self) -> FrameConversion:
        """How the stored frames are converted into model convention."""
        return self._source.conversion

    @property
    def object_shape_yx(self) -> tuple[int, int]:
        """Object grid ``(ny, nx)``: from the file when stated, else inferred from the windows.

        The grid starts at corner (0, 0) and reaches the far edge of the last window; but when
        windows overhang the near edge (negative corners, as in Adorym's demos), or, for
        tomography, start inside the object, the scan is taken as centred on the object: the grid
        ends as far inside the last window as the first window starts before 0. (Adorym's cone
        demo: corners -36..228, 72-px windows, 256 px: inferred 264, where the last window's edge
        gives 300 and a rotation axis 22 px off.) The object is padded with vacuum outside."""
        if self.stated_object_shape_yx is not None:
            return self.stated_object_shape_yx
        if self.positions_px is None:
            return tuple(self.frame_shape)
        pos = np.asarray(self.positions_px, float)
        return tuple(_scanned_extent(pos[:, i].min(), pos[:, i].max(), f, self.n_angles > 1)
                     for i, f in enumerate(self.frame_shape))

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
    def from_arrays(cls, intensities, geometry: Geometry, *, probe=None, mask=None, truth=None,
                    meta=None) -> Dataset:
        """In-memory data set; ``intensities`` float ``(n_angles, n_spots, fy, fx)`` in model
        convention (NumPy or CuPy), taken as described by ``geometry``. Same validation as files;
        all frames are checked."""

        host = to_host(intensities)
        refuse_complex(np.asarray(host).dtype, "intensities")
        arr = np.ascontiguousarray(host, dtype=np.float32)
        if arr.ndim != 4:
            raise DataFileError("intensities: expected shape (n_angles, n_spots, fy, fx), got "
                                f"{arr.shape}")
        if arr.size:
            check_raw(arr, "intensities", "(all)")
        return cls(ArraySource(arr), geometry, probe=probe, mask=mask, truth=truth,
                   meta={"layout": "memory", **(meta or {})}, n_sample_frames=0)


def spread_indices(n: int, k: int) -> np.ndarray:
    """Up to ``k`` indices of ``range(n)`` spread evenly from the first to the last, sorted and
    unique: the frames a quick look at a data set reads (a sample, a check batch)."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


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



def _scanned_extent(lo: float, hi: float, frame: int, tomo: bool) -> int:
    """Object width along one axis from the first and last window corners (see
    :attr:`Dataset.object_shape_yx`)."""
    far = max(frame, int(math.ceil(hi)) + frame)
    if -frame < lo < 0 or (tomo and lo > 0):
        return max(int(math.ceil(hi)) + 1, int(round(far + lo)))
    return far


def estimate_memory_bytes(dataset: Dataset, object_shape, n_slices: int, batch: int,
                          dtype="complex64") -> int:
    """Rough peak memory (bytes) of a reconstruction run; within a factor ~2.

    Counts: object parameters (delta and beta, each ``object_shape`` real) times 6 (value,
    gradient, two Adam moments and their copy from the start of the epoch, which a rollback
    returns to) plus a rotated copy for tomography; the forward tape of one batch
    (``batch`` windows x probe modes x ``n_slices`` x about 4 complex arrays per slice: incident,
    transmitted, propagated wave and transmission); the batch of measured frames; the probe.
    """
    c = np.dtype(dtype).itemsize if np.dtype(dtype).kind == "c" else 2 * np.dtype(dtype).itemsize
    r = c // 2
    n_obj = int(np.prod(object_shape))
    obj = 2 * n_obj * r * 6 + (2 * n_obj * r * 2 if is_tomography(dataset.angles_rad) else 0)
    n_modes = 1 if dataset.probe is None else dataset.probe.shape[0]
    win = int(np.prod(dataset.frame_shape))
    tape = int(batch) * n_modes * max(int(n_slices), 1) * win * c * 4
    frames = int(batch) * win * r * 3  # measured, model and residual
    probe = n_modes * win * c * 4
    return int(obj + tape + frames + probe)

