"""Result and checkpoint files (HDF5) and TIFF export; every write is atomic.

Result/checkpoint layout (``format = "slicewise-result"``, ``format_version = 1``)::

    /                     attrs: format, format_version, kind ("result" | "checkpoint"),
                          version (software), epoch, best_epoch (the epoch /params holds when
                          the run kept its best validation state; 0 = the last), date (ISO 8601)
    /params/<name>        reconstructed parameters by ARCHITECTURE.md name: delta, beta (nz, ny, nx),
                          object (complex (nz, ny, nx)), probe (n_modes, py, px),
                          positions (n_pos, 2) px, distances (n_dist,) m
    /initial/<name>       starting values worth keeping, e.g. positions before refinement
    /loss/<term>          float64 (n_epochs,) per loss term ("total", "data", "tv", ...) and
                          "validation" (the held-out data's loss; NaN where not measured)
    /config               UTF-8 string dataset: the run's configuration as TOML text
    /optimizer/...        optimiser state: nested groups of arrays / scalars (optional)
    /extra/...            any other nested dict of arrays / scalars / strings (optional)

A crash during a write leaves the previous file intact (temporary file + ``os.replace``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tifffile

from .. import __version__
from ..backend import to_host
from ..errors import DataFileError
from .atomic import atomic_write
from .hdf5 import check_format_version, h5py_module, open_h5

RESULT_FORMAT = "slicewise-result"
RESULT_FORMAT_VERSION = 1
#: Bytes a result file needs beyond its arrays (HDF5 structure, attributes, small datasets).
FILE_OVERHEAD_BYTES = 2**20
#: Files up to this size are built in memory and written with one plain write, so that a full
#: disk is an ordinary error rather than a failure inside HDF5's close (seen to crash the process).
IN_MEMORY_LIMIT_BYTES = 512 * 2**20


def _write_tree(group, tree: Mapping) -> None:
    """Nested dict -> groups; arrays/scalars -> datasets; strings -> string datasets."""
    for key, value in tree.items():
        key = str(key)
        if isinstance(value, Mapping):
            _write_tree(group.require_group(key), value)
        elif isinstance(value, str):
            group[key] = value
        elif value is None:
            continue
        else:
            arr = np.asarray(to_host(value))
            if arr.dtype.kind in "OU":
                raise DataFileError(f"cannot store {group.name}/{key} of dtype {arr.dtype} in a "
                                    "result file; use numeric arrays or strings")
            group[key] = arr


def _tree_nbytes(tree) -> int:
    """Bytes of the arrays in a nested dict (what a file holding them needs, before overhead)."""
    if isinstance(tree, Mapping):
        return sum(_tree_nbytes(v) for v in tree.values())
    if tree is None or isinstance(tree, str):
        return len(tree or "")
    return int(getattr(tree, "nbytes", np.asarray(tree).nbytes))


def _read_tree(group) -> dict:
    out = {}
    for key, item in group.items():
        if hasattr(item, "keys"):
            out[key] = _read_tree(item)
        else:
            v = item[()]
            if isinstance(v, bytes):
                v = v.decode("utf-8")
            elif isinstance(v, np.generic):
                v = v.item()  # 0-d datasets come back as Python scalars
            out[key] = v
    return out


def write_result(path, params: Mapping, *, loss_history: Mapping | None = None,
                 config_toml: str = "", epoch: int = 0, initial: Mapping | None = None,
                 optimizer_state: Mapping | None = None, extra: Mapping | None = None,
                 kind: str = "result", best_epoch: int = 0) -> None:
    """Write a result (or checkpoint) file atomically.

    Parameters
    ----------
    params: arrays by parameter name (``delta``, ``beta``, ``object``, ``probe``, ``positions``,
        ``distances``); NumPy or CuPy.
    loss_history: ``{term: sequence of per-epoch values}``.
    config_toml: the configuration as TOML text.
    epoch: epochs completed.
    initial: e.g. ``{"positions": initial_positions}``.
    optimizer_state: nested dict of arrays / scalars (e.g. Adam moments and step count).
    extra: anything else, nested dict of arrays / scalars / strings.
    kind: ``"result"`` or ``"checkpoint"``.
    best_epoch: the epoch whose estimate ``params`` holds when it is not the last (the best
        validation loss); 0 = the last epoch's, or no validation.
    """

    if kind not in ("result", "checkpoint"):
        raise DataFileError(f"kind must be 'result' or 'checkpoint', got {kind!r}")
    h5py = h5py_module()

    def fill(f):
        f.attrs["format"] = RESULT_FORMAT
        f.attrs["format_version"] = RESULT_FORMAT_VERSION
        f.attrs["kind"] = kind
        f.attrs["version"] = __version__
        f.attrs["epoch"] = int(epoch)
        f.attrs["best_epoch"] = int(best_epoch)
        f.attrs["date"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        _write_tree(f.create_group("params"), params)
        _write_tree(f.create_group("initial"), initial or {})
        loss = f.create_group("loss")
        for term, values in (loss_history or {}).items():
            loss[str(term)] = np.asarray(values, dtype=np.float64).reshape(-1)
        f["config"] = config_toml
        if optimizer_state:
            _write_tree(f.create_group("optimizer"), optimizer_state)
        if extra:
            _write_tree(f.create_group("extra"), extra)

    size = (_tree_nbytes(params) + _tree_nbytes(initial) + _tree_nbytes(optimizer_state)
            + _tree_nbytes(extra) + _tree_nbytes(dict(loss_history or {})) * 2 + len(config_toml)
            + FILE_OVERHEAD_BYTES)

    def writer(tmp):
        if size <= IN_MEMORY_LIMIT_BYTES:
            with h5py.File(tmp, "w", driver="core", backing_store=False) as f:
                fill(f)
                f.flush()
                image = f.id.get_file_image()
            with open(tmp, "wb") as out:
                out.write(image)
        else:
            with h5py.File(tmp, "w") as f:
                fill(f)

    atomic_write(path, writer, expected_bytes=size)


def read_result(path, *, allow_external: bool = False) -> dict:
    """Read a result/checkpoint file (refused when it would make HDF5 read other files, unless
    ``allow_external``: :func:`~.hdf5.refuse_external`).

    Returns a dict with keys ``params``, ``initial``, ``loss`` (term -> float64 array),
    ``config_toml``, ``epoch``, ``best_epoch``, ``version``, ``kind``, ``date``, ``optimizer`` (dict, maybe
    empty), ``extra``. For convenience each parameter is also a top-level key
    (``res["delta"] is res["params"]["delta"]``) unless its name is one of those keys.
    """
    with open_h5(path, allow_external=allow_external) as f:
        fmt = f.attrs.get("format", b"")
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        if fmt != RESULT_FORMAT or "params" not in f:
            raise DataFileError(f"{path}: not a Slicewise result file (attribute format="
                                f"{fmt!r}, expected {RESULT_FORMAT!r} and a /params group)")
        check_format_version(f.attrs, RESULT_FORMAT_VERSION, path, "result file")
        cfg = f["config"][()] if "config" in f else b""
        out = {
            "params": _read_tree(f["params"]),
            "initial": _read_tree(f["initial"]) if "initial" in f else {},
            "loss": {k: np.asarray(v[()]) for k, v in f["loss"].items()} if "loss" in f else {},
            "config_toml": cfg.decode("utf-8") if isinstance(cfg, bytes) else str(cfg),
            "epoch": int(f.attrs.get("epoch", 0)),
            "best_epoch": int(f.attrs.get("best_epoch", 0)),
            "version": str(f.attrs.get("version", "")),
            "kind": str(f.attrs.get("kind", "result")),
            "date": str(f.attrs.get("date", "")),
            "optimizer": _read_tree(f["optimizer"]) if "optimizer" in f else {},
            "extra": _read_tree(f["extra"]) if "extra" in f else {},
        }
    for name, value in out["params"].items():
        out.setdefault(name, value)
    return out


def write_tiff_stack(path, volume, pixel_size_m: float) -> None:
    """Write a real 2-D image or 3-D stack ``(nz, ny, nx)`` as a float32 ImageJ TIFF, atomically.

    Resolution tags and the ImageJ ``spacing`` (z step) carry the voxel size in micrometres, so
    Fiji/ImageJ and napari show physical units. Complex volumes are refused: export the real
    and imaginary parts (or delta and beta) separately.
    """

    vol = np.asarray(to_host(volume))
    if np.iscomplexobj(vol):
        raise DataFileError(f"{Path(path).name}: a TIFF stack must be real; write the real and "
                            "imaginary parts (or delta and beta) as separate files")
    if vol.ndim not in (2, 3):
        raise DataFileError(f"{Path(path).name}: expected a 2-D image or a (nz, ny, nx) volume, "
                            f"got shape {vol.shape}")
    if not (pixel_size_m > 0):
        raise DataFileError(f"pixel_size_m must be positive, got {pixel_size_m!r}")
    um = float(pixel_size_m) * 1e6
    vol = np.ascontiguousarray(vol, dtype=np.float32)
    meta = {"unit": "um", "axes": "ZYX" if vol.ndim == 3 else "YX"}
    if vol.ndim == 3:
        meta["spacing"] = um

    atomic_write(path, lambda tmp: tifffile.imwrite(
        tmp, vol, imagej=True, resolution=(1.0 / um, 1.0 / um), metadata=meta))
