"""Data files: Adorym conventions, Slicewise layout round trips, validation, atomic writes, results."""

from __future__ import annotations

import os

import h5py
import hdf5plugin
import numpy as np
import pytest

from slicewise.engine.errors import DataFileError
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.adorym import write_adorym
from slicewise.engine.io.atomic import atomic_write, atomic_write_text
from slicewise.engine.io.datafile import Dataset, estimate_memory_bytes
from slicewise.engine.io.readers import describe_file, open_dataset
from slicewise.engine.io.slicewise_format import write_dataset
from slicewise.engine.io.results import read_result, write_result, write_tiff_stack

RNG = np.random.default_rng(7)


def crand(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def write_h5(path, items: dict, attrs: dict | None = None, data_kw: dict | None = None):
    """Write an HDF5 file by hand (the way another program would), ``items``: path -> array."""
    with h5py.File(path, "w") as f:
        for name, value in items.items():
            if name == "exchange/data":
                f.create_dataset(name, data=value, **(data_kw or {}))
            else:
                f[name] = value
        for (obj, key), value in (attrs or {}).items():
            f[obj].attrs[key] = value


def adorym_farfield(n_theta=2, n_spots=3, ny=8, nx=6):
    """Exit waves and Adorym's far-field magnitudes |fftshift(fft2(psi))| (unnormalised FFT)."""
    psi = crand(n_theta, n_spots, ny, nx)
    mag = np.abs(np.fft.fftshift(np.fft.fft2(psi), axes=(-2, -1))).astype(np.float32)
    model = np.abs(np.fft.fft2(psi, norm="ortho")) ** 2  # Slicewise: ortho FFT, unshifted
    return psi, mag, model


def base_items(data, n_spots, theta=None, **extra):
    items = {"exchange/data": data, "metadata/energy_ev": 8000.0, "metadata/psize_cm": 5e-6,
             "metadata/theta": np.linspace(0, np.pi, data.shape[0]) if theta is None else theta,
             "metadata/probe_pos_px": np.stack([np.arange(n_spots) * 2, np.arange(n_spots)], 1)}
    items.update(extra)
    return {k: v for k, v in items.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# Adorym conventions
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("marker", ["inf-string", "absent", "inf-number", "None-string"])
def test_adorym_farfield_magnitudes_become_model_intensities(tmp_path, marker):
    psi, mag, model = adorym_farfield()
    fp = {"inf-string": "inf", "absent": None, "inf-number": np.inf, "None-string": "None"}[marker]
    probe = crand(8, 6)
    path = tmp_path / "ff.h5"
    write_h5(path, base_items(mag, 3, **{"metadata/free_prop_cm": fp,
                                         "metadata/probe_real": probe.real,
                                         "metadata/probe_imag": probe.imag}))
    ds = open_dataset(path)
    assert ds.modality == "farfield" and ds.distances_m is None
    assert ds.meta["layout"] == "adorym" and ds.meta["quantity"] == "magnitude"
    assert ds.pixel_size_m == pytest.approx(5e-8) and ds.slice_thickness_m == pytest.approx(5e-8)
    assert ds.energy_ev == 8000.0 and ds.shape == (2, 3, 8, 6) and ds.n_tiles == 3
    np.testing.assert_array_equal(ds.positions_px, [[0, 0], [2, 1], [4, 2]])
    assert ds.positions_px.dtype == np.float64
    np.testing.assert_allclose(ds.probe[0], probe)
    fr = ds.frames()
    assert fr.dtype == np.float32 and fr.shape == (2, 3, 8, 6)
    np.testing.assert_allclose(fr, model, rtol=2e-5, atol=1e-6 * model.max())
    # Zero frequency must be at [0, 0] with the unitary-FFT total: sum I = sum |psi|^2.
    np.testing.assert_allclose(fr.sum((-2, -1)), (np.abs(psi) ** 2).sum((-2, -1)), rtol=1e-5)
    ds.close()


@pytest.mark.parametrize("where", ["dataset", "root", "raw_data_type"])
def test_adorym_intensity_attribute(tmp_path, where):
    _, mag, model = adorym_farfield(1, 2, 5, 7)  # odd sizes: ifftshift must undo fftshift
    attrs = {"dataset": {("exchange/data", "quantity"): "intensity"},
             "root": {("/", "quantity"): "intensity"},
             "raw_data_type": {("exchange/data", "raw_data_type"): "intensity"}}[where]
    path = tmp_path / "ffi.h5"
    write_h5(path, base_items(mag ** 2, 2), attrs)
    ds = open_dataset(path)
    assert ds.meta["quantity"] == "intensity"
    np.testing.assert_allclose(ds.frames(), model, rtol=2e-5, atol=1e-6 * model.max())


def test_adorym_nearfield_multidistance(tmp_path):
    n_dist, n_tiles = 2, 2
    mag = RNG.uniform(0.5, 1.5, (3, n_dist * n_tiles, 6, 5)).astype(np.float32)
    tiles = np.array([[0, 0], [3, 4]])
    path = tmp_path / "nf.h5"
    write_h5(path, base_items(mag, 0, **{"metadata/free_prop_cm": np.array([1.0, 2.5]),
                                        "metadata/probe_pos_px": tiles}))
    ds = open_dataset(path)
    assert ds.modality == "nearfield" and ds.n_distances == 2 and ds.n_tiles == 2
    np.testing.assert_allclose(ds.distances_m, [0.01, 0.025])
    # Positions given per tile are repeated for every distance, distance-major.
    np.testing.assert_array_equal(ds.positions_px, np.concatenate([tiles, tiles]))
    np.testing.assert_array_equal(ds.split_spot([0, 1, 2, 3]), [[0, 0, 1, 1], [0, 1, 0, 1]])
    # Near field: intensities = magnitude^2, no FFT shift, no scaling.
    np.testing.assert_allclose(ds.frames(), mag.astype(np.float64) ** 2, rtol=1e-6)


def test_adorym_scalar_distance_fullfield_3d_data(tmp_path):
    mag = RNG.uniform(0.5, 1.5, (2, 6, 6)).astype(np.float32)  # [n_theta, y, x], one spot
    path = tmp_path / "ff3.h5"
    write_h5(path, base_items(mag, 0, **{"metadata/free_prop_cm": 3.0,
                                        "metadata/probe_pos_px": None}))
    ds = open_dataset(path)
    assert ds.shape == (2, 1, 6, 6) and ds.positions_px is None
    np.testing.assert_allclose(ds.distances_m, [0.03])
    np.testing.assert_allclose(ds.frames([1], [0])[0, 0], mag[1].astype(np.float64) ** 2, rtol=1e-6)


def test_adorym_truth_and_probe_orientation(tmp_path):
    _, mag, _ = adorym_farfield(1, 2, 4, 4)
    delta_yxz = RNG.random((5, 6, 3))          # Adorym's [y, x, z]
    probe_yxm = crand(4, 4, 2)                   # [py, px, n_modes]
    path = tmp_path / "t.h5"
    write_h5(path, base_items(mag, 2, **{"truth/delta": delta_yxz,
                                        "metadata/probe_real": probe_yxm.real,
                                        "metadata/probe_imag": probe_yxm.imag}))
    ds = open_dataset(path)
    assert list(ds.truth) == ["delta"]
    np.testing.assert_array_equal(ds.truth["delta"], np.transpose(delta_yxz, (2, 0, 1)))
    assert ds.object_shape_yx == (5, 6)
    np.testing.assert_allclose(ds.probe, np.moveaxis(probe_yxm, -1, 0))


def test_compressed_blosc_file_reads(tmp_path):
    _, mag, model = adorym_farfield(2, 2, 8, 8)
    path = tmp_path / "blosc.h5"
    write_h5(path, base_items(mag, 2), data_kw=dict(hdf5plugin.Blosc(cname="zstd"), chunks=(1, 1, 8, 8)))
    with h5py.File(path, "r") as f:
        assert "32001" in str(f["exchange/data"]._filters)  # really Blosc-compressed
    np.testing.assert_allclose(open_dataset(path).frames(), model, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("modality", ["farfield", "nearfield"])
@pytest.mark.parametrize("compression", [None, "blosc"])
def test_adorym_writer_roundtrip(tmp_path, modality, compression):
    far = modality == "farfield"
    inten = RNG.uniform(0, 2, (2, 4, 8, 8)).astype(np.float32)
    pos = np.array([[0.0, 0.0], [0.0, 4.0], [4.0, 0.0], [4.5, 4.25]])
    probe = crand(8, 8)
    truth = {"delta": RNG.random((3, 12, 13)), "beta": RNG.random((3, 12, 13))}
    path = tmp_path / "w.h5"
    # modality is inferred from distances_m
    write_adorym(path, inten,
                 Geometry(modality="farfield" if far else "nearfield", energy_ev=10e3,
                          pixel_size_m=2e-8, angles_rad=[0.0, 0.5],
                          positions_px=pos, distances_m=None if far else [0.1, 0.2],
                          slice_thickness_m=None if far else 5e-8),
                 probe=probe, truth=truth, compression=compression)
    ds = open_dataset(path)
    assert ds.modality == modality
    np.testing.assert_allclose(ds.frames(), inten, rtol=1e-5, atol=1e-6)
    assert ds.pixel_size_m == pytest.approx(2e-8, rel=1e-12)
    assert ds.slice_thickness_m == pytest.approx(2e-8 if far else 5e-8, rel=1e-12)
    np.testing.assert_allclose(ds.positions_px, pos)
    np.testing.assert_allclose(ds.probe[0], probe)
    for k in truth:
        np.testing.assert_array_equal(ds.truth[k], truth[k])
    assert ds.object_shape_yx == (12, 13)
    if not far:
        np.testing.assert_allclose(ds.distances_m, [0.1, 0.2])


# ---------------------------------------------------------------------------------------------
# Slicewise layout
# ---------------------------------------------------------------------------------------------
def make_dataset(modality="farfield", probe_modes=2):
    inten = RNG.uniform(0, 5, (3, 4, 6, 6)).astype(np.float32)
    return Dataset.from_arrays(inten,
                               Geometry(modality=modality, energy_ev=9000.0, pixel_size_m=1.5e-8,
                                        slice_thickness_m=3e-8,
                                        angles_rad=np.array([0.0, 0.1, 0.2]),
                                        positions_px=(RNG.uniform(0, 10, (4, 2))
                                                      if modality == "farfield" else None),
                                        distances_m=(None if modality == "farfield"
                                                     else np.array([0.01, 0.02, 0.03, 0.04])),
                                        object_shape_yx=(16, 17)),
                               probe=crand(probe_modes, 6, 6),
                               truth={"delta": RNG.random((2, 16, 17)).astype(np.float32)},
                               meta={"note": "test"})


@pytest.mark.parametrize("modality", ["farfield", "nearfield"])
def test_slicewise_roundtrip_is_lossless(tmp_path, modality):
    ds = make_dataset(modality)
    path = tmp_path / "sw.h5"
    write_dataset(path, ds, truth={"beta": np.ones((2, 3))}, provenance={"seed": 3, "n": [1, 2]})
    back = open_dataset(path)
    assert back.meta["layout"] == "slicewise" and back.meta["note"] == "test"
    assert '"seed": 3' in back.meta["provenance"]["parameters"]
    assert back.meta["provenance"]["version"] and back.meta["provenance"]["date"]
    np.testing.assert_array_equal(back.frames(), ds.frames())
    for name in ("modality", "energy_ev", "pixel_size_m", "slice_thickness_m", "n_tiles",
                 "frame_shape", "object_shape_yx"):
        assert getattr(back, name) == getattr(ds, name), name
    for name in ("angles_rad", "positions_px", "distances_m", "probe"):
        a, b = getattr(ds, name), getattr(back, name)
        assert (a is None and b is None) or (np.array_equal(a, b) and a.dtype == b.dtype), name
    assert sorted(back.truth) == ["beta", "delta"]
    np.testing.assert_array_equal(back.truth["delta"], ds.truth["delta"])
    back.close()


def test_slicewise_object_shape_from_truth(tmp_path):
    ds = Dataset.from_arrays(np.ones((1, 2, 4, 4)),
                             Geometry(modality="farfield", energy_ev=8e3, pixel_size_m=1e-8,
                                      positions_px=[[0, 0], [2, 3]]))
    assert ds.object_shape_yx == (6, 7)  # inferred: the smallest grid holding every window
    write_dataset(tmp_path / "t.h5", ds, truth={"delta": np.zeros((2, 10, 12))})
    assert open_dataset(tmp_path / "t.h5").object_shape_yx == (10, 12)


def test_frames_lazy_arbitrary_order(tmp_path):
    ds = make_dataset()
    path = tmp_path / "sw.h5"
    write_dataset(path, ds, compression="gzip")
    back = open_dataset(path)
    full = ds.frames()
    a, s = np.array([2, 0, 2]), np.array([3, 1, 1, 0])
    np.testing.assert_array_equal(back.frames(a, s), full[np.ix_(a, s)])
    np.testing.assert_array_equal(back.frames(1, [2]), full[1:2, 2:3])
    with pytest.raises(IndexError, match="angle_idx"):
        back.frames([3])


def test_describe_and_memory(tmp_path):
    ds = make_dataset()
    path = tmp_path / "sw.h5"
    write_dataset(path, ds)
    text = describe_file(path)
    assert "farfield" in text and "9000 eV" in text and "3 angles x 4 spots" in text
    assert "ground truth: delta" in text
    m1 = estimate_memory_bytes(ds, (8, 16, 17), 8, batch=2, dtype="complex64")
    m2 = estimate_memory_bytes(ds, (8, 16, 17), 8, batch=4, dtype="complex64")
    m3 = estimate_memory_bytes(ds, (8, 16, 17), 8, batch=4, dtype="complex128")
    assert 0 < m1 < m2 < m3


# ---------------------------------------------------------------------------------------------
# Validation: each refusal names the field
# ---------------------------------------------------------------------------------------------
def _bad_adorym(tmp_path, **changes):
    _, mag, _ = adorym_farfield(2, 3, 4, 4)
    items = base_items(mag, 3, **{"truth/delta": np.zeros((20, 20, 2))})
    items.update(changes)
    items = {k: v for k, v in items.items() if v is not None}
    path = tmp_path / "bad.h5"
    write_h5(path, items)
    return path


@pytest.mark.parametrize("changes, field", [
    ({"metadata/energy_ev": None}, "metadata/energy_ev"),
    ({"metadata/energy_ev": 0.0}, "metadata/energy_ev"),
    ({"metadata/energy_ev": 5e6}, "metadata/energy_ev"),
    ({"metadata/psize_cm": 100.0}, "metadata/psize_cm"),
    ({"metadata/psize_cm": None}, "metadata/psize_cm"),
    ({"metadata/theta": np.zeros(5)}, "metadata/theta"),
    ({"metadata/theta": None}, "metadata/theta"),
    ({"metadata/probe_pos_px": np.zeros((2, 2))}, "metadata/probe_pos_px"),
    ({"metadata/probe_pos_px": np.zeros((3, 3))}, "metadata/probe_pos_px"),
    ({"metadata/probe_pos_px": None}, "metadata/probe_pos_px"),
    ({"metadata/probe_pos_px": np.array([[0, 0], [0, 0], [500, 0]])}, "metadata/probe_pos_px"),
    ({"metadata/probe_pos_px": np.array([[0, 0], [-50, 0], [0, 0]])}, "metadata/probe_pos_px"),
    ({"metadata/free_prop_cm": -1.0}, "metadata/free_prop_cm"),
    ({"metadata/free_prop_cm": np.array([1.0, 2.0])}, "metadata/free_prop_cm"),  # 3 % 2 != 0
    ({"metadata/probe_real": np.ones((4, 4))}, "metadata/probe_imag"),
    ({"metadata/probe_real": np.ones((3, 3)), "metadata/probe_imag": np.ones((3, 3))},
     "metadata/probe_real"),
    ({"exchange/data": np.full((2, 3, 4, 4), np.nan, np.float32)}, "exchange/data"),
    ({"exchange/data": -np.ones((2, 3, 4, 4), np.float32)}, "exchange/data"),
    ({"exchange/data": np.ones((4, 4), np.float32)}, "exchange/data"),
])
def test_adorym_refusals_name_the_field(tmp_path, changes, field):
    path = _bad_adorym(tmp_path, **changes)
    with pytest.raises(DataFileError, match=field):
        open_dataset(path)


def test_bad_frame_outside_sample_is_caught_when_read(tmp_path):
    _, mag, _ = adorym_farfield(5, 5, 4, 4)
    mag[2, 3, 1, 1] = np.nan  # not among the sampled frames (first, middle, last ...)
    path = tmp_path / "nan.h5"
    write_h5(path, base_items(mag, 5))
    ds = open_dataset(path)
    ds.frames([0, 1], [0, 1])  # clean frames are fine
    with pytest.raises(DataFileError, match="exchange/data"):
        ds.frames([2], [3])


@pytest.mark.parametrize("kwargs, field", [
    (dict(energy_ev=50.0), "energy_ev"),
    (dict(energy_ev=float("nan")), "energy_ev"),
    (dict(pixel_size_m=1e-13), "pixel_size_m"),
    (dict(pixel_size_m=0.5), "pixel_size_m"),
    (dict(angles_rad=[0.0]), "angles_rad"),
    (dict(positions_px=np.zeros((3, 2))), "positions_px"),
    (dict(positions_px=np.zeros(4)), "positions_px"),
    (dict(positions_px=np.full((4, 2), np.nan)), "positions_px"),
    (dict(positions_px=np.full((4, 2), 50.0), object_shape_yx=(20, 20)), "positions_px"),
    (dict(modality="nearfield", positions_px=None, distances_m=[-1.0]), "distances_m"),
    (dict(modality="nearfield", positions_px=None), "distances_m"),
    (dict(distances_m=[1.0]), "distances_m"),
    (dict(modality="xray"), "modality"),
    (dict(probe=np.ones((5, 5))), "probe"),
    (dict(intensities=-np.ones((2, 4, 4, 4))), "intensities"),
    (dict(intensities=np.ones((4, 4, 4))), "intensities"),
])
def test_from_arrays_refusals_name_the_field(kwargs, field):
    args = dict(intensities=np.ones((2, 4, 4, 4)), modality="farfield", energy_ev=8e3,
                pixel_size_m=1e-8, angles_rad=[0.0, 1.0], positions_px=np.zeros((4, 2)))
    args.update(kwargs)
    frames, probe = args.pop("intensities"), args.pop("probe", None)
    with pytest.raises(DataFileError, match=field):
        Dataset.from_arrays(frames, Geometry(**args), probe=probe)


def test_slicewise_and_generic_file_refusals(tmp_path):
    path = tmp_path / "sw.h5"
    write_dataset(path, make_dataset())
    with h5py.File(path, "a") as f:
        del f["geometry"].attrs["energy_ev"]
    with pytest.raises(DataFileError, match="energy_ev"):
        open_dataset(path)
    with h5py.File(path, "a") as f:
        f["geometry"].attrs["energy_ev"] = 9000.0
        del f["geometry/angles_rad"]
    with pytest.raises(DataFileError, match="angles_rad"):
        open_dataset(path)
    with pytest.raises(DataFileError, match="no such data file"):
        open_dataset(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(DataFileError, match="not a readable HDF5"):
        open_dataset(tmp_path / "text.h5")
    write_h5(tmp_path / "other.h5", {"foo": np.ones(3)})
    with pytest.raises(DataFileError, match="exchange/data"):
        open_dataset(tmp_path / "other.h5")


# ---------------------------------------------------------------------------------------------
# Atomic writes, results, TIFF
# ---------------------------------------------------------------------------------------------
def test_atomic_write_keeps_old_file_when_writer_raises(tmp_path):
    path = tmp_path / "cfg.toml"
    atomic_write_text(path, "old = 1\n")

    def failing(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError, match="crash"):
        atomic_write(path, failing)
    assert path.read_text() == "old = 1\n"
    assert os.listdir(tmp_path) == ["cfg.toml"]  # temporary file removed
    assert atomic_write(path, lambda tmp: open(tmp, "w").write("new")) == 3
    assert path.read_text() == "new"


def test_result_roundtrip_and_crash_safety(tmp_path):
    path = tmp_path / "result.h5"
    params = {"delta": RNG.random((2, 4, 4)), "beta": RNG.random((2, 4, 4)),
              "probe": crand(2, 4, 4), "positions": RNG.random((5, 2)), "distances": np.array([0.1])}
    opt = {"delta": {"m": np.ones((2, 4, 4)), "v": np.zeros((2, 4, 4))}, "step": 7}
    write_result(path, params, loss_history={"total": [3.0, 2.0, 1.0], "tv": [0.1, 0.1, 0.1]},
                 config_toml="[solver]\nepochs = 3\n", epoch=3,
                 initial={"positions": np.zeros((5, 2))}, optimizer_state=opt,
                 extra={"note": "héllo"})
    r = read_result(path)
    for k, v in params.items():
        np.testing.assert_array_equal(r["params"][k], v)
        assert r[k] is r["params"][k]  # top-level convenience alias
    np.testing.assert_array_equal(r["loss"]["total"], [3.0, 2.0, 1.0])
    assert r["config_toml"] == "[solver]\nepochs = 3\n" and r["epoch"] == 3
    assert r["kind"] == "result" and r["version"] and r["extra"]["note"] == "héllo"
    assert r["optimizer"]["step"] == 7
    np.testing.assert_array_equal(r["optimizer"]["delta"]["m"], opt["delta"]["m"])
    np.testing.assert_array_equal(r["initial"]["positions"], np.zeros((5, 2)))

    # A write that fails half way (unstorable value after the params) leaves the old file.
    with pytest.raises(DataFileError):
        write_result(path, params, epoch=4, extra={"bad": np.array([object()])}, kind="checkpoint")
    assert read_result(path)["epoch"] == 3
    assert sorted(os.listdir(tmp_path)) == ["result.h5"]
    write_result(path, params, epoch=5, kind="checkpoint")
    assert read_result(path)["kind"] == "checkpoint"
    write_h5(tmp_path / "x.h5", {"a": np.ones(2)})
    with pytest.raises(DataFileError, match="not a Slicewise result"):
        read_result(tmp_path / "x.h5")


def test_tiff_stack(tmp_path):
    import tifffile

    vol = RNG.random((3, 5, 6))
    path = tmp_path / "delta.tif"
    write_tiff_stack(path, vol, pixel_size_m=2e-8)
    with tifffile.TiffFile(path) as t:
        np.testing.assert_allclose(t.asarray(), vol.astype(np.float32))
        assert t.imagej_metadata["spacing"] == pytest.approx(0.02)
        assert t.imagej_metadata["unit"] == "um"
        xres = t.pages[0].tags["XResolution"].value
        assert xres[0] / xres[1] == pytest.approx(50.0, rel=1e-4)  # pixels per micrometre
    with pytest.raises(DataFileError, match="real"):
        write_tiff_stack(path, vol + 1j, 2e-8)
