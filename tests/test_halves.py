"""Split-half validation: subsets of a data set, what two results are compared on, the
`--halves` run and `slicewise frc` (table layout read back with read_frc, PNG plot)."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.cli.main import main
from slicewise.engine.errors import DataFileError
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.results import write_result
from slicewise.engine.quality.frc import FRCResult, half_bit_threshold, read_frc
from slicewise.engine.quality.halves import (comparable_image, dip_note, frc_of_results,
                                             split_halves)


def _scan(n_angles=1, n_spots=9):
    rng = np.random.default_rng(0)
    frames = rng.uniform(1, 2, (n_angles, n_spots, 8, 8)).astype(np.float32)
    pos = np.stack(np.meshgrid(np.arange(3), np.arange(3), indexing="ij"), -1).reshape(-1, 2) * 3.0
    geo = Geometry("farfield", 8000.0, 1e-8, angles_rad=np.linspace(0, 1, n_angles),
                   positions_px=pos[:n_spots])
    return Dataset.from_arrays(frames, geo), frames


def test_subsets_read_their_own_frames_on_the_same_grid():
    ds, frames = _scan()
    even, odd, what = split_halves(ds)
    assert what == "scan positions" and even.n_spots == 5 and odd.n_spots == 4
    np.testing.assert_array_equal(odd.frames(), frames[:, 1::2])
    np.testing.assert_array_equal(even.frames([0], [2]), frames[:, [4]])
    np.testing.assert_array_equal(odd.positions_px, ds.positions_px[1::2])
    assert even.object_shape_yx == odd.object_shape_yx == ds.object_shape_yx
    assert odd.meta["subset"] == "odd scan positions"


def test_a_tomogram_is_split_by_angle_and_a_single_frame_not_at_all():
    ds, frames = _scan(n_angles=6, n_spots=4)
    even, odd, what = split_halves(ds)
    assert what == "angles" and even.n_angles == odd.n_angles == 3
    np.testing.assert_allclose(odd.angles_rad, ds.angles_rad[1::2])
    np.testing.assert_array_equal(odd.frames(), frames[1::2])
    one, _ = _scan(n_spots=1)
    with pytest.raises(DataFileError, match="nothing to split"):
        split_halves(one)


def _result(path, image, pixel=1e-8, positions=True, shift=(0, 0)):
    obj = np.exp(1j * np.roll(image, shift, axis=(0, 1)))[None]
    params = {"object": obj.astype(np.complex64)}
    if positions:
        params["positions"] = np.array([[0.0, 0.0], [image.shape[0] - 16.0, image.shape[1] - 16.0]])
        params["probe"] = np.ones((1, 16, 16), np.complex64)
    write_result(path, params, extra={"pixel_size_m": pixel, "slice_thickness_m": pixel})


def _star_like(n, seed):
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(n)
    smooth = np.exp(-(k[:, None] ** 2 + k[None] ** 2) * 60)
    return np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, n))) * smooth).real


def test_two_results_are_compared_on_their_projected_phase(tmp_path):
    base = _star_like(72, 1)
    base *= 0.5 / np.abs(base).max()
    rng = np.random.default_rng(3)
    _result(tmp_path / "a.h5", base + 0.02 * rng.standard_normal(base.shape))
    _result(tmp_path / "b.h5", base + 0.02 * rng.standard_normal(base.shape) + 0.3, shift=(2, -3))
    res, what = frc_of_results(tmp_path / "a.h5", tmp_path / "b.h5")
    assert "projected phase over the scanned area" in what
    assert res.frc[1:6].min() > 0.9                  # the same object, shifted and offset
    assert res.shift_px[0] < -1 and res.shift_px[1] > 2      # registered (periodic roll: ~)
    _result(tmp_path / "c.h5", _star_like(72, 2) * 0.5 / np.abs(_star_like(72, 2)).max())
    other, _ = frc_of_results(tmp_path / "a.h5", tmp_path / "c.h5")
    assert other.frc[2:].mean() < 0.3                 # unrelated objects
    _result(tmp_path / "d.h5", base, pixel=2e-8)
    with pytest.raises(DataFileError, match="different pixel sizes"):
        frc_of_results(tmp_path / "a.h5", tmp_path / "d.h5")


def test_a_tomogram_is_compared_by_volume(tmp_path):
    vol = np.stack([_star_like(24, s) for s in range(24)])
    write_result(tmp_path / "t.h5", {"delta": vol, "beta": 0 * vol},
                 extra={"pixel_size_m": 1e-8, "slice_thickness_m": 1e-8})
    from slicewise.engine.io.results import read_result

    img, what = comparable_image(read_result(tmp_path / "t.h5"))
    assert img.shape == (24, 24, 24) and what == "the delta volume"
    img, what = comparable_image(read_result(tmp_path / "t.h5"), "projection")
    assert img.ndim == 2 and "projected delta" in what


def test_a_low_frequency_dip_is_named():
    n = 40
    f = np.arange(n) / (2 * (n - 1))
    counts = np.maximum(1, 2 * np.pi * np.arange(n) * 2)
    curve = np.full(n, 0.9)
    curve[4:7] = 0.05                                  # a band the halves disagree on
    curve[30:] = 0.05                                  # the real cut-off
    res = FRCResult(f, curve, counts, half_bit_threshold(counts), {"1/7": 1e-6, "half-bit": 1e-6},
                    {"1/7": True, "half-bit": True}, (0.0, 0.0), 1e-8)
    note = dip_note(res)
    assert note and "dips below 1/7" in note and "up to" in note
    assert "Nyquist" not in note
    curve[4:7] = 0.9
    assert dip_note(FRCResult(f, curve, counts, res.half_bit, res.resolution_m, res.reached,
                              (0.0, 0.0), 1e-8)) is None


def test_halves_from_the_command_line(tmp_path, capsys):
    from slicewise.engine.recon.config import example_config
    from slicewise.engine.twin import simulate_twin

    path = tmp_path / "disc.cxi"
    simulate_twin(path, seed=2, lit_fraction=1 / 3, n_frames=40, frame=40, scan_m=7e-6,
                  n_spokes=20)
    text = example_config("nearfield-ptycho").replace('path = "scan.cxi"', f'path = "{path}"')
    text = text.replace("# source_to_sample_m = <float>   (unset)", "source_to_sample_m = 3.65e-3")
    (tmp_path / "nf.toml").write_text(text)
    out = tmp_path / "split"
    assert main(["reconstruct", str(tmp_path / "nf.toml"), "--halves", "--epochs", "12",
                 "--backend", "numpy", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "the even and the odd scan positions (20 and 20 frames)" in said
    assert "FRC resolution 1/7:" in said and str(out / "frc.png") in said
    for half in ("even", "odd"):
        assert (out / half / "result.h5").is_file()
    table = read_frc(out / "frc.h5")
    assert table.frc[1:8].max() > 0.5                  # the halves agree on the star
    assert table.pixel_size_m == pytest.approx(178.7e-9, rel=2e-3)
    assert (out / "frc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same comparison for two existing results, elsewhere
    assert main(["frc", str(out / "even" / "result.h5"), str(out / "odd" / "result.h5"),
                 "--out", str(tmp_path / "again")]) == 0
    np.testing.assert_allclose(read_frc(tmp_path / "again" / "frc.h5").frc, table.frc)
    # a second --halves run into the same folder is refused, as any run over a result
    assert main(["reconstruct", str(tmp_path / "nf.toml"), "--halves", "--epochs", "1",
                 "--out", str(out)]) == 2


def test_halves_of_a_cxi_scan_read_the_right_frames(tmp_path):
    """Every other frame of a CXI file (read as a slice and rows, not h5py's list selection)."""
    import field_fixtures as ff

    from slicewise.engine.io.readers import open_dataset

    fx = ff.make("near, lit disc 33 %", tmp_path / "scan.cxi")
    with open_dataset(tmp_path / "scan.cxi") as ds:
        even, odd, what = split_halves(ds)
        np.testing.assert_array_equal(odd.frames()[0], fx["frames"][1::2].astype(np.float32))
        np.testing.assert_array_equal(even.frames([0], [3, 0])[0], fx["frames"][[6, 0]])
        np.testing.assert_array_equal(even.positions_px, ds.positions_px[0::2])
