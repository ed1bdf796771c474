"""Opening data files: the registry of formats, each a sniffer and a reader.

:func:`open_dataset` opens a file and asks each registered :class:`Reader`, in order, whether the
file is its format (``sniff``); the first that says yes reads it into a
:class:`~.datafile.Dataset`. A reader of a new format:

1. write a module in ``engine/io/`` with ``sniff(path, h5) -> bool`` (``h5`` is the open h5py
   file when the file is HDF5, else None; look at the layout only, read no frames) and
   ``read(path) -> Dataset`` (geometry converted to SI, frames wrapped in a frame source with the
   right :class:`~.frames.FrameConversion`, problems raised as :class:`DataFileError` naming the
   dataset and the fix);
2. add one ``register_reader(Reader(...))`` line below.

The field (near or far) is the user's to state (:class:`~.field.DataStatements`). A format whose
layout fixes it is checked against the statements here; a format that must guess it from the
frames (CXI) takes them: ``read(path, statements)`` with ``takes_statements=True``, and records
its :class:`~.field.FieldDecision` in ``meta["field"]``.

More specific formats go first (a generic sniffer must not claim a file another one reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError, DataFileError
from . import adorym, cxi, dxchange, slicewise_format
from .counts import frames_are_counts
from .datafile import Dataset
from .field import DataStatements, FieldDecision, check_file_field
from .hdf5 import h5py_module, refuse_external
from .object_grid import object_grid_note


@dataclass(frozen=True)
class Reader:
    """A data-file format: ``sniff(path, h5_or_None) -> bool`` and ``read(path) -> Dataset``."""

    name: str
    sniff: Callable
    read: Callable[[str], Dataset]
    layout: str  # one line: what the file holds, for messages ("frames in /exchange/data")
    takes_statements: bool = False  # read(path, statements): the reader settles the field itself


READERS: list[Reader] = []


def register_reader(reader: Reader) -> Reader:
    """Add a format (replacing one of the same name, keeping its place)."""
    for i, r in enumerate(READERS):
        if r.name == reader.name:
            READERS[i] = reader
            return reader
    READERS.append(reader)
    return reader


register_reader(Reader("slicewise", lambda path, h5: h5 is not None and slicewise_format.sniff(h5),
                       slicewise_format.read_slicewise, "Slicewise data file (/data/intensities)"))
register_reader(Reader("cxi", lambda path, h5: h5 is not None and cxi.is_cxi(h5), cxi.read_cxi,
                       "CXI file (entry_1/instrument_1/detector_1)", takes_statements=True))
# DXchange before Adorym: both keep frames in exchange/data, DXchange adds data_white/theta
register_reader(Reader("dxchange", lambda path, h5: h5 is not None and dxchange.is_dxchange(h5),
                       dxchange.read_dxchange, "DXchange file (exchange/data with data_white/theta)"))
register_reader(Reader("adorym", lambda path, h5: h5 is not None and adorym.sniff(h5),
                       adorym.read_adorym, "Adorym-style file (exchange/data + metadata)"))


#: Suffixes of HDF5-based formats: such a file that is not HDF5 is reported as broken.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".cxi", ".nxs")


def _sniff(path: Path, allow_external: bool) -> Reader | None:
    h5py = h5py_module()
    try:
        h5 = h5py.File(path, "r") if h5py.is_hdf5(path) else None
    except OSError as exc:
        h5, why = None, str(exc)
    else:
        why = "no HDF5 signature"
    if h5 is None and path.suffix.lower() in HDF5_SUFFIXES:
        raise DataFileError(f"{path}: not a readable HDF5 file ({' '.join(why.split())})")
    try:
        if h5 is not None:
            refuse_external(h5, path, allow_external)
        return next((r for r in READERS if r.sniff(path, h5)), None)
    finally:
        if h5 is not None:
            h5.close()


def open_dataset(path, *, allow_external: bool = False,
                 statements: DataStatements | None = None) -> Dataset:
    """Open a data file of any registered format (detected from its content).

    ``allow_external``: follow HDF5 external links, external raw storage and virtual datasets
    that point to other files (refused by default: a data file could read any local file).
    ``statements``: what the user stated about the data (near or far field, far-field frame
    order; :func:`~.field.statements_from_keys`); they decide over any guess, and a file whose
    layout contradicts them is refused. ``meta["field"]`` says how the field was settled.
    A damaged file is a :class:`DataFileError`, whatever h5py raised.
    """
    p = Path(path)
    if p.is_dir():
        raise DataFileError(f"{path} is a folder, not a data file; give the HDF5 file in it "
                            "(data.path)")
    if not p.is_file():
        raise DataFileError(f"{path}: no such data file")
    try:
        reader = _sniff(p, allow_external)
        if reader is None:
            raise DataFileError(f"{path}: not a data file Slicewise reads; expected one of: "
                                + "; ".join(r.layout for r in READERS)
                                + " (docs/real-data.md describes the layouts)")
        return _read(reader, str(path), statements)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, SystemError) as exc:
        # h5py's view of a damaged file (bad headers, addresses past the end, odd types; an error
        # inside its iteration comes out as SystemError)
        raise DataFileError(f"{path}: the HDF5 file is damaged or its metadata are not what the "
                            f"format needs ({' '.join(str(exc).split())[:160]}); copy the file "
                            "again or repair it") from None


def _read(reader: Reader, path: str, statements: DataStatements | None) -> Dataset:
    if reader.takes_statements:
        return reader.read(path, statements)
    ds = reader.read(path)
    where = f"{reader.name} layout, {ds.labels.get('modality', 'modality')}"
    try:
        check_file_field(ds.modality, where, statements)
    except ConfigError:
        ds.close()
        raise
    ds.meta["field"] = FieldDecision(ds.modality, "file", where).as_meta()
    return ds


def field_line(ds: Dataset, short: bool = False) -> str:
    """How the data set's field was settled, in words: ``near field (data.field)``, ``far field
    (guessed from ...)``; ``short``: only where it came from (``guessed from the frames``)."""
    d = ds.meta.get("field")
    if not d:
        return "given with the data set" if short else f"{ds.modality} data"
    decision = FieldDecision(d["modality"], d["source"], d["reason"])
    return decision.short() if short else decision.describe()


def describe_file(path, statements: DataStatements | None = None, allow_external: bool = False,
                  source_to_sample_m: float | None = None) -> str:
    """A few human-readable lines about a data file (for ``slicewise info`` and the GUI), read
    as ``statements`` say (see :func:`open_dataset`); with ``source_to_sample_m`` (a cone beam)
    also the effective geometry."""
    ds = open_dataset(path, statements=statements, allow_external=allow_external)
    try:
        lines = [f"{path}: {ds.meta.get('layout', '?')} layout, {ds.modality} data",
                 f"  field: {field_line(ds)}"]
        if ds.meta.get("farfield_order"):
            lines.append(f"  far-field frames: {ds.meta['farfield_order']}")
        lines += [
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
        lines.extend(_describe_real(ds, source_to_sample_m))
        note = object_grid_note(ds)
        if note:
            lines.append(f"  note: {note}")
        if len(ds.truth):
            lines.append(f"  ground truth: {', '.join(ds.truth)}")
        return "\n".join(lines)
    finally:
        ds.close()


def _cone_beam_line(ds: Dataset, z1: float) -> str:
    """The Fresnel scaling theorem's effective geometry for a focus ``z1`` before the sample."""
    z2 = float(ds.distances_m[0])
    m = (z1 + z2) / z1
    return (f"  cone beam (data.source_to_sample_m = {z1 * 1e3:.4g} mm): magnification "
            f"{m:.4g}, effective pixel {ds.pixel_size_m / m * 1e9:.4g} nm, effective distance "
            f"{z2 / m * 1e3:.4g} mm")


def _describe_real(ds: Dataset, source_to_sample_m: float | None = None) -> list[str]:
    """Lines on what a measured-data reader found (mask, counts, detector geometry)."""
    m = ds.meta
    out = []
    if ds.mask is not None:
        out.append(f"  detector mask: {int((ds.mask == 0).sum())} bad pixel(s) of {ds.mask.size}"
                   f" (from {m.get('mask_from') or ds.labels.get('mask')}; 1 = use, 0 = bad)")
    if m.get("integer_counts"):
        out.append(f"  stored as {m.get('frames_dtype', 'integers')} (integer counts, Poisson "
                   "noise); default loss amplitude (loss.kind = poisson fits their noise)")
    else:
        counts, why = frames_are_counts(ds)
        stored = f"stored as {m['frames_dtype']}" if "frames_dtype" in m else "floating point"
        hint = " (loss.kind = poisson fits their noise)" if counts else ""
        out.append(f"  {stored}: {why}; default loss amplitude{hint}")
    if "detector_pixel_m" in m:
        out.append(f"  detector pixel {m['detector_pixel_m'] * 1e6:.4g} um at "
                   f"{m['detector_distance_m']:.4g} m" + (
                       "; for a cone beam set data.source_to_sample_m (effective pixel = pixel / M)"
                       if ds.modality == "nearfield" and source_to_sample_m is None else ""))
    if source_to_sample_m is not None and ds.distances_m is not None:
        out.append(_cone_beam_line(ds, source_to_sample_m))
    mag = (m.get("field") or {}).get("magnification")
    if source_to_sample_m is None and mag and mag > 2 and ds.distances_m is not None:
        z2 = float(ds.distances_m[0])
        out.append(f"  the frames follow the scan as if magnified ~{mag:.3g}x: a cone beam from a "
                   f"focus ~{z2 / (mag - 1) * 1e3:.3g} mm before the sample? (state it as "
                   "data.source_to_sample_m)")
    for key, what in (("energy_from", "energy"), ("basis_from", "detector axes"),
                      ("translations_from", "translations"),
                      ("flat_dark", "flat/dark")):
        if m.get(key):
            out.append(f"  {what}: {m[key]}")
    if "scan_range_m" in m:
        rx, ry = m["scan_range_m"]
        out.append(f"  scan range x {rx * 1e6:.4g} um, y {ry * 1e6:.4g} um")
    return out
