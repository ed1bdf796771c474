"""The real check, small: a simulated twin of the synchrotron near-field ptychography scan (CXI,
int32 counts, dead pixels, cone beam, unknown structured probe) reconstructed with the example
configuration, setting nothing but the data path and the source-to-sample distance."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from slicewise.cli.main import main
from slicewise.engine.io.readers import open_dataset
from slicewise.engine.io.results import read_result
from slicewise.engine.recon.config import ReconConfig, example_config, from_toml
from slicewise.engine.recon.measured import _frames_for_guesses, effective_dataset
from slicewise.engine.recon.orientation import orient_positions
from slicewise.engine.twin import phase_correlation, position_error_px, simulate_twin

Z1 = 3.65e-3
SMALL = dict(n_frames=48, frame=48, scan_m=9e-6, n_spokes=24)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    path = tmp_path_factory.mktemp("twin") / "star.cxi"
    truth = simulate_twin(path, position_error_px=0.7, seed=2, **SMALL)
    return path, truth


def test_twin_file_reads_like_a_measurement(twin):
    path, truth = twin
    ds = open_dataset(path)
    assert ds.meta["frames_dtype"] == "int32" and ds.meta["n_bad_pixels"] == 5
    frames = ds.frames()
    assert 20000 < frames.max() < 32000                           # counts up to ~29,000
    assert np.all(frames[0, :, ds.mask == 0] == 0)
    cfg = ReconConfig()
    cfg.data.source_to_sample_m = Z1
    eff = effective_dataset(cfg, ds)
    assert eff.pixel_size_m == pytest.approx(178.7e-9, rel=2e-3)
    want = truth["file_positions"] - truth["file_positions"].min(0)
    np.testing.assert_allclose(eff.positions_px, want, atol=1e-6)  # CXI signs and axes
    ds.close()


def test_example_config_reconstructs_the_twin(twin, tmp_path):
    path, truth = twin
    text = example_config("nearfield-ptycho")
    text = text.replace('path = "scan.cxi"', f'path = "{path}"')
    text = text.replace("# source_to_sample_m = <float>   (unset)", f"source_to_sample_m = {Z1}")
    (tmp_path / "nf.toml").write_text(text)
    cfg = from_toml(tmp_path / "nf.toml")
    assert cfg.data.source_to_sample_m == Z1 and cfg.loss.kind == "auto"
    assert main(["reconstruct", str(tmp_path / "nf.toml"), "--epochs", "35", "--backend", "numpy",
                 "--out", str(tmp_path / "run")]) == 0
    res = read_result(tmp_path / "run" / "result.h5")
    assert res["extra"]["pixel_size_m"] == pytest.approx(178.7e-9, rel=2e-3)  # effective grid
    obj = res["object"][0]
    corr = phase_correlation(obj, truth["transmission"], res["initial"]["positions"],
                             truth["positions"], SMALL["frame"])
    # measured 0.93 after 35 epochs (Adam, 3 minibatches per epoch); 0.08 of margin
    assert corr > 0.85, corr
    # position refinement (from epoch 10) moves the positions towards the truth
    err0 = position_error_px(res["initial"]["positions"], res["initial"]["positions"], truth["positions"])
    err1 = position_error_px(res["positions"], res["initial"]["positions"], truth["positions"])
    assert err1 < 0.8 * err0, (err0, err1)


def test_scan_orientation_is_detected_from_the_frames(twin, tmp_path):
    path, truth = twin
    flipped = tmp_path / "flipped.cxi"
    flipped.write_bytes(path.read_bytes())
    with h5py.File(flipped, "a") as f:
        t = f["entry_1/sample_1/geometry_1/translation"]
        t[:, 0] = -t[:, 0]                                       # a writer with the other x sign
    cfg = ReconConfig()
    cfg.data.source_to_sample_m = Z1
    for p, expect in ((path, None), (flipped, [[1, 0], [0, -1]])):
        ds = effective_dataset(cfg, open_dataset(p))
        idx, frames = _frames_for_guesses(ds)
        m, message = orient_positions(frames, ds.positions_px[idx], ds.mask > 0)
        assert (m is None) if expect is None else (m.tolist() == expect), message
        ds.close()
