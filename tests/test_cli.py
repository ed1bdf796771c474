"""The ``slicewise`` command line, run in-process through ``main([...])``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from slicewise.engine import __version__
from slicewise.cli.main import main
from slicewise.engine.io.readers import open_dataset
from slicewise.engine.io.results import read_result
from slicewise.engine.recon.config import from_toml

SMALL_PTYCHO = ["--modality", "ptycho", "--phantom", "siemens", "--shape", "1", "32", "32",
                "--material", "gold", "--pixel-m", "1e-8", "--probe-shape", "16", "16",
                "--probe-size-px", "3", "--probe-defocus-m", "5e-5", "--step-px", "4",
                "--photons", "1e5", "--seed", "3", "--backend", "numpy"]


@pytest.fixture(scope="module")
def ptycho_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "star.h5"
    assert main(["simulate", str(path), *SMALL_PTYCHO]) == 0
    return path


def write_config(folder, data_name="star.h5", extra=""):
    """A minimal configuration; data.path is relative to the configuration file's folder."""
    cfg = folder / "recon.toml"
    cfg.write_text(f'[data]\npath = "{data_name}"\n\n[model]\nkind = "ptycho"\n\n'
                   '[optimizer]\nlr_delta = 1e-6\n\n[run]\nepochs = 50\nbatch_spots = 5\n'
                   f'backend = "numpy"\nsave_tiff = false\n{extra}')
    return cfg


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"slicewise {__version__}"


def test_simulate_writes_a_readable_file(ptycho_file, capsys):
    ds = open_dataset(ptycho_file)
    assert ds.modality == "farfield" and ds.shape == (1, 25, 16, 16)
    assert ds.object_shape_yx == (32, 32) and ds.probe.shape == (1, 16, 16)
    assert set(ds.truth) >= {"delta", "beta"} and np.asarray(ds.truth["delta"]).max() > 0
    assert ds.pixel_size_m == pytest.approx(1e-8)
    ds.close()


def test_simulate_preset_and_bad_flag(tmp_path, capsys):
    out = tmp_path / "cone.h5"
    assert main(["simulate", str(out), "--preset", "cone-holotomo", "--angles", "3",
                 "--shape", "16", "16", "16", "--backend", "numpy"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert open_dataset(out).shape == (3, 2, 16, 16)
    assert main(["simulate", str(tmp_path / "x.h5"), "--energy-ev", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "energy_ev" in err and "\n" not in err
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("kind", ["ptycho", "holo", "tomo"])
def test_example_configs_parse(kind, capsys, tmp_path):
    assert main(["reconstruct", "--example", kind]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Slicewise reconstruction configuration")
    cfg = from_toml(text)
    assert cfg.data.path and cfg.model.kind in ("ptycho", "holo", "auto")
    (tmp_path / f"{kind}.toml").write_text(text)  # and as a file (what the user does with it)
    assert from_toml(tmp_path / f"{kind}.toml") == cfg


def test_reconstruct_then_resume(ptycho_file, tmp_path, capsys):
    folder = ptycho_file.parent
    cfg = write_config(folder)
    out = tmp_path / "run1"
    assert main(["reconstruct", str(cfg), "--epochs", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "finished: 2/2 epochs" in text and str(out / "result.h5") in text
    for name in ("result.h5", "checkpoint.h5", "config.toml"):
        assert (out / name).is_file(), name
    res = read_result(out / "result.h5")
    assert res["epoch"] == 2 and res["params"]["delta"].shape == (1, 32, 32)
    assert from_toml(out / "config.toml").run.epochs == 2  # the configuration actually used

    # --resume continues from the checkpoint's epoch up to the new --epochs
    out2 = tmp_path / "run2"
    assert main(["reconstruct", str(cfg), "--epochs", "5", "--out", str(out2),
                 "--resume", str(out / "checkpoint.h5")]) == 0
    assert "finished: 5/5 epochs" in capsys.readouterr().out
    res2 = read_result(out2 / "result.h5")
    assert res2["epoch"] == 5 and len(res2["loss"]["total"]) == 5
    np.testing.assert_array_equal(res2["loss"]["total"][:2], res["loss"]["total"])
    assert res2["loss"]["total"][-1] < res2["loss"]["total"][0]


@pytest.mark.parametrize("body, field", [
    ('[optimizer]\nlr_delta = "fast"\n', "optimizer.lr_delta"),
    ('[optimiser]\nlr_delta = 1e-7\n', "optimizer"),            # misspelt group: a suggestion
    ('[run]\nepochs = 2\nbatch_spots = 5\n[optimizer]\nkind = "lbfgs"\n[data]\npath = "{data}"\n',
     "run.batch_spots"),                                          # refused against the data
    ('[data\npath = 1\n', "invalid TOML"),
])
def test_bad_config_is_one_line_exit_2(body, field, ptycho_file, tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body.replace("{data}", ptycho_file.as_posix()))
    assert main(["reconstruct", str(cfg), "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and field in err, err
    assert "\n" not in err and "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "o" / "result.h5").exists()


def test_missing_config_file(tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--example" in err


def test_headless_demo_two_epochs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--headless", "--epochs", "2", "--out", str(out), "--backend", "numpy"]) == 0
    text = capsys.readouterr().out
    assert "3D correlation with the truth" in text
    assert read_result(out / "result.h5")["epoch"] == 2
    assert (out / "checkpoint.h5").is_file() and (out / "cone_holotomo.h5").is_file()


def test_console_script_entry_point():
    """``python -m slicewise.cli --version`` in a fresh interpreter: no Qt, instant."""
    proc = subprocess.run([sys.executable, "-m", "slicewise.cli", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"slicewise {__version__}"


def test_simulate_step_from_overlap(tmp_path, capsys):
    out = tmp_path / "ov.h5"
    args = [a for a in SMALL_PTYCHO]
    i = args.index("--step-px")
    del args[i:i + 2]
    # Airy radius 3 px -> diameter 6 px; 50 % overlap -> 3 px steps: 6 x 6 raster on 32 - 16 px
    assert main(["simulate", str(out), *args, "--overlap", "0.5"]) == 0
    pos = open_dataset(out).positions_px
    assert np.allclose(np.diff(np.unique(pos[:, 0])), 3.0)
    assert main(["simulate", str(out), *SMALL_PTYCHO, "--overlap", "0.5"]) == 2
    assert "either --step-px or --overlap" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_and_checkpoints(ptycho_file, tmp_path):
    """SIGINT during `slicewise reconstruct`: the current minibatch ends, a checkpoint is written,
    the exit is clean (code 128 + SIGINT: a stopped run, not a finished one), and the checkpoint
    resumes."""
    import signal
    import time

    cfg = write_config(ptycho_file.parent, extra="checkpoint_every = 1\n")
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "slicewise.cli", "reconstruct", str(cfg),
                             "--epochs", "100000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while not (out / "checkpoint.h5").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert (out / "checkpoint.h5").exists(), "no checkpoint within 60 s"
    proc.send_signal(signal.SIGINT)
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, text[-2000:]
    assert "stopped:" in text
    res = read_result(out / "checkpoint.h5")
    assert 1 <= res["epoch"] < 100000
    assert np.isfinite(res["params"]["delta"]).all()
