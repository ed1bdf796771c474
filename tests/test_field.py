"""Near or far field: the user's statements decide, the guess fills the gap and survives real
detectors (partial illumination, zone-plate rings, FFT order, off-centre beams, hot and saturated
pixels); each wrong guess is one key away from being overridden."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import field_fixtures as ff
from slicewise.cli.main import main
from slicewise.engine.errors import ConfigError
from slicewise.engine.io.field import DataStatements, statements_from_keys
from slicewise.engine.io.readers import describe_file, open_dataset
from slicewise.engine.io.slicewise_format import write_dataset
from slicewise.engine.recon.config import ReconConfig, from_dict, to_toml
from slicewise.engine.recon.setup.data_field import field_choices, restated_dataset

NAMES = list(ff.FIXTURES)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fields")
    out = {}
    for k, name in enumerate(NAMES):
        path = folder / f"fixture{k}.cxi"
        out[name] = (path, ff.make(name, path))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_every_fixture_is_guessed_right(files, name):
    path, fx = files[name]
    with open_dataset(path) as ds:
        assert ds.modality == ("nearfield" if fx["field"] == "near" else "farfield"), \
            ds.meta["field"]["reason"]
        assert ds.meta["field"]["source"] == "guess"
        if fx["order"] is not None:   # far field: the direct beam ends up at [0, 0]
            assert ds.meta["farfield_fft"] == (fx["order"] == "fft")
            mean = ds.frames([0], None)[0].mean(axis=0)
            peak = np.unravel_index(np.argmax(mean), mean.shape)
            near_corner = [min(p, n - p) for p, n in zip(peak, mean.shape)]
            assert max(near_corner) <= mean.shape[0] // 4 + 2, (peak, near_corner)


@pytest.mark.parametrize("name", NAMES)
def test_every_guess_is_one_key_from_overridden(files, name):
    path, fx = files[name]
    other = "far" if fx["field"] == "near" else "near"
    with open_dataset(path, statements=statements_from_keys(field=other)) as ds:
        assert ds.modality == other + "field"
        assert ds.meta["field"] == {"modality": other + "field", "source": "data.field",
                                    "reason": "stated"}
        assert ds.frames([0], [0]).shape[-2:] == fx["frames"].shape[1:]


def test_a_stated_order_wins_and_fft_order_is_read_as_stored(files):
    path, fx = files["far, FFT order"]
    with open_dataset(path) as ds:                     # detected: no re-ordering needed
        np.testing.assert_array_equal(ds.frames([0], [0])[0, 0], fx["frames"][0])
        assert "FFT order, detected" in ds.meta["farfield_order"]
    with open_dataset(path, statements=statements_from_keys(farfield_order="centred")) as ds:
        assert not ds.meta["farfield_fft"]             # as stated, though it looks otherwise
        np.testing.assert_array_equal(ds.frames([0], [0])[0, 0], np.fft.ifftshift(fx["frames"][0]))
    centred, fxc = files["far, focused beam"]
    with open_dataset(centred, statements=statements_from_keys(farfield_order="fft")) as ds:
        assert ds.meta["farfield_fft"] and ds.meta["field"]["source"] == "data.farfield_order = 'fft'"


def test_hot_pixels_are_masked(files):
    path, fx = files["far, hot pixels"]
    hot = np.all(fx["frames"] == fx["frames"].max(), axis=0)
    with open_dataset(path) as ds:
        assert hot.sum() == 4 and np.all(np.fft.fftshift(ds.mask)[hot] == 0)
        assert ds.mask.sum() == ds.mask.size - 4       # and nothing else (the direct beam stays)


def test_the_source_distance_implies_near_field(files):
    path, _ = files["far, focused beam"]
    st = statements_from_keys(source_to_sample_m=3e-3)
    assert st == DataStatements("near", "data.source_to_sample_m")
    with open_dataset(path, statements=st) as ds:
        assert ds.modality == "nearfield" and ds.meta["field"]["source"] == "data.source_to_sample_m"


@pytest.mark.parametrize("keys, named", [
    (dict(field="far", model_kind="nfptycho"), ("data.field = 'far'", "model.kind = 'nfptycho'")),
    (dict(model_kind="ptycho", source_to_sample_m=1e-3), ("model.kind = 'ptycho'",
                                                          "data.source_to_sample_m")),
    (dict(field="near", farfield_order="fft"), ("data.field = 'near'", "data.farfield_order")),
])
def test_contradicting_statements_are_one_line_naming_both(keys, named):
    with pytest.raises(ConfigError) as err:
        statements_from_keys(**keys)
    msg = str(err.value)
    assert "\n" not in msg and all(n in msg for n in named), msg
    d = {"data": {"path": "x.cxi"}, "model": {}}
    for key, value in keys.items():
        group, name = {"field": ("data", "field"), "model_kind": ("model", "kind"),
                       "source_to_sample_m": ("data", "source_to_sample_m"),
                       "farfield_order": ("data", "farfield_order")}[key]
        d[group][name] = value
    with pytest.raises(ConfigError, match="change one of them"):
        from_dict(d)                                   # refused when the configuration is read


def test_a_dataset_read_by_the_guess_is_read_again_as_stated(files):
    path, _ = files["near, lit disc 33 %"]
    ds = open_dataset(path)                            # e.g. the GUI's preview: guessed near
    cfg = ReconConfig()
    cfg.data.path, cfg.model.kind = str(path), "ptycho"
    again = restated_dataset(cfg, ds)
    assert again is not ds and again.modality == "farfield"
    assert again.meta["field"]["source"] == "model.kind = 'ptycho'"
    cfg.model.kind = "auto"
    assert restated_dataset(cfg, ds) is ds             # nothing stated: the guess stands
    choices = {c.path: c for c in field_choices(cfg, ds)}
    assert choices["data.field"].value == "near" and "guessed from" in choices["data.field"].reason
    ds.close(), again.close()


def test_a_file_whose_layout_fixes_the_field_refuses_the_other(tmp_path, files):
    path, _ = files["near, lit disc 20 %"]
    with open_dataset(path, statements=statements_from_keys(field="near")) as ds:
        write_dataset(tmp_path / "own.h5", ds)         # Slicewise's layout states the field
    with pytest.raises(ConfigError) as err:
        open_dataset(tmp_path / "own.h5", statements=statements_from_keys(model_kind="ptycho"))
    msg = str(err.value)
    assert "model.kind = 'ptycho'" in msg and "near-field data" in msg and "\n" not in msg
    with open_dataset(tmp_path / "own.h5") as ds:
        assert ds.meta["field"]["source"] == "file"


def test_info_says_where_the_decision_came_from(files, tmp_path, capsys):
    path, _ = files["near, lit disc 33 %"]
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "field: near field (guessed from features shift with the scan" in out
    assert "magnified ~" in out and "data.source_to_sample_m" in out
    assert main(["info", str(path), "--field", "far"]) == 0
    assert "field: far field (data.field)" in capsys.readouterr().out
    cfg = ReconConfig()
    cfg.data.path, cfg.data.source_to_sample_m = str(path), 3.65e-3
    to_toml(cfg, tmp_path / "run.toml")
    assert main(["info", str(tmp_path / "run.toml")]) == 0
    out = capsys.readouterr().out
    assert "field: near field (data.source_to_sample_m)" in out
    assert "cone beam (data.source_to_sample_m = 3.65 mm): magnification 307.8" in out
    text = describe_file(files["far, ring in FFT order"][0])
    assert "far field (guessed from direct beam in the corners" in text
    assert "far-field frames: FFT order, detected" in text


def test_a_zero_one_fixture_file_without_translations_is_a_single_frame(files):
    """Holography and CDI fixtures hold one frame and no scan: the guess works on the frame."""
    for name in ("near, holography", "far, single frame (CDI)"):
        path, fx = files[name]
        with h5py.File(path) as f:
            assert "entry_1/sample_1" not in f
        with open_dataset(path) as ds:
            assert ds.n_spots == 1 and ds.modality == fx["field"] + "field"


def test_a_scan_lighting_a_third_of_the_detector_reconstructs_from_the_example(tmp_path, capsys):
    """The issue's "done when": a focused beam lighting a third of the detector (dark rim, int32
    counts): `slicewise info` calls it near field before any key is set, and the example
    configuration with only the path and data.source_to_sample_m reconstructs it."""
    from slicewise.engine.io.results import read_result
    from slicewise.engine.recon.config import example_config
    from slicewise.engine.twin import phase_correlation, simulate_twin

    small = dict(n_frames=48, frame=48, scan_m=9e-6, n_spokes=24)
    path = tmp_path / "disc.cxi"
    truth = simulate_twin(path, seed=2, lit_fraction=1 / 3, **small)
    with h5py.File(path) as f:
        mean = f["entry_1/data_1/data"][()].mean(axis=0)
    assert np.median(mean) < 0.01 * mean.max()          # the median falls in the dark rim
    assert main(["info", str(path)]) == 0
    assert "field: near field (guessed from" in capsys.readouterr().out
    text = example_config("nearfield-ptycho").replace('path = "scan.cxi"', f'path = "{path}"')
    text = text.replace("# source_to_sample_m = <float>   (unset)", "source_to_sample_m = 3.65e-3")
    (tmp_path / "nf.toml").write_text(text)
    assert main(["reconstruct", str(tmp_path / "nf.toml"), "--epochs", "35", "--backend", "numpy",
                 "--out", str(tmp_path / "run")]) == 0
    res = read_result(tmp_path / "run" / "result.h5")
    # over the area the disc lit (12 px inside the outermost frames): measured 0.95
    corr = phase_correlation(res["object"][0], truth["transmission"], res["initial"]["positions"],
                             truth["positions"], small["frame"], inset=12)
    assert corr > 0.87, corr


def test_info_describes_the_frame_order_as_read(files):
    """Centred CXI patterns are unitary-FFT intensities, centred (not Adorym's unnormalised FFT);
    FFT-order ones are read as stored."""
    text = describe_file(files["far, focused beam"][0])
    assert "(intensities, centred in the file)" in text and "unnormalised" not in text
    assert "(intensities in the file)" in describe_file(files["far, FFT order"][0])
