"""``slicewise doctor``: in-process (each check) and as a command in a child process."""

from __future__ import annotations

import os
import platform
import re
import shutil
import stat
import subprocess
import sys

import h5py
import numpy as np
import pytest

from slicewise.cli import doctor
from slicewise.cli.main import main
from slicewise.engine.backend import BackendError, get_backend

try:
    get_backend("cupy")
    HAS_GPU = True
except BackendError:
    HAS_GPU = False
HAS_DISPLAY = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and \
    os.environ.get("QT_QPA_PLATFORM", "xcb") not in ("offscreen", "minimal")
MPIEXEC = doctor.find_mpiexec()


def _lines(text: str) -> dict[str, str]:
    """``{check name: "[status] name: detail" line}`` of the command's output."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"\[\s*(\S+)\s*\] ([^:]+): ", line)
        if m:
            out[m.group(2)] = line
    return out


def _status(line: str) -> str:
    return line[1:8].strip()


def _run(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slicewise.cli", "doctor", *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_plain_doctor_reports_versions_and_passes(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    lines = _lines(out)
    assert platform.python_version() in lines["Python"] and _status(lines["Python"]) == "ok"
    assert f"numpy {np.__version__}" in lines["engine packages"]
    assert f"h5py {h5py.__version__}" in lines["engine packages"]
    assert "blosc" in lines["HDF5 filters"] and _status(lines["HDF5 filters"]) == "ok"
    assert {"GPU", "memory", "disk", "MPI"} <= set(lines)
    assert _status(lines["GPU"]) == ("ok" if HAS_GPU else "note")
    assert out.strip().splitlines()[-1].startswith("everything asked for works")


def test_asking_for_the_gpu_fails_without_one(capsys):
    code = main(["doctor", "--gpu"])
    out = capsys.readouterr().out
    gpu = _lines(out)["GPU"]
    if HAS_GPU:
        assert code == 0 and _status(gpu) == "ok" and "CuPy on" in gpu
    else:
        assert code == 1 and _status(gpu) == "PROBLEM" and "cupy" in gpu.lower()
        assert "NumPy/SciPy" in gpu and out.strip().endswith("problem(s): GPU")


def test_slicewise_backend_cupy_asks_for_the_gpu():
    checks = {c.name: c for c in doctor.iter_checks(env={"SLICEWISE_BACKEND": "cupy"})}
    assert checks["GPU"].status == (doctor.OK if HAS_GPU else doctor.PROBLEM)
    assert "display" in checks and checks["display"].status == doctor.NOTE  # no display in env


def test_display_check():
    assert doctor.check_display({}, required=True).status == doctor.PROBLEM
    none = doctor.check_display({}, required=False)
    assert none.status == doctor.NOTE and "xvfb-run" in none.detail
    assert doctor.check_display({"DISPLAY": ":7"}, required=True).detail == "DISPLAY=:7"
    assert doctor.check_display({"QT_QPA_PLATFORM": "offscreen"}, True).status == doctor.OK


def test_memory_and_disk_are_measured(tmp_path):
    avail, total = doctor.available_memory_bytes()
    assert 0 < avail <= total
    disk = doctor.check_disk(tmp_path)
    free = float(re.match(r"([\d.]+) GiB free", disk.detail).group(1))
    assert free == pytest.approx(shutil.disk_usage(tmp_path).free / 2**30, abs=0.5)
    gone = doctor.check_disk(tmp_path / "no such folder")
    assert gone.status == doctor.WARNING and "cannot read" in gone.detail


def test_missing_package_is_a_problem_only_when_required():
    pkgs = (("numpy", "numpy"), ("no-such-dist", "no_such_module_for_slicewise"))
    bad = doctor.check_packages(pkgs, "x", True, "install it")
    assert bad.status == doctor.PROBLEM and "missing no-such-dist; install it" in bad.detail
    assert f"numpy {np.__version__}" in bad.detail
    assert doctor.check_packages(pkgs, "x", False, "install it").status == doctor.NOTE


@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (install the 'mpi' extra)")
def test_mpiexec_of_another_mpi_is_named(tmp_path):
    """An mpiexec of another MPI library starts each rank as a world of its own (MPI_Init finds
    none of its launcher's variables): emulated by a launcher that starts plain processes."""
    fake = tmp_path / "mpiexec"
    fake.write_text('#!/bin/sh\nn=$2; shift 2\nfor i in $(seq "$n"); do "$@" & done\nwait\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    check = doctor._check_world(str(fake), 2)
    assert check.status == doctor.PROBLEM and "another MPI library" in check.detail
    assert doctor._check_world(MPIEXEC, 2).status == doctor.OK


@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (install the 'mpi' extra)")
def test_doctor_mpi_command_starts_two_ranks():
    proc = _run("--mpi")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = _lines(proc.stdout)
    assert _status(lines["MPI"]) == "ok" and "mpi4py" in lines["MPI"]
    assert lines["mpiexec"].endswith("2 ranks make one world")


def test_doctor_gui_without_a_display_fails():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = _run("--gui", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = _lines(proc.stdout)
    assert _status(lines["display"]) == "PROBLEM" and "OpenGL" not in lines
    assert proc.stdout.strip().endswith("1 problem(s): display")


@pytest.mark.napari
@pytest.mark.skipif(not HAS_DISPLAY, reason="needs a display with OpenGL (xvfb-run, QT_QPA_PLATFORM=xcb)")
def test_doctor_gui_draws_with_opengl():
    proc = _run("--gui")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = _lines(proc.stdout)
    gl = lines["OpenGL"]
    assert _status(gl) == "ok" and "a test volume was drawn" in gl and "OpenGL" in gl
    assert _status(lines["desktop packages"]) == "ok" and "napari" in lines["desktop packages"]
    napari = lines["3D view"]
    assert _status(napari) == "ok" and "drew a test volume" in napari and "napari-svg" in napari


def test_opengl_probe_failure_is_a_problem():
    """The offscreen Qt platform has no OpenGL widgets: the probe draws nothing and says why."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    check = doctor.check_opengl(env, required=True)
    assert check.status == doctor.PROBLEM and "no working OpenGL" in check.detail
    assert doctor.check_opengl(env, required=False).status == doctor.NOTE
