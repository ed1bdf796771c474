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
from slicewise.engine.recon.setup.measured import _frames_for_guesses, effective_dataset
from slicewise.engine.recon.setup.orientation import orient_positions
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


def test_cone_beam_holography_from_a_dxchange_file(tmp_path):
    """Holography through the whole measured-data path: a DXchange file (raw counts, flats,
    darks, lab geometry: 10.1 um pixels at 0.5 m, focus 5 mm before the sample) reconstructed
    with data.source_to_sample_m on the effective grid (M = 101: 100 nm pixels, 4.95 mm)."""
    from scipy.ndimage import gaussian_filter

    from slicewise.engine.backend import get_backend
    from slicewise.engine.io.dxchange import write_dxchange
    from slicewise.engine.models.common import Optics
    from slicewise.engine.models.holo import HoloModel
    from slicewise.engine.recon.run import Reconstruction

    rng = np.random.default_rng(5)
    n, p_eff, z1, z2, energy = 48, 100e-9, 5e-3, 0.5, 17000.0
    m = (z1 + z2) / z1
    z_eff = z2 / m
    phase = gaussian_filter(rng.standard_normal((n, n)), 2.0)
    phase *= 0.5 / np.abs(phase).max()
    obj = np.exp(1j * phase)[None]
    be = get_backend("numpy", "double")
    inten = HoloModel((1, n, n), Optics(energy, p_eff, p_eff), be, param="complex").predict(
        {"object": obj, "distances": np.array([z_eff])}, [0], [0])[0, 0]
    dark, white = 100.0, 5000.0
    raw = rng.poisson(dark + inten * (white - dark))[None].astype(np.uint16)
    write_dxchange(tmp_path / "holo.h5", raw, theta_deg=[0.0], energy_kev=energy / 1e3,
                   pixel_size_m=p_eff * m, distance_m=z2,
                   white=np.full((2, n, n), white, np.uint16), dark=np.full((2, n, n), dark, np.uint16))
    cfg = ReconConfig()
    cfg.data.path = str(tmp_path / "holo.h5")
    cfg.data.source_to_sample_m = z1
    cfg.model.object_param = "complex"
    cfg.run.epochs, cfg.run.output_dir, cfg.run.backend = 30, str(tmp_path / "run"), "numpy"
    rec = Reconstruction(cfg)
    optics = rec.problem.model.optics
    assert optics.pixel_size_m == pytest.approx(p_eff, rel=1e-9)
    assert float(rec.problem.params["distances"][0]) == pytest.approx(z_eff, rel=1e-6)  # float32
    assert rec.problem.loss_spec.name == "amplitude"             # flat-fielded floats
    rec.run()
    got = np.angle(np.asarray(rec.problem.params["object"])[0])
    a, b = got - got.mean(), phase - phase.mean()
    corr = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    assert corr > 0.8, corr   # measured 0.91 after 30 epochs (defaults); 0.11 of margin


def test_forgotten_cone_beam_is_named(twin):
    """Without data.source_to_sample_m the 20 um scan spans a fraction of a 55 um pixel."""
    from slicewise.engine.errors import ConfigError
    from slicewise.engine.recon.run import Reconstruction

    path, _ = twin
    cfg = ReconConfig()
    cfg.data.path = str(path)
    with pytest.raises(ConfigError, match="source_to_sample_m"):
        Reconstruction(cfg)
