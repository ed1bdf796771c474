"""The memory estimate: made before anything object-sized is allocated, counting what the run
really holds (configured probe modes, minibatches no larger than the data), and within a factor
of 2 of the traced peak of real runs (measured: estimate / peak = 1.45, 1.69, 1.44, 0.80, 1.43 for the
five cases below; minibatch runs also hold the tape of the learning-rate measurement
on 32 spots)."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from slicewise.cli.main import main
from slicewise.engine.errors import SlicewiseError
from slicewise.engine.recon.config import ReconConfig
from slicewise.engine.recon.run import Reconstruction
from slicewise.engine.simulate import SimulationConfig, simulate
from small_runs import gold_star, quick_config

FACTOR = 2.0

MEASURE = """
import json, sys, tracemalloc
from slicewise.engine.recon.config import ReconConfig, set_value
from slicewise.engine.recon.run import Reconstruction
path, out, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
cfg = ReconConfig()
cfg.data.path, cfg.run.output_dir = path, out
cfg.run.backend, cfg.run.save_tiff, cfg.run.epochs = "numpy", False, 1
for k, v in overrides.items():
    set_value(cfg, k, v)
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
rec = Reconstruction(cfg)
rec.run()
print(json.dumps([rec.memory_estimate_bytes, tracemalloc.get_traced_memory()[1] - base]))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("mem")
    return {
        "ptycho": gold_star(d / "p.h5", n=128, probe_px=64, probe_size_px=10.0, step_px=8.0),
        "holo": simulate(SimulationConfig(modality="holo", n_angles=6, object_shape=(32, 32, 32)),
                         d / "h.h5", "numpy"),
    }


def config(path, out, **overrides) -> ReconConfig:
    return quick_config(path, out, 1, {k.replace("__", "."): v for k, v in overrides.items()})


@pytest.mark.parametrize("kind, overrides", [
    ("ptycho", {"optimizer.kind": "adam", "run.batch_spots": 32}),
    ("ptycho", {"optimizer.kind": "adam", "run.batch_spots": 16, "model.n_slices": 4}),
    ("ptycho", {"optimizer.kind": "adam", "run.batch_spots": 8, "model.n_slices": 16}),
    ("holo", {"optimizer.kind": "adam", "run.batch_angles": 2}),
    ("holo", {"optimizer.kind": "adam", "run.batch_angles": 6}),
])
def test_estimate_is_within_a_factor_of_the_traced_peak(kind, overrides, files, tmp_path):
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(files[kind]), str(tmp_path / "o"),
                           json.dumps(overrides)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    estimate, peak = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{kind} {overrides}: estimate {estimate / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB")
    assert peak / FACTOR <= estimate <= peak * FACTOR


def test_configured_probe_modes_and_batch_sizes_are_counted(files, tmp_path):
    def estimate(**kw):
        return Reconstruction(config(files["ptycho"], tmp_path / "o", optimizer__kind="adam",
                                     **kw)).memory_estimate_bytes

    one, three = estimate(model__probe_modes=1), estimate(model__probe_modes=3)
    assert three > 2 * one * 0.9  # the file holds one mode; the run holds three
    # a minibatch larger than the data is the whole data, not a larger batch
    assert estimate(run__batch_spots=10**6) == estimate(run__batch_spots=0)


def test_huge_object_refused_before_it_is_allocated(files, tmp_path, capsys):
    cfg = config(files["ptycho"], tmp_path / "o", optimizer__kind="adam")
    cfg.model.object_shape = [2048, 2048, 2048]  # 2 x 32 GiB of delta/beta, before any state
    tracemalloc.start()
    with pytest.raises(SlicewiseError) as info:
        Reconstruction(cfg)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "model.object_shape" in str(info.value) and "GiB" in str(info.value)
    assert peak < 256 * 2**20  # nothing object-sized was allocated
    toml = tmp_path / "c.toml"
    toml.write_text(f'[data]\npath = "{files["ptycho"].as_posix()}"\n[model]\n'
                    'object_shape = [2048, 2048, 2048]\n[run]\nbackend = "numpy"\n')
    assert main(["reconstruct", str(toml), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "model.object_shape" in err


@pytest.fixture()
def star(tmp_path):
    return gold_star(tmp_path / "star.h5")  # 8x8 probe window: 64 pixels


def _no_modes_made(monkeypatch):
    """Fail if the (quadratic) construction of probe modes starts."""
    from slicewise.engine.recon.setup import measured, model_setup

    def refuse(*args, **kwargs):
        raise AssertionError("probe modes were made before the check")
    for module in (model_setup, measured):
        monkeypatch.setattr(module, "probe_modes", refuse)


def test_more_probe_modes_than_window_pixels_refused_before_any_work(star, tmp_path, monkeypatch,
                                                                   capsys):
    _no_modes_made(monkeypatch)
    with pytest.raises(SlicewiseError) as info:
        Reconstruction(config(star, tmp_path / "o", model__probe_modes=10000))
    msg = str(info.value)
    assert msg.startswith("model.probe_modes = 10000") and "64 pixels of the 8x8" in msg, msg
    toml = tmp_path / "c.toml"
    toml.write_text(f'[data]\npath = "{star.as_posix()}"\n[model]\nprobe_modes = 10000\n'
                    '[run]\nbackend = "numpy"\n')
    assert main(["reconstruct", str(toml), "--out", str(tmp_path / "o2")]) == 2
    assert "model.probe_modes" in capsys.readouterr().err


def test_probe_modes_that_cannot_fit_are_refused_before_they_are_made(star, tmp_path,
                                                                      monkeypatch):
    """Memory first: 60 modes of the star's 8x8 window fit the count, not a 1 MiB machine."""
    from slicewise.engine.recon.setup import memory

    _no_modes_made(monkeypatch)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda backend: 2**20)
    with pytest.raises(SlicewiseError) as info:
        Reconstruction(config(star, tmp_path / "o", model__probe_modes=60))
    assert "model.probe_modes = 60" in str(info.value) and "fewer probe modes" in str(info.value)
