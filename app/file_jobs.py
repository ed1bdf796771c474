"""Background jobs behind File > Open: what an HDF5 file is, and what to show for a result.

These run on :class:`.tasks.TaskRunner` threads (reading and converting arrays is work the UI
thread must not do) and return plain data for the window to display.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slicewise.engine.errors import BadFrameError, DataFileError
from slicewise.engine.io.readers import open_dataset
from slicewise.engine.io.results import read_result
from slicewise.engine.quality.frc import read_frc
from slicewise.engine.recon import config as cfgmod

log = logging.getLogger("slicewise.app")


@dataclass
class VolumeSet:
    """Volumes for the 3D view, with their voxel sizes and the ground truth to compare with."""

    volumes: dict                       # name -> (nz, ny, nx) float
    pixel_size_m: float
    slice_thickness_m: float
    truth: dict = field(default_factory=dict)
    truth_voxel_m: tuple | None = None  # (slice thickness, pixel) of the truth grid
    title: str = ""


def object_volumes(delta, beta, obj) -> dict:
    """delta/beta as they are; a free complex object as phase and amplitude volumes."""
    if delta is not None or obj is None:
        return {k: v for k, v in (("delta", delta), ("beta", beta)) if v is not None}
    return {"phase": np.angle(obj).astype(np.float32), "amplitude": np.abs(obj).astype(np.float32)}


def load_hdf5(path: str):
    """A data file, a result file or an FRC table? Returns ``("data", Dataset)``,
    ``("result", result dict, VolumeSet)`` (the dict also holds ``best_epoch``, ``data_file``
    (:func:`find_data_file`) and ``frc_file`` (:func:`frc_near`)) or ``("frc", FRCResult,
    sources)``. A file that is none raises the data-file error, which explains the layouts."""
    if _format_of(path) == "slicewise-frc":
        return ("frc", *load_frc(path))
    try:
        return ("data", open_dataset(path))
    except DataFileError as data_exc:
        named = _name_bad_frames(path, data_exc)
        if named is not None:
            raise named from None
        try:
            res = read_result(path)
        except DataFileError:
            raise data_exc from None
        res["best_epoch"] = best_epoch_of(path)
        res["frc_file"] = frc_near(path)
        res["data_file"] = find_data_file(path, res)
        return ("result", res, result_volumes(path, res))


def _format_of(path: str) -> str:
    """The HDF5 file's ``format`` attribute ("" when it has none or is no HDF5 file)."""
    import h5py  # noqa: PLC0415

    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format", b"")
    except (OSError, ValueError):
        return ""
    return fmt.decode() if isinstance(fmt, bytes) else str(fmt)


def load_frc(path) -> tuple:
    """An FRC table (``read_frc``) and the two files it compared (its ``sources``)."""
    import h5py  # noqa: PLC0415

    res = read_frc(path)
    with h5py.File(path, "r") as f:
        sources = [s.decode() if isinstance(s, bytes) else str(s)
                   for s in np.atleast_1d(f["frc"].attrs.get("sources", []))]
    return res, sources


def frc_near(result_path) -> Path | None:
    """The FRC table of a split-half run next to a result: ``OUT/frc.h5`` for ``OUT/odd/
    result.h5`` (or beside the result)."""
    here = Path(result_path).resolve().parent
    for folder in (here, here.parent):
        if (folder / "frc.h5").is_file():
            return folder / "frc.h5"
    return None


def _name_bad_frames(path: str, exc: DataFileError) -> DataFileError | None:
    """The reader refused a sample frame ("LABEL: frames at ... contain NaN ..."): name every
    bad frame of that HDF5 dataset instead, so that they can be repaired in one go."""
    if not isinstance(exc, BadFrameError) or not exc.dataset:
        return None
    label = exc.dataset
    try:
        import h5py  # noqa: PLC0415

        with h5py.File(path, "r") as f:
            d = f[label]
            bad = []
            for a in range(d.shape[0]):
                block = np.asarray(d[a], dtype=np.float32)
                block = block.reshape((-1,) + block.shape[-2:])
                ok = (np.isfinite(block).all(axis=(1, 2))
                      & (np.nan_to_num(block).min(axis=(1, 2)) >= 0) & block.any(axis=(1, 2)))
                bad += [(a, int(s)) for s in np.flatnonzero(~ok)]
    except Exception:  # noqa: BLE001 - not a plain frame stack: keep the reader's message
        return None
    if not bad:
        return None
    listing = ", ".join(f"(angle {a}, position {s})" for a, s in bad[:12])
    more = f" and {len(bad) - 12} more" if len(bad) > 12 else ""
    return DataFileError(f"{label}: {len(bad)} frame(s) contain NaN, infinite or negative "
                         f"values or are zero everywhere: {listing}{more}. Measured frames must be "
                         "finite, non-negative intensities; repair or exclude those frames in the "
                         "file.")


def result_volumes(path: str, res: dict) -> VolumeSet:
    p, extra = res["params"], res.get("extra", {})
    px = float(extra.get("pixel_size_m", 1e-8))
    dz = float(extra.get("slice_thickness_m", px))
    truth, voxel = truth_for_result(path, res)
    return VolumeSet(object_volumes(p.get("delta"), p.get("beta"), p.get("object")), px, dz,
                     truth, voxel,
                     f"{Path(path).name} ({res.get('kind', 'result')}, epoch {res.get('epoch')})")


def data_file_candidates(path: str, res: dict) -> list[Path]:
    """Where the data file of the result at ``path`` may be, most likely first: data.path as
    written when absolute, the absolute path the run stored beside it, data.path relative to the
    result's folder and its parent (the configuration's folder, usually), and a file of that
    name next to the result (data moved along with the results)."""
    try:
        dp = cfgmod.from_toml(res.get("config_toml") or "").data.path
    except Exception:  # noqa: BLE001 - an old or hand-made result: no configuration
        dp = ""
    here = Path(path).resolve().parent
    out: list[Path] = []
    if dp and Path(dp).expanduser().is_absolute():
        out.append(Path(dp).expanduser())
    stored = res.get("extra", {}).get("data_path_absolute")
    if stored:
        out.append(Path(stored))
    if dp and not Path(dp).expanduser().is_absolute():
        out += [here / dp, here.parent / dp]
    names = {Path(x).name for x in (dp, stored) if x}
    out += [folder / name for name in sorted(names) for folder in (here, here.parent)]
    return list(dict.fromkeys(out))


def find_data_file(path: str, res: dict) -> Path | None:
    """The first of :func:`data_file_candidates` that exists, resolved; None when none does."""
    for cand in data_file_candidates(path, res):
        if cand.is_file():
            return cand.resolve()
    return None


def truth_of(ds) -> tuple[dict, tuple]:
    """The 3D ground-truth arrays of a data set and their voxel (slice thickness, pixel)."""
    return ({k: np.asarray(ds.truth[k]) for k in ds.truth if np.ndim(ds.truth[k]) == 3},
            (ds.slice_thickness_m, ds.pixel_size_m))


def truth_for_result(path: str, res: dict) -> tuple[dict, tuple | None]:
    """Ground truth of the data set a result was computed from, when that file is found
    (results do not store it), and its voxel size; ``({}, None)`` otherwise."""
    cand = find_data_file(path, res)
    if cand is not None:
        try:
            with open_dataset(cand) as ds:
                return truth_of(ds)
        except Exception:  # noqa: BLE001
            log.debug("no ground truth from %s", cand, exc_info=True)
    return {}, None


def history_from_result(res: dict) -> list[dict]:
    """Per-epoch records (as in ``Snapshot.history``) from a result's loss arrays; the
    validation loss (``/loss/validation``, NaN where absent) is a record's ``"validation"``,
    not a loss term."""
    loss = res.get("loss", {})
    if "total" not in loss:
        return []
    terms = [k for k in loss if k not in ("total", "validation")]
    val = np.asarray(loss.get("validation", []), float)
    out = []
    for i, v in enumerate(loss["total"]):
        rec = {"epoch": i + 1, "loss": float(v), "terms": {k: float(loss[k][i]) for k in terms}}
        if i < len(val) and np.isfinite(val[i]):
            rec["validation"] = float(val[i])
        out.append(rec)
    return out


def best_epoch_of(path: str) -> int:
    """The result's ``best_epoch`` root attribute (the epoch of the lowest validation loss;
    0 = none or not recorded)."""
    import h5py  # noqa: PLC0415 - h5py is the engine's; only this small read needs it here

    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs.get("best_epoch", 0))
    except (OSError, ValueError, TypeError):
        return 0


def checkpoint_epoch(path: str) -> int | None:
    """Epochs a checkpoint or result file has done (its ``epoch`` attribute); None when the
    file cannot be read as one (the run then says why)."""
    import h5py  # noqa: PLC0415

    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs["epoch"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def bad_frames(ds, budget_s: float = 20.0) -> tuple[list[tuple[int, int]], int]:
    """Frames the engine would refuse (NaN, infinite, negative): ``([(angle, spot), ...],
    number of angles checked)``. One angle is read at a time; a refused angle is re-read frame
    by frame to name the bad ones. Stops after ``budget_s`` seconds on very large files."""
    import time  # noqa: PLC0415

    t0 = time.perf_counter()
    bad: list[tuple[int, int]] = []
    checked = 0
    for a in range(ds.n_angles):
        try:
            ds.frames([a], None)
        except DataFileError:
            for s in range(ds.n_spots):
                try:
                    ds.frames([a], [s])
                except DataFileError:
                    bad.append((a, s))
        checked += 1
        if time.perf_counter() - t0 > budget_s:
            break
    return bad, checked


def config_of_result(path: str, res: dict, data_path: Path | None = None):
    """The configuration a result was computed with, ready to continue or rerun it from the
    form: data.path set to ``data_path`` (the data file found, see :func:`find_data_file`) and
    the output folder set to the result's own folder. None for a result without a readable
    configuration."""
    try:
        cfg = cfgmod.from_toml(res.get("config_toml") or "")
    except Exception:  # noqa: BLE001 - an old or hand-made result
        return None
    if data_path is not None:
        cfg.data.path = str(data_path)
    cfg.run.output_dir = str(Path(path).resolve().parent)
    return cfg
