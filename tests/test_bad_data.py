"""Bad data are refused with the dataset name and the frame index, never taken as good: empty,
missing, complex or non-finite frames, files truncated or damaged, and links to other files."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from slicewise.cli.main import main
from slicewise.engine.errors import DataFileError
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.adorym import write_adorym
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.readers import open_dataset
from slicewise.engine.io.slicewise_format import write_dataset

N_SPOTS = 60


def frames(n_angles=1, n_spots=N_SPOTS, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 2.0, (n_angles, n_spots, 8, 8)).astype(np.float32)


def positions(n=N_SPOTS):
    return np.stack([np.arange(n) % 8, np.arange(n) // 8], axis=1).astype(float) * 2


def adorym(path, data=None, probe=None, **kw):
    data = frames() if data is None else data
    args = dict(modality="farfield", energy_ev=8000.0, pixel_size_m=1e-8,
                angles_rad=np.zeros(data.shape[0]), positions_px=positions(data.shape[1]))
    args.update(kw)
    if args.get("distances_m") is not None:
        args["modality"] = "nearfield"
    write_adorym(path, data, Geometry(**args), probe=probe)
    return path


def far_geometry():
    return Geometry(modality="farfield", energy_ev=8000, pixel_size_m=1e-8, positions_px=positions())


def assert_refused(path, *words, **kw):
    with pytest.raises(DataFileError) as info:
        ds = open_dataset(path, **kw)
        ds.frames(None, None)
    msg = str(info.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_all_zero_frames_are_refused_at_open(tmp_path):
    assert_refused(adorym(tmp_path / "zero.h5", np.zeros((1, N_SPOTS, 8, 8), np.float32)),
            "exchange/data", "(angle 0, spot 0)", "zero everywhere")


def test_one_zero_frame_is_named_when_read(tmp_path):
    data = frames()
    data[0, 37] = 0
    ds = open_dataset(adorym(tmp_path / "one.h5", data))  # the sample at open misses it
    with pytest.raises(DataFileError, match=r"exchange/data: frame \(angle 0, spot 37\) is zero"):
        ds.frames([0], np.arange(30, 45))


def test_bad_frame_names_its_own_index(tmp_path):
    data = frames()
    data[0, 50, 3, 3] = np.nan
    ds = open_dataset(adorym(tmp_path / "nan.h5", data))
    ds.frames([0], np.arange(0, 8))
    with pytest.raises(DataFileError) as info:
        ds.frames([0], np.arange(40, 60))
    assert "(angle 0, spot 50)" in str(info.value) and "NaN" in str(info.value)


def test_file_claiming_more_frames_than_it_stores(tmp_path):
    """A chunked dataset of 10^7 frames with one frame written: the missing chunks read as zeros."""
    path = tmp_path / "claims.h5"
    adorym(path, frames(n_spots=1), positions_px=None)
    with h5py.File(path, "r+") as f:
        del f["exchange/data"]
        d = f.create_dataset("exchange/data", shape=(10**7, 8, 8), dtype=np.float32, chunks=(1, 8, 8))
        d[0] = frames(n_spots=1)[0, 0]
        f["metadata/theta"][...] = 0  # theta is checked after the frames' shape
        del f["metadata/theta"]
        f["metadata/theta"] = np.zeros(10**7)
    assert os.path.getsize(path) < 200 * 2**20
    msg = assert_refused(path, "exchange/data", "zero everywhere")
    assert "(angle 0," not in msg and "(angle " in msg  # a frame the file never stored


def test_file_truncated_while_being_read(tmp_path):
    path = adorym(tmp_path / "t.h5", frames(n_angles=4, n_spots=N_SPOTS))
    ds = open_dataset(path)
    ds.frames([0, 1])
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)
    with pytest.raises(DataFileError, match="exchange/data") as info:
        ds.frames([2, 3])
    assert "shrank" in str(info.value) or "cannot be read" in str(info.value)


def test_complex_frames_are_refused(tmp_path):
    path = adorym(tmp_path / "c.h5")
    with h5py.File(path, "r+") as f:
        data = f["exchange/data"][()]
        del f["exchange/data"]
        f["exchange/data"] = data * (1 + 1j)
    assert_refused(path, "exchange/data", "complex")
    with pytest.raises(DataFileError, match="complex"):
        Dataset.from_arrays(frames() * 1j, far_geometry())


def test_frames_that_are_a_group(tmp_path):
    path = adorym(tmp_path / "g.h5")
    with h5py.File(path, "r+") as f:
        del f["exchange/data"]
        f.create_group("exchange/data").create_dataset("frames", data=frames())
    assert_refused(path, "exchange/data", "group")


def test_all_zero_probe(tmp_path):
    assert_refused(adorym(tmp_path / "p.h5", probe=np.zeros((8, 8), complex)), "probe", "zero everywhere")


def test_malformed_provenance_json(tmp_path):
    path = tmp_path / "s.h5"
    ds = Dataset.from_arrays(frames(), far_geometry())
    write_dataset(path, ds)
    with h5py.File(path, "r+") as f:
        f["provenance"].attrs["meta"] = '{"source": "beamline", '
    assert_refused(path, "/provenance attribute meta", "JSON")


def test_a_folder_given_as_the_data_file(tmp_path):
    msg = assert_refused(tmp_path, "is a folder")
    assert "no such" not in msg


def test_holography_without_distances_names_free_prop(tmp_path):
    path = adorym(tmp_path / "h.h5", frames(n_spots=2), positions_px=None, distances_m=[1e-3, 2e-3])
    with h5py.File(path, "r+") as f:
        del f["metadata/free_prop_cm"]
    msg = assert_refused(path, "metadata/free_prop_cm")
    assert msg.index("free_prop_cm") < msg.index("probe_pos_px")


def test_damaged_metadata_is_a_message_never_a_crash(tmp_path):
    """Random damage to the file: every outcome is the data or a DataFileError naming the file."""
    good = adorym(tmp_path / "good.h5", frames(n_spots=9), positions_px=positions(9))
    raw = good.read_bytes()
    rng = np.random.default_rng(1)
    outcomes = {"ok": 0, "refused": 0}
    for k in range(60):
        b = bytearray(raw)
        pos = int(rng.integers(0, len(raw) - 8))
        b[pos:pos + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        path = tmp_path / f"bad{k}.h5"
        path.write_bytes(bytes(b))
        try:
            with open_dataset(path) as ds:
                ds.frames(None, None)
            outcomes["ok"] += 1
        except DataFileError as exc:
            assert str(path) in str(exc) or "exchange/data" in str(exc) or "metadata/" in str(exc), exc
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] >= 10, outcomes


def _linked(tmp_path, how):
    target = adorym(tmp_path / "target.h5")
    path = adorym(tmp_path / f"{how}.h5")
    with h5py.File(path, "r+") as f:
        del f["exchange/data"]
        if how == "external link":
            f["exchange/data"] = h5py.ExternalLink(str(target), "/exchange/data")
        elif how == "external storage":
            raw = tmp_path / "frames.bin"
            raw.write_bytes(frames().tobytes())
            f.create_dataset("exchange/data", shape=(1, N_SPOTS, 8, 8), dtype=np.float32,
                             external=[(str(raw), 0, h5py.h5f.UNLIMITED)])
        else:
            layout = h5py.VirtualLayout(shape=(1, N_SPOTS, 8, 8), dtype=np.float32)
            layout[...] = h5py.VirtualSource(str(target), "exchange/data", shape=(1, N_SPOTS, 8, 8))
            f.create_virtual_dataset("exchange/data", layout)
    return path


@pytest.mark.parametrize("how", ["external link", "external storage", "virtual dataset"])
def test_links_to_other_files_are_refused_unless_allowed(how, tmp_path):
    path = _linked(tmp_path, how)
    assert_refused(path, "/exchange/data", "data.allow_external_links")
    with open_dataset(path, allow_external=True) as ds:
        assert ds.frames(None, None).shape == (1, N_SPOTS, 8, 8)


def test_cli_refuses_bad_data_in_one_line(tmp_path, capsys):
    data = _linked(tmp_path, "external link")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[data]\npath = "{data.as_posix()}"\n[run]\nepochs = 1\nbackend = "numpy"\n')
    assert main(["reconstruct", str(cfg), "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "allow_external_links" in err, err
    assert "Traceback" not in captured.err + captured.out
    cfg.write_text(cfg.read_text().replace("[run]", "allow_external_links = true\n[run]"))
    assert main(["reconstruct", str(cfg), "--out", str(tmp_path / "o")]) == 0


@pytest.mark.parametrize("layout", ["adorym", "slicewise"])
def test_boolean_frames_are_refused(layout, tmp_path):
    """A mask or a thresholded image stored where the frames belong is not a measurement."""
    path = tmp_path / "b.h5"
    if layout == "adorym":
        adorym(path)
        name = "exchange/data"
    else:
        write_dataset(path, Dataset.from_arrays(frames(), far_geometry()))
        name = "data/intensities"
    with h5py.File(path, "r+") as f:
        data = f[name][()]
        del f[name]
        f[name] = data > 1.0
    assert_refused(path, name, "bool")
    with pytest.raises(DataFileError, match="booleans"):
        Dataset.from_arrays(frames() > 1.0, far_geometry())


def test_a_newer_format_version_is_refused_naming_it(tmp_path):
    path = tmp_path / "v.h5"
    write_dataset(path, Dataset.from_arrays(frames(), far_geometry()))
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = 99
    assert_refused(path, "format_version 99", "newer", "update Slicewise")
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = "one"
    assert_refused(path, "format_version 'one'", "not a version number")
    from slicewise.engine.io.results import read_result, write_result

    result = tmp_path / "result.h5"
    write_result(result, {"delta": np.zeros((1, 2, 2), np.float32)})
    with h5py.File(result, "r+") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(DataFileError, match="format_version 99 of this result file is newer"):
        read_result(result)
