"""Reading measured data: CXI 1.x and DXchange files, detector masks, units and axes."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest

from slicewise.engine.errors import DataFileError
from slicewise.engine.io.cxi import EV_J, good_pixel_weights, positions_from_translations, write_cxi
from slicewise.engine.io.readers import describe_file, open_dataset
from slicewise.engine.io.slicewise_format import write_dataset
from slicewise.engine.io.dxchange import write_dxchange


def _cxi(tmp_path, dtype=np.int32, **kw):
    rng = np.random.default_rng(1)
    frames = rng.integers(100, 30000, size=(6, 12, 10)).astype(dtype)
    t = np.zeros((6, 3))
    t[:, 0] = np.arange(6) * 1e-6          # sample moves along lab x
    t[:, 1] = (np.arange(6) % 2) * 2e-6    # and along lab y
    mask = np.zeros((12, 10), np.uint32)
    mask[3, 4] = 1
    mask[5, 5] = 0x1000 | 0x2              # signal bit plus a bad bit: bad
    mask[7, 1] = 0x1000                    # signal bit alone: a good pixel
    args = dict(energy_ev=12660.0, distance_m=1.12, pixel_size_m=1e-6, translations_m=t,
                mask=mask)
    args.update(kw)
    path = tmp_path / "scan.cxi"
    write_cxi(path, frames, **args)
    return path, frames, t, mask


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.uint32, np.float32])
def test_cxi_reads_units_frames_and_mask(tmp_path, dtype):
    path, frames, t, _ = _cxi(tmp_path, dtype)
    ds = open_dataset(path)
    assert ds.meta["layout"] == "cxi" and ds.modality == "nearfield"
    assert ds.energy_ev == pytest.approx(12660.0, rel=1e-9)        # stored in joules
    assert ds.pixel_size_m == pytest.approx(1e-6) and ds.distances_m[0] == pytest.approx(1.12)
    assert ds.shape == (1, 6, 12, 10) and ds.n_tiles == 6
    assert ds.meta["integer_counts"] == np.issubdtype(dtype, np.integer)
    assert ds.mask[3, 4] == 0 and ds.mask[5, 5] == 0 and ds.mask[7, 1] == 1
    assert ds.mask.sum() == 12 * 10 - 2
    got = ds.frames(None, [4, 1])[0]                               # lazily, any order
    want = frames[[4, 1]].astype(np.float32)
    want[:, 3, 4] = want[:, 5, 5] = 0                              # bad pixels never reach the loss
    np.testing.assert_array_equal(got, want)


def test_cxi_positions_follow_the_translations(tmp_path):
    """Default CXI detector axes: rows along -y, columns along -x; the spot moves by -t, so a
    sample step of +1 um in x moves the window one pixel right (to a larger column)."""
    path, _, t, _ = _cxi(tmp_path)
    ds = open_dataset(path)
    np.testing.assert_allclose(ds.positions_px[:, 1], t[:, 0] / 1e-6, atol=1e-9)
    np.testing.assert_allclose(ds.positions_px[:, 0], t[:, 1] / 1e-6, atol=1e-9)


def test_cxi_basis_vectors_rotate_the_scan(tmp_path):
    # rows along +x, columns along +y (a detector mounted rotated by 90 degrees)
    bv = np.array([[1e-6, 0, 0], [0, 1e-6, 0]])
    path, _, t, _ = _cxi(tmp_path, basis_vectors=bv)
    pos = open_dataset(path).positions_px
    np.testing.assert_allclose(pos[:, 0], (-t[:, 0]) / 1e-6 - (-t[:, 0] / 1e-6).min(), atol=1e-9)
    np.testing.assert_allclose(pos[:, 1], (-t[:, 1]) / 1e-6 - (-t[:, 1] / 1e-6).min(), atol=1e-9)
    # the same mapping, directly
    rc = positions_from_translations(t, bv[:, :2].T, 1.0)
    np.testing.assert_allclose(rc, pos)


def test_cxi_mask_conventions(caplog):
    assert good_pixel_weights(np.array([[0, 1], [0x1000, 0x1001]])).tolist() == [[1, 0], [1, 0]]
    assert good_pixel_weights(np.array([[False, True], [False, False]])).tolist() == [[1, 0], [1, 1]]
    good_convention = np.ones((4, 4), np.uint8)
    good_convention[1, 2] = 0       # written as 1 = good: most pixels "set"
    with caplog.at_level(logging.WARNING):
        w = good_pixel_weights(good_convention)
    assert w[1, 2] == 0 and w.sum() == 15 and "1 = good" in caplog.text
    # one line naming the reading used, not the rejected reading's "94 % bad"
    assert len(caplog.records) == 1 and "1 bad pixel" in caplog.text and "94" not in caplog.text


def test_cxi_energy_without_units_in_ev_and_wavelength(tmp_path, caplog):
    path, *_ = _cxi(tmp_path)
    with h5py.File(path, "a") as f:
        del f["entry_1/instrument_1/source_1/energy"]
        f["entry_1/instrument_1/source_1/energy"] = 12660.0       # eV, not joules
    with caplog.at_level(logging.WARNING):
        assert open_dataset(path).energy_ev == pytest.approx(12660.0)
    assert "read as eV" in caplog.text
    with h5py.File(path, "a") as f:
        del f["entry_1/instrument_1/source_1/energy"]             # only the wavelength is left
    assert open_dataset(path).energy_ev == pytest.approx(12660.0, rel=1e-6)
    with h5py.File(path, "a") as f:
        del f["entry_1/instrument_1/source_1/wavelength"]
    with pytest.raises(DataFileError, match="energy"):
        open_dataset(path)


def test_cxi_distance_with_units_attribute(tmp_path):
    path, *_ = _cxi(tmp_path)
    with h5py.File(path, "a") as f:
        d = f["entry_1/instrument_1/detector_1/distance"]
        d[()] = 1120.0
        d.attrs["units"] = "mm"
    assert open_dataset(path).distances_m[0] == pytest.approx(1.12)


def test_cxi_external_link_is_refused(tmp_path):
    path, *_ = _cxi(tmp_path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["frames"] = np.ones((2, 12, 10))
    with h5py.File(path, "a") as f:
        del f["entry_1/data_1/data"]
        del f["entry_1/instrument_1/detector_1/data"]
        f["entry_1/data_1/data"] = h5py.ExternalLink(str(other), "/frames")
    with pytest.raises(DataFileError, match="external link"):
        open_dataset(path)


def test_cxi_far_field_is_recognised(tmp_path):
    """Centred diffraction patterns: far field, frames ifftshift-ed, object pixel lambda z/(N p)."""
    n = 16
    frames = np.zeros((3, n, n), np.int32)
    frames[:, n // 2, n // 2] = 100000
    frames[:, n // 2 + 1, n // 2] = 5
    t = np.array([[0, 0, 0], [1e-7, 0, 0], [0, 1e-7, 0]], float)
    write_cxi(tmp_path / "ff.cxi", frames, energy_ev=8000.0, distance_m=2.0, pixel_size_m=75e-6,
              translations_m=t)
    ds = open_dataset(tmp_path / "ff.cxi")
    assert ds.modality == "farfield" and ds.distances_m is None
    assert ds.frames([0], [0])[0, 0, 0, 0] == 100000              # direct beam moved to [0, 0]
    obj_px = 1.239841984e-6 / 8000.0 * 2.0 / (n * 75e-6)
    assert ds.pixel_size_m == pytest.approx(obj_px)
    np.testing.assert_allclose(ds.positions_px[1] - ds.positions_px[0], [0, 1e-7 / obj_px])


def test_info_describes_a_cxi_file(tmp_path):
    path, *_ = _cxi(tmp_path)
    text = describe_file(path)
    assert "cxi layout" in text and "2 bad pixel(s)" in text and "int32 (integer counts, Poisson noise)" in text
    assert "default loss amplitude (loss.kind = poisson" in text and "source_to_sample_m" in text


def test_mask_survives_the_slicewise_layout(tmp_path):
    path, *_ = _cxi(tmp_path)
    ds = open_dataset(path)
    write_dataset(tmp_path / "copy.h5", ds)
    back = open_dataset(tmp_path / "copy.h5")
    np.testing.assert_array_equal(back.mask, ds.mask)


def test_dxchange_flat_dark_correction(tmp_path):
    rng = np.random.default_rng(0)
    shape = (8, 9)
    dark = rng.integers(90, 110, size=(3,) + shape).astype(np.uint16)
    white = rng.integers(900, 1100, size=(4,) + shape).astype(np.uint16)
    white[:, 2, 3] = 100                                         # a dead pixel: flat = dark
    dark[:, 2, 3] = 100
    proj = rng.integers(300, 1000, size=(5,) + shape).astype(np.uint16)
    write_dxchange(tmp_path / "tomo.h5", proj, theta_deg=np.linspace(0, 180, 5), energy_kev=17.5,
                   pixel_size_m=0.65e-6, distance_m=0.012, white=white, dark=dark)
    ds = open_dataset(tmp_path / "tomo.h5")
    assert ds.meta["layout"] == "dxchange" and ds.modality == "nearfield"
    assert ds.energy_ev == pytest.approx(17500.0) and ds.pixel_size_m == pytest.approx(0.65e-6)
    np.testing.assert_allclose(ds.angles_rad, np.radians(np.linspace(0, 180, 5)))
    assert ds.distances_m[0] == pytest.approx(0.012) and ds.shape == (5, 1) + shape
    span = white.mean(0) - dark.mean(0)
    span[2, 3] = 1
    want = (proj[3] - dark.mean(0)) / span
    want[2, 3] = 0
    np.testing.assert_allclose(ds.frames([3], [0])[0, 0], np.maximum(want, 0), rtol=1e-5, atol=1e-6)
    assert ds.mask[2, 3] == 0 and ds.mask.sum() == ds.mask.size - 1
    assert not ds.meta["integer_counts"]                         # corrected frames are floats


def test_dxchange_needs_geometry(tmp_path):
    with h5py.File(tmp_path / "bare.h5", "w") as f:
        f["exchange/data"] = np.ones((2, 4, 4))
        f["exchange/theta"] = [0.0, 90.0]
    with pytest.raises(DataFileError, match="energy"):
        open_dataset(tmp_path / "bare.h5")
