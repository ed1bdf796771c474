"""CXI 1.x files (Coherent X-ray Imaging data bank format, HDF5) -> :class:`Dataset`.

What is read (``entry_1`` or the first ``entry_N``), and how it is converted at this boundary
(docs/real-data.md has the axes drawing and the reasons):

=============================================== ==================================================
``data_1/data`` or ``instrument_1/detector_1/   frames ``(n_frames, fy, fx)`` (any integer or float
data``                                          type), read lazily, one spot per frame, one angle.
                                                Soft/hard links are followed inside the file;
                                                external links are refused.
``detector_1/distance``                         sample-detector distance z2 (m)
``detector_1/x_pixel_size``, ``y_pixel_size``   detector pixel (m); must be square (within 1 %)
``detector_1/basis_vectors``                    ``(2, 3)`` lab (x, y, z) step of one pixel along
                                                the slow (row) and fast (column) axis (``(3, 2)``
                                                and per-frame ``(n, 2, 3)`` accepted); default
                                                slow = (0, -py, 0), fast = (-px, 0, 0)
``detector_1/mask``                             bit field, nonzero = bad pixel, except the value
                                                0x1000 ("signal above background", informational)
``source_1/energy`` (J) or ``wavelength`` (m)   -> energy in eV
``sample_1/geometry_1/translation``             ``(n_frames, 3)`` sample positions (m, lab x y z);
                                                also ``data_1/translation``
``source_1/illumination`` / ``probe``           optional complex probe of the frame shape
=============================================== ==================================================

Lab frame (CXI): right-handed, z along the beam, y up, x horizontal (to the left when looking
downstream). A translation moves the *sample*; the illuminated spot moves over the sample by
``-t``. Object-pixel positions (row, col) of each frame's window solve
``B_obj @ (row, col) = -t_xy`` where ``B_obj`` holds the xy parts of the basis vectors scaled to
the object plane (near field: the detector pixel; far field: ``lambda z / (N p)``), then shifted so
the smallest is 0. Units attributes (``units`` = m, mm, um, nm, J, eV, keV, A) are honoured when
present; unlabelled values are read in CXI's SI units (an energy that is obviously in eV or keV is
recognised and logged).

Near or far field: the user's statements decide (``statements``, :mod:`.field`: ``data.field``,
``model.kind``, ``data.source_to_sample_m``); otherwise a guess from the frames and the geometry
(:mod:`.field_guess`) does, and the dataset's ``meta["field"]`` says which. Far-field frames are
stored centred in CXI, but some writers keep the direct beam in the corners (FFT order):
``data.farfield_order`` states it, ``auto`` detects it (and says so in the log and
``meta["farfield_order"]``).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import DataFileError
from ..geometry import Geometry
from ..physics.constants import energy_ev as energy_from_wavelength
from ..physics.constants import wavelength_m
from .atomic import atomic_write
from .datafile import Dataset
from .field import DataStatements, decide_field, decide_order
from .field_guess import clean_mean_frame, guess_field, hot_pixels, scan_sample
from .frames import FrameConversion, LazyH5File, check_raw, refuse_complex
from .hdf5 import compression_kwargs, h5py_module, open_h5

log = logging.getLogger(__name__)

EV_J = 1.602176634e-19               # joules per electronvolt
CXI_SIGNAL_BIT = 0x1000              # CXI mask bit "pixel has signal above background": not bad
_LENGTH_UNITS = {"m": 1.0, "meter": 1.0, "metre": 1.0, "mm": 1e-3, "um": 1e-6, "micron": 1e-6,
                 "µm": 1e-6, "nm": 1e-9, "a": 1e-10, "angstrom": 1e-10, "cm": 1e-2}
_ENERGY_UNITS_EV = {"j": 1.0 / EV_J, "joule": 1.0 / EV_J, "ev": 1.0, "kev": 1e3}


def is_cxi(f) -> bool:
    """True when the open h5py file ``f`` looks like a CXI file."""
    return "cxi_version" in f or any(k.startswith("entry_") and
                                     f"{k}/instrument_1/detector_1" in f for k in f.keys())


# ---- small readers -----------------------------------------------------------------------------
def _units(dset) -> str | None:
    u = dset.attrs.get("units", dset.attrs.get("unit"))
    if u is None:
        return None
    u = u.decode() if isinstance(u, bytes) else str(u)
    return u.strip().lower()


def _scalar(g, name):
    d = g.get(name)
    if d is None:
        return None
    v = np.asarray(d[()], dtype=np.float64).reshape(-1)
    return (float(v[0]) if v.size else None), d


def _length(g, name, what) -> float | None:
    got = _scalar(g, name)
    if got is None or got[0] is None:
        return None
    v, d = got
    u = _units(d)
    if u is not None:
        if u not in _LENGTH_UNITS:
            raise DataFileError(f"{d.name}: unknown length unit {u!r} for the {what}")
        v *= _LENGTH_UNITS[u]
    return v


def _energy_ev(src) -> tuple[float, str]:
    """Photon energy (eV) from ``source_1``, and how it was found."""
    got = _scalar(src, "energy")
    if got is not None and got[0] is not None:
        v, d = got
        u = _units(d)
        if u in _ENERGY_UNITS_EV:
            return v * _ENERGY_UNITS_EV[u], f"{d.name} ({u})"
        if 1e-17 < v < 1e-12:
            return v / EV_J, f"{d.name} (J)"
        if 100 <= v <= 2e5:  # written in eV despite CXI's joules
            log.warning("%s = %g has no unit and is far too large for joules: read as eV", d.name, v)
            return v, f"{d.name} (read as eV)"
        if 0.1 <= v < 100:
            log.warning("%s = %g has no unit: read as keV", d.name, v)
            return v * 1e3, f"{d.name} (read as keV)"
        raise DataFileError(f"{d.name}: photon energy {v!r} is not plausible in joules (CXI), eV or "
                            "keV; set data.energy_ev in the configuration")
    lam = _length(src, "wavelength", "wavelength")
    if lam is not None and lam > 0:
        if lam > 1e-6:  # a wavelength in nm or A without a unit attribute
            raise DataFileError(f"{src.name}/wavelength = {lam!r} m is not an X-ray wavelength; "
                                "give it in metres (CXI) or add a units attribute")
        return energy_from_wavelength(lam), f"{src.name}/wavelength"
    raise DataFileError(f"{src.name}: neither energy (J) nor wavelength (m) is given; the photon "
                        "energy is needed (or set data.energy_ev)")


def _frames_dataset(f, entry: str):
    """The frame dataset (following links inside the file only) and its path."""
    for path in (f"{entry}/data_1/data", f"{entry}/instrument_1/detector_1/data"):
        parent, name = path.rsplit("/", 1)
        if parent not in f:
            continue
        link = f[parent].get(name, getlink=True)
        if link is None:
            continue
        if isinstance(link, h5py_module().ExternalLink):
            raise DataFileError(f"{path} is an external link to {link.filename}:{link.path}; "
                                "Slicewise reads links inside the file only. Copy the frames into "
                                "the file (e.g. h5copy) and open that")
        d = f[path]
        if not hasattr(d, "dtype"):
            continue
        return d, d.name
    raise DataFileError(f"{f.filename}: no frames at {entry}/data_1/data or "
                        f"{entry}/instrument_1/detector_1/data (CXI layout)")


def good_pixel_weights(mask, label: str = "mask") -> np.ndarray:
    """Detector weights (1 = use, 0 = bad) from a CXI mask.

    Convention followed (CXI 1.x and its readers, e.g. CDTools' ``get_mask``): the mask is a bit
    field and a pixel is bad when any bit is set, except the value 0x1000 alone, which only flags
    "signal above background". Boolean masks follow the same rule (True = bad). A 0/1 mask that
    would declare most of the detector bad was evidently written the other way (1 = good): it is
    read that way, with a warning (a detector mask marks a minority of pixels).
    """
    m = np.asarray(mask)
    if m.dtype.kind == "f":
        if not np.all(np.isfinite(m)):
            raise DataFileError(f"{label}: the mask holds NaN/inf values")
        m = np.rint(m).astype(np.int64)
    if m.dtype == bool:
        bad = m.copy()
    else:
        m = m.astype(np.int64)
        bad = (m != 0) & (m != CXI_SIGNAL_BIT)
    binary = bool(np.all((np.asarray(mask) == 0) | (np.asarray(mask) == 1)))
    if bad.mean() > 0.5 and binary:
        bad = ~bad
        # one line, the reading used (not the rejected one's "most pixels bad")
        log.warning("%s: read as a 0/1 mask with 1 = good pixel (%d bad pixel(s), %.2g %% of the "
                    "detector), not as CXI's nonzero = bad", label, int(bad.sum()), 100 * bad.mean())
    return (~bad).astype(np.float32)


def _basis(det, fy_fx_px) -> tuple[np.ndarray, str]:
    """xy parts of the slow/fast detector steps, ``(2, 2)`` columns (slow, fast), metres."""
    if "basis_vectors" in det:
        b = np.asarray(det["basis_vectors"][()], dtype=np.float64)
        if b.ndim == 3:  # one per frame: the detector does not move during a scan we can use
            b = b[0]
        if b.shape == (3, 2):
            b = b.T
        if b.shape != (2, 3) or not np.all(np.isfinite(b)):
            raise DataFileError(f"{det.name}/basis_vectors: expected (2, 3) lab vectors (slow, "
                                f"fast) in metres, got shape {b.shape}")
        u = _units(det["basis_vectors"])
        if u in _LENGTH_UNITS:
            b = b * _LENGTH_UNITS[u]
        return b[:, :2].T.copy(), "basis_vectors"
    py, px = fy_fx_px
    return np.array([[0.0, -px], [-py, 0.0]]), "default (slow = -y, fast = -x)"


def positions_from_translations(translations_m, basis_xy_m, object_pixel_scale: float) -> np.ndarray:
    """Top-left window positions ``(n, 2)`` (row, col) in object pixels, smallest at 0.

    translations_m: ``(n, 3)`` or ``(n, 2)`` sample positions (lab x, y[, z], m).
    basis_xy_m: ``(2, 2)``, columns = lab (x, y) of one detector step along rows and columns.
    object_pixel_scale: object pixel / detector pixel (1 for a plane-wave near field).
    The spot on the sample moves by ``-t`` when the sample moves by ``t``.
    """
    t = np.asarray(translations_m, dtype=np.float64)[:, :2]
    b = np.asarray(basis_xy_m, dtype=np.float64) * object_pixel_scale
    if abs(np.linalg.det(b)) < 1e-30 * max(np.abs(b).max(), 1e-300) ** 2 or \
            np.linalg.matrix_rank(b) < 2:
        raise DataFileError("detector basis_vectors: the slow and fast steps have parallel xy "
                            "parts; cannot map sample translations onto the frame axes")
    rc = np.linalg.solve(b, -t.T).T
    return rc - rc.min(axis=0)


def _translations(f, entry: str, n: int):
    for path in (f"{entry}/sample_1/geometry_1/translation", f"{entry}/data_1/translation",
                 f"{entry}/instrument_1/detector_1/translation",
                 f"{entry}/sample_1/geometry_1/position"):
        if path in f:
            d = f[path]
            t = np.asarray(d[()], dtype=np.float64)
            if t.ndim == 2 and t.shape[0] in (2, 3) and t.shape[1] == n and n not in (2, 3):
                t = t.T
            if t.ndim != 2 or t.shape[0] != n or t.shape[1] not in (2, 3):
                raise DataFileError(f"{path}: expected ({n}, 3) sample translations (m, lab x y z), "
                                    f"got shape {t.shape}")
            u = _units(d)
            if u in _LENGTH_UNITS:
                t = t * _LENGTH_UNITS[u]
            if not np.all(np.isfinite(t)):
                raise DataFileError(f"{path}: translations contain NaN/inf")
            return t, path
    return None, None


def _probe(f, entry: str, frame_shape):
    for path in (f"{entry}/instrument_1/source_1/illumination", f"{entry}/instrument_1/source_1/probe",
                 f"{entry}/instrument_1/detector_1/probe", f"{entry}/probe"):
        if path in f and hasattr(f[path], "dtype"):
            p = np.asarray(f[path][()])
            if p.shape[-2:] == tuple(frame_shape) and p.ndim in (2, 3):
                return p.astype(np.complex128), path
            log.info("%s has shape %s, not the frame shape %s: ignored", path, p.shape, frame_shape)
    return None, None


# ---- the lazy frame source ---------------------------------------------------------------------
class CxiSource(LazyH5File):
    """Frames ``(n_frames, fy, fx)`` of a CXI file as one angle of ``n_frames`` spots.

    Any integer or float type is read as float32. Bad (masked) pixels are set to 0 before any check
    (detectors store flags there: -1, 2^32-1 ...); they never reach the loss. Negative values in
    good pixels (background-subtracted floats) are clipped to 0.
    """

    def __init__(self, path: str, name: str, shape, bad=None, conversion=FrameConversion()):
        self.path, self.name, self.label, self.conversion = path, name, name, conversion
        self.shape = (1, int(shape[0]), int(shape[1]), int(shape[2]))
        self.bad = None if bad is None or not np.any(bad) else np.asarray(bad, bool)

    def _dataset(self):
        return self._h5()[self.name]

    def read(self, a_idx: np.ndarray, s_idx: np.ndarray, check: bool = True) -> np.ndarray:
        if np.any(np.asarray(a_idx) != 0):
            raise IndexError("a CXI file holds one angle: angle index must be 0")
        s_u, s_inv = np.unique(s_idx, return_inverse=True)
        dset = self._dataset()
        refuse_complex(dset.dtype, self.name)
        span = int(s_u[-1] - s_u[0] + 1) if len(s_u) else 0
        if len(s_u) and span == len(s_u):
            raw = np.asarray(dset[int(s_u[0]):int(s_u[-1]) + 1], dtype=np.float32)
        elif len(s_u) and span <= 4 * len(s_u):
            # h5py's list selection is slow (per-element); a slice read and a take is not, for
            # spread indices such as every other frame (a split half)
            raw = np.asarray(dset[int(s_u[0]):int(s_u[-1]) + 1][s_u - s_u[0]], dtype=np.float32)
        else:
            raw = np.asarray(dset[s_u.tolist()], dtype=np.float32)
        if self.bad is not None:
            raw[:, self.bad] = 0
        np.maximum(raw, 0, out=raw)
        if check:
            check_raw(raw, self.name, "", lambda i: f"{int(s_u[i])}")
        out = raw[s_inv.ravel()][None].repeat(len(a_idx), axis=0)
        return self.conversion.to_model(out)


def _detector_geometry(det) -> dict:
    """Distance (m), square pixel (m) and the xy basis of a ``detector_1`` group."""
    dist = _length(det, "distance", "sample-detector distance")
    if dist is None and "corner_position" in det:
        dist = float(np.asarray(det["corner_position"][()], float).reshape(-1)[2])
    if dist is None or not dist > 0:
        raise DataFileError(f"{det.name}/distance: the sample-detector distance (m) is missing "
                            "or not positive")
    px = _length(det, "x_pixel_size", "pixel size")
    py = _length(det, "y_pixel_size", "pixel size")
    basis, basis_from = _basis(det, (py or px or 1.0, px or py or 1.0))
    default = basis_from.startswith("default")
    if px is None and py is None:
        if default:
            raise DataFileError(f"{det.name}: x_pixel_size / y_pixel_size (m) are missing")
        py, px = (float(np.linalg.norm(b)) for b in basis.T)
    px, py = px or py, py or px
    if abs(px - py) > 0.01 * max(px, py):
        raise DataFileError(f"{det.name}: pixels are {px:g} x {py:g} m; Slicewise needs square "
                            "pixels (rebin the frames first)")
    pixel = 0.5 * (px + py)
    if default:
        basis = np.array([[0.0, -pixel], [-pixel, 0.0]])
    return {"distance": dist, "pixel": pixel, "basis": basis, "basis_from": basis_from}


def _read_layout(path: str) -> dict:
    """Everything but the frames, read from the file (which is closed again)."""
    with open_h5(path) as f:
        entries = sorted(k for k in f.keys() if k.startswith("entry_"))
        if not entries:
            raise DataFileError(f"{path}: no entry_1 group (CXI layout)")
        entry = entries[0]
        dset, dname = _frames_dataset(f, entry)
        if dset.ndim != 3:
            raise DataFileError(f"{dname}: expected a stack of frames (n_frames, fy, fx), got "
                                f"shape {dset.shape}")
        n, fy, fx = (int(v) for v in dset.shape)
        det_path, src_path = f"{entry}/instrument_1/detector_1", f"{entry}/instrument_1/source_1"
        for group, what in ((det_path, "detector"), (src_path, "source (energy)")):
            if group not in f:
                raise DataFileError(f"{path}: {group} ({what}) is missing (CXI layout)")
        det = f[det_path]
        out = {"entry": entry, "frames": dname, "shape": (n, fy, fx), "dtype": dset.dtype,
               "det": det.name, **_detector_geometry(det)}
        out["energy_ev"], out["energy_from"] = _energy_ev(f[src_path])
        out["weights"], out["mask_from"] = None, None
        if "mask" in det:
            w = good_pixel_weights(det["mask"][()], det["mask"].name)
            if w.shape != (fy, fx):
                raise DataFileError(f"{det['mask'].name}: mask shape {w.shape} differs from the "
                                    f"frame shape {(fy, fx)}")
            out["weights"], out["mask_from"] = w, det["mask"].name
        out["trans"], out["trans_from"] = _translations(f, entry, n)
        out["probe"], out["probe_from"] = _probe(f, entry, (fy, fx))
    return out


def flagged_pixels(raw: np.ndarray, dtype) -> np.ndarray:
    """Pixels ``(fy, fx)`` (True = bad) that a detector flagged in the frames themselves.

    raw: ``(k, fy, fx)`` frames as stored (not clipped). Detectors without a written mask mark dead
    or saturated pixels in the data: the integer type's maximum (2^32-1, 65535, 2^31-1 ...) or a
    negative value (-1, -2) in any frame, or 0 in every frame where the neighbourhood holds > 50
    counts (a dead pixel; Poisson P(0 | 50) ~ 1e-22). Hot pixels (far brighter than all their
    neighbours in most frames, :func:`~.field_guess.hot_pixels`) are bad too.
    """
    raw = np.asarray(raw)
    bad = np.zeros(raw.shape[1:], bool)
    if np.issubdtype(np.dtype(dtype), np.integer):
        bad |= np.any(raw == np.iinfo(np.dtype(dtype)).max, axis=0)
        bad |= np.any(raw < 0, axis=0)
    clean = np.where(bad, 0, raw).astype(np.float64).mean(axis=0)
    pad = np.pad(clean, 1, mode="edge")
    neigh = np.median(np.stack([pad[1 + dy:1 + dy + clean.shape[0], 1 + dx:1 + dx + clean.shape[1]]
                                for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]), axis=0)
    bad |= np.all(raw == 0, axis=0) & (neigh > 50)
    bad |= hot_pixels(raw, ~bad)
    return bad


def _sample_indices(n: int, trans) -> tuple[np.ndarray, list]:
    """Frames a look at the data reads: neighbours across the scan (for the field guess's
    translation cue) or 16 frames spread over the file; and the neighbour pairs among them."""
    if trans is not None and n > 4:
        return scan_sample(trans)
    return np.unique(np.linspace(0, n - 1, min(n, 16)).astype(int)), []


def _flags_in_frames(path: str, g: dict, idx: np.ndarray) -> np.ndarray:
    with open_h5(path) as f:
        raw = np.asarray(f[g["frames"]][idx.tolist()])
    return flagged_pixels(raw, g["dtype"])


def _bad_pixels(path: str, g: dict, idx) -> tuple:
    """Detector weights (1 = use; the file's mask and the pixels flagged in the frames) and the
    bad-pixel map, or ``(None, None)`` when every pixel is good."""
    fy, fx = g["shape"][1:]
    weights = g["weights"]
    flagged = _flags_in_frames(path, g, idx)
    if weights is not None:
        flagged &= weights != 0
    if flagged.any():
        log.warning("%s: %d pixel(s) flagged in the frames themselves (the type's maximum, "
                    "negative, 0 in every frame among bright neighbours, or hot) and not in %s: "
                    "treated as bad pixels", g["frames"], int(flagged.sum()),
                    g["mask_from"] or "a mask (the file has none)")
        weights = (np.ones((fy, fx), np.float32) if weights is None else weights.copy())
        weights[flagged] = 0
        g["mask_from"] = (g["mask_from"] + " + " if g["mask_from"] else "") + \
            f"{int(flagged.sum())} pixel(s) flagged in the frames"
    return weights, (None if weights is None else weights == 0)


def read_cxi(path, statements: DataStatements | None = None) -> Dataset:
    """Open a CXI file as a :class:`Dataset` (see the module docstring for the conventions);
    ``statements``: what the user stated about the field and the far-field order."""
    path = str(path)
    g = _read_layout(path)
    n, fy, fx = g["shape"]
    trans = g["trans"]
    if trans is None and n > 1:
        raise DataFileError(f"{path}: {n} frames but no sample translations "
                            f"({g['entry']}/sample_1/geometry_1/translation, m)")
    idx, pairs = _sample_indices(n, trans)
    weights, bad = _bad_pixels(path, g, idx)
    source = CxiSource(path, g["frames"], g["shape"], bad)
    look = source.read(np.zeros(1, int), idx)[0]          # raw (bad pixels 0), not re-ordered
    good = None if bad is None else ~bad
    decision = decide_field(statements, lambda: guess_field(
        look, good, energy_ev=g["energy_ev"], distance_m=g["distance"], pixel_m=g["pixel"],
        translations_m=None if trans is None else trans[idx], pairs=pairs))
    log.info("%s: %s", path, decision.describe())
    modality, scale, order, fft = decision.modality, 1.0, None, None
    if modality == "farfield":
        fft, order = decide_order(statements, clean_mean_frame(look, good)[0], path)
        source.conversion = FrameConversion(centered=not fft)
        if weights is not None and not fft:
            weights = np.fft.ifftshift(weights)
        # object pixel lambda z / (N p)
        scale = wavelength_m(g["energy_ev"]) * g["distance"] / (max(fy, fx) * g["pixel"]) / g["pixel"]
    positions = None if trans is None else positions_from_translations(trans, g["basis"], scale)
    meta = {"layout": "cxi", "frames_dataset": g["frames"], "frames_dtype": str(g["dtype"]),
            "integer_counts": bool(np.issubdtype(g["dtype"], np.integer)),
            "detector_pixel_m": g["pixel"], "detector_distance_m": g["distance"],
            "energy_from": g["energy_from"], "basis_from": g["basis_from"],
            "translations_from": g["trans_from"], "mask_from": g["mask_from"],
            "n_bad_pixels": 0 if bad is None else int(bad.sum()), "probe_from": g["probe_from"],
            "field": decision.as_meta(), "farfield_order": order, "farfield_fft": fft}
    if trans is not None:
        meta["scan_range_m"] = (float(np.ptp(trans[:, 0])), float(np.ptp(trans[:, 1])))
    det = g["det"]
    labels = {"energy_ev": g["energy_from"], "pixel_size_m": f"{det}/x_pixel_size",
              "distances_m": f"{det}/distance", "positions_px": g["trans_from"] or "translation",
              "probe": g["probe_from"] or "probe", "mask": g["mask_from"] or "mask",
              "slice_thickness_m": f"{det}/x_pixel_size", "angles_rad": "(one angle)",
              "modality": decision.describe(), "object_shape_yx": "translations"}
    geometry = Geometry(modality=modality, energy_ev=g["energy_ev"],
                        pixel_size_m=g["pixel"] * scale, positions_px=positions,
                        distances_m=[g["distance"]] if modality == "nearfield" else None)
    return Dataset(source, geometry, probe=g["probe"], source_path=path, meta=meta,
                   labels=labels, mask=weights, n_sample_frames=0)


def write_cxi(path, frames, *, energy_ev: float, distance_m: float, pixel_size_m: float,
              translations_m=None, mask=None, probe=None, basis_vectors=None,
              data_link: bool = True, compression=None) -> None:
    """Write a CXI 1.x file the way beamline software does (tests, simulated twins).

    frames: ``(n, fy, fx)`` any dtype (integer counts are kept integer). energy_ev is stored in
    joules, lengths in metres. translations_m: ``(n, 3)`` sample positions (lab x, y, z).
    mask: CXI bit field (nonzero = bad) ``(fy, fx)``. basis_vectors: ``(2, 3)`` (default
    slow = (0, -p, 0), fast = (-p, 0, 0)). ``data_link``: ``entry_1/data_1/data`` is a soft link
    to the detector data, as CXI writers do.
    """

    h5py = h5py_module()
    frames = np.asarray(frames)
    ckw = compression_kwargs(compression)

    def writer(tmp):
        with h5py.File(tmp, "w") as f:
            f["cxi_version"] = 150
            f["number_of_entries"] = 1
            inst = f.create_group("entry_1/instrument_1")
            det = inst.create_group("detector_1")
            det.create_dataset("data", data=frames, chunks=(1,) + frames.shape[1:], **ckw)
            det["distance"] = float(distance_m)
            det["x_pixel_size"] = float(pixel_size_m)
            det["y_pixel_size"] = float(pixel_size_m)
            bv = (np.array([[0.0, -pixel_size_m, 0.0], [-pixel_size_m, 0.0, 0.0]])
                  if basis_vectors is None else np.asarray(basis_vectors, float))
            det["basis_vectors"] = bv
            if mask is not None:
                det["mask"] = np.asarray(mask).astype(np.uint32)
            src = inst.create_group("source_1")
            src["energy"] = float(energy_ev) * EV_J
            src["wavelength"] = wavelength_m(energy_ev)
            if probe is not None:
                src["illumination"] = np.asarray(probe, np.complex64)
            if translations_m is not None:
                f["entry_1/sample_1/geometry_1/translation"] = np.asarray(translations_m, float)
            d1 = f.create_group("entry_1/data_1")
            if data_link:
                d1["data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
                if translations_m is not None:
                    d1["translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")

    atomic_write(path, writer)
