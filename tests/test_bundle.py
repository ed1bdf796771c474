"""The frozen desktop bundle (packaging/build_bundle.sh) started as a user would.

Runs when ``SLICEWISE_BUNDLE`` names the bundle's program (``dist/slicewise/slicewise``):
``build_bundle.sh`` and CI (``bootstrap.sh test`` with ``CI=true``) set it after building.
The GUI tests need a display with OpenGL (``xvfb-run``, ``QT_QPA_PLATFORM=xcb``).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine import __version__
from slicewise.engine.io.results import read_result

BUNDLE = os.environ.get("SLICEWISE_BUNDLE", "")
HAS_DISPLAY = bool(os.environ.get("DISPLAY")) and \
    os.environ.get("QT_QPA_PLATFORM", "xcb") not in ("offscreen", "minimal")

pytestmark = pytest.mark.skipif(not BUNDLE, reason="no bundle: build one with "
                                "bash packaging/build_bundle.sh (it sets SLICEWISE_BUNDLE)")
needs_display = pytest.mark.skipif(not HAS_DISPLAY, reason="needs a display with OpenGL "
                                   "(xvfb-run, QT_QPA_PLATFORM=xcb)")

TINY_PTYCHO = ["--modality", "ptycho", "--phantom", "siemens", "--shape", "1", "32", "32",
               "--material", "gold", "--pixel-m", "1e-8", "--probe-shape", "16", "16",
               "--probe-size-px", "3", "--probe-defocus-m", "5e-5", "--step-px", "4",
               "--photons", "1e5", "--seed", "3", "--backend", "numpy"]


def frozen(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the bundle's program; no Python of ours is involved."""
    program = Path(BUNDLE).resolve()
    assert program.is_file() and os.access(program, os.X_OK), f"{program} is not a program"
    return subprocess.run([str(program), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_frozen_version():
    proc = frozen("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"slicewise {__version__}"


def test_frozen_doctor(tmp_path):
    proc = frozen("doctor", *(["--gui"] if HAS_DISPLAY else []), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].startswith(f"slicewise {__version__}: frozen bundle in ")
    assert re.search(r"\[\s*ok\s*\] HDF5 filters: .*blosc.*lz4", proc.stdout)
    assert re.search(r"\[\s*ok\s*\] engine packages: numpy .*xraylib", proc.stdout)
    assert "MPI: not in the desktop bundle" in proc.stdout
    if HAS_DISPLAY:
        assert re.search(r"\[\s*ok\s*\] OpenGL: .*a test volume was drawn", proc.stdout)
        assert re.search(r"\[\s*ok\s*\] 3D view: napari .* plugins: .*napari-svg", proc.stdout)


def test_frozen_headless_demo_one_epoch(tmp_path):
    proc = frozen("demo", "--headless", "--epochs", "1", "--out", "demo", "--backend", "numpy",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    corr = float(re.search(r"correlation with the truth: delta ([\d.]+)", proc.stdout).group(1))
    assert corr > 0.8  # the phase-retrieval start alone is that good (engine/demo.py)
    res = read_result(tmp_path / "demo" / "result.h5")
    assert res["epoch"] == 1 and res["delta"].shape == (48, 48, 48)
    assert all(len(v) == 1 and np.isfinite(v).all() for v in res["loss"].values())
    assert (tmp_path / "demo" / "delta.tif").stat().st_size > 48 ** 3


@needs_display
def test_frozen_window_runs_one_epoch(tmp_path):
    """The window starts its solver process from the bundle (``-m`` handled by frozen_main)."""
    assert frozen("simulate", "star.h5", *TINY_PTYCHO, cwd=tmp_path).returncode == 0
    (tmp_path / "r.toml").write_text('[data]\npath = "star.h5"\n[model]\nkind = "ptycho"\n'
                                     '[run]\nepochs = 1\nbackend = "numpy"\nsave_tiff = false\n'
                                     'output_dir = "out"\n')
    proc = frozen("gui", "r.toml", "--start", "--quit-when-done", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    res = read_result(tmp_path / "out" / "result.h5")
    assert res["epoch"] == 1 and res["delta"].shape == (1, 32, 32)
    assert all(len(v) == 1 and np.isfinite(v).all() for v in res["loss"].values())
