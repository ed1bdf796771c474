"""MPI at the presets' sizes, with the example configurations and all their automatic choices.

``mpiexec -n 2|3 slicewise reconstruct`` on ``slicewise simulate --preset ...`` data, as a user
runs it (the examples' precision, optimiser and minibatches chosen by ``auto``, measured learning rates,
physics-based initial guesses, probe refinement and probe search): every rank must make the same
choices and the same collective calls, or the job aborts ("Message truncated") or hangs. Each run
is compared with one process on the same data: the same choices, and the same loss up to
single-precision rounding (the ranks sum their gradients in another order).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.io.hdf5 import h5py_module
from slicewise.engine.io.results import read_result
from slicewise.engine.recon.config import example_config
from slicewise.engine.simulate import PRESETS, SimulationConfig, simulate

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (install the 'mpi' extra)")
LAUNCH = "import sys\nfrom slicewise.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"

#: case -> (preset, example configuration, ranks, epochs, {key: TOML value} changed)
CASES = {
    # probe refinement starts at epoch 3: its rate is measured mid-run on every rank
    "star-ptycho, 2 ranks": ("star-ptycho", "ptycho", 2, 3, {}),
    # no probe in the file: derived from the data, then the probe search's short fits
    "star-ptycho without probe, probe search, 3 ranks": ("star-ptycho", "ptycho", 3, 1,
                                                         {"probe_search": '"on"'}),
    # one frame: L-BFGS on the full batch, ranks 1 and 2 evaluate nothing
    "spheres-holo, 3 ranks": ("spheres-holo", "holo", 3, 3, {}),
    # filtered back-projection start, Adam over angles
    "cone-holotomo, 2 ranks": ("cone-holotomo", "tomo", 2, 1, {}),
    "cone-ptychotomo, 3 ranks": ("cone-ptychotomo", "tomo", 3, 1, {}),
}


@pytest.fixture(scope="module")
def preset_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("presets")
    cache = {}

    def get(preset: str, without_probe: bool = False) -> Path:
        key = (preset, without_probe)
        if key not in cache:
            path = folder / f"{preset}{'-noprobe' if without_probe else ''}.h5"
            simulate(SimulationConfig.from_dict(dict(PRESETS[preset])), path, "numpy")
            if without_probe:
                with h5py_module().File(path, "a") as f:
                    del f["probe"]
            cache[key] = path
        return cache[key]

    return get


def _configure(example: str, data: Path, changes: dict, folder: Path) -> Path:
    text = example_config(example)
    for key, value in {"path": f'"{data}"', **changes}.items():  # keys unique in the example
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert n == 1, key
    cfg = folder / f"{example}.toml"
    cfg.write_text(text)
    return cfg


def _reconstruct(launcher: list[str], cfg: Path, epochs: int, out: Path) -> str:
    proc = subprocess.run([*launcher, sys.executable, "-c", LAUNCH, "reconstruct", str(cfg),
                           "--epochs", str(epochs), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=cfg.parent,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    for bad in ("Traceback", "Abort", "BAD TERMINATION"):
        assert bad not in text, text[-4000:]
    return text


def _choices(out: Path) -> dict:
    chosen = tomllib.loads((out / "config.toml").read_text())
    chosen["run"].pop("output_dir")
    return chosen


@pytest.mark.parametrize("case", list(CASES))
def test_presets_on_several_ranks_match_one_process(case, preset_data, tmp_path):
    preset, example, ranks, epochs, extra = CASES[case]
    data = preset_data(preset, without_probe="without probe" in case)
    cfg = _configure(example, data, extra, tmp_path)
    _reconstruct([], cfg, epochs, tmp_path / "one")
    text = _reconstruct([MPIEXEC, "-n", str(ranks)], cfg, epochs, tmp_path / "many")
    assert f"{ranks} MPI ranks" in text
    if "probe search" in case:
        assert "init.probe_search: defocus" in text
    # identical choices; a rate measured mid-run (the probe's) sees single-precision rounding
    one_choices, many_choices = _choices(tmp_path / "one"), _choices(tmp_path / "many")
    assert many_choices.keys() == one_choices.keys()
    for table, values in one_choices.items():
        assert many_choices[table].keys() == values.keys(), table
        for key, value in values.items():
            other = many_choices[table][key]
            if isinstance(value, float):
                assert other == pytest.approx(value, rel=1e-4), f"{table}.{key}"
            else:
                assert other == value, f"{table}.{key}"
    one, many = read_result(tmp_path / "one" / "result.h5"), read_result(tmp_path / "many" / "result.h5")
    assert many["epoch"] == one["epoch"] == epochs
    np.testing.assert_allclose(many["loss"]["total"], one["loss"]["total"], rtol=2e-3)
    for name in ("delta", "beta"):
        a, b = one["params"][name].ravel(), many["params"][name].ravel()
        assert a.dtype == b.dtype == (np.float64 if example == "holo" else np.float32)
        assert np.corrcoef(a, b)[0, 1] > 0.99, name
