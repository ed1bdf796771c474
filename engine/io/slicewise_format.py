"""The Slicewise HDF5 data-file format: sniff, read, write.

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

import numpy as np

from .. import __version__
from ..backend import to_host
from ..errors import DataFileError
from ..geometry import Geometry
from .atomic import atomic_write
from .datafile import DEFAULT_LABELS, Dataset
from .frames import FrameConversion, H5Source, LazyTruth
from .hdf5 import attr_text, check_format_version, compression_kwargs, h5py_module, open_h5

SLICEWISE_FORMAT = "slicewise"
SLICEWISE_FORMAT_VERSION = 1


def sniff(f) -> bool:
    """Whether the open HDF5 file ``f`` is a Slicewise data file."""
    return attr_text(f.attrs, "format", "") == SLICEWISE_FORMAT or "data/intensities" in f


def read_slicewise(path: str) -> Dataset:
    with open_h5(path) as f:
        if attr_text(f.attrs, "format", "") == SLICEWISE_FORMAT:
            check_format_version(f.attrs, SLICEWISE_FORMAT_VERSION, path, "data file")
        if "data/intensities" not in f:
            raise DataFileError(f"{path}: dataset /data/intensities is missing (Slicewise layout)")
        d = f["data/intensities"]
        if d.ndim != 4:
            raise DataFileError(f"/data/intensities: expected shape (n_angles, n_spots, fy, fx), "
                                f"got {d.shape}")
        conv = FrameConversion(attr_text(d.attrs, "quantity", "intensity"),
                               bool(d.attrs.get("centered", False)),
                               attr_text(d.attrs, "fft_norm", "ortho"))
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

        prov = {k: attr_text(f["provenance"].attrs, k) for k in f["provenance"].attrs} \
            if "provenance" in f else {}
        meta = _json_attr(prov.pop("meta", None), "/provenance attribute meta")
        geometry = Geometry(modality=attr_text(ga, "modality"), energy_ev=ga["energy_ev"],
                            pixel_size_m=ga["pixel_size_m"],
                            slice_thickness_m=ga.get("slice_thickness_m"),
                            angles_rad=opt("angles_rad"), positions_px=opt("positions_px"),
                            distances_m=opt("distances_m"), object_shape_yx=opt("object_shape_yx"))
        extras = dict(probe=np.asarray(f["probe"][()]) if "probe" in f else None,
                      mask=np.asarray(f["mask"][()]) if "mask" in f else None)
        truth_names = sorted(f["truth"].keys()) if "truth" in f else []
        if geometry.object_shape_yx is None:
            for key in ("delta", "beta", "object"):  # the object grid of a ground-truth volume
                if key in truth_names and f["truth"][key].ndim == 3:
                    geometry = geometry.replace(object_shape_yx=f["truth"][key].shape[1:])
                    break
        src = H5Source(path, "data/intensities", d.shape, conv)
    labels = {k: f"/geometry/{k}" for k in DEFAULT_LABELS}
    labels["probe"] = "/probe"
    labels["mask"] = "/mask"
    return Dataset(src, geometry, **extras, source_path=path, labels=labels,
                   truth=LazyTruth(path, "truth", truth_names),
                   meta={**meta, "layout": "slicewise", "provenance": prov})


def write_dataset(path, dataset: Dataset, truth=None, provenance=None, compression=None) -> None:
    """Write ``dataset`` in the Slicewise layout (module docstring), atomically.

    ``truth``: extra/overriding ground-truth arrays (merged over ``dataset.truth``).
    ``provenance``: parameters (JSON-serialisable dict) that produced the data.
    ``compression``: None, ``"gzip"``, ``"blosc"``, ``"lz4"`` or h5py keyword dict.
    Reading the file back gives identical arrays and geometry.
    """

    all_truth = {**{k: dataset.truth[k] for k in dataset.truth}, **(truth or {})}
    ckw = compression_kwargs(compression)
    h5py = h5py_module()

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
            if dataset.stated_object_shape_yx is not None:
                g["object_shape_yx"] = np.asarray(dataset.stated_object_shape_yx, dtype=np.int64)
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


def _json_attr(text, label: str) -> dict:
    """A JSON-object attribute (None or empty: ``{}``); malformed text is refused by name."""
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError) as exc:
        raise DataFileError(f"{label}: not valid JSON ({exc}); repair the attribute or delete it "
                            "(it only records how the file was made)") from None
    if not isinstance(value, dict):
        raise DataFileError(f"{label}: expected a JSON object, got {type(value).__name__}; repair "
                            "the attribute or delete it")
    return value
