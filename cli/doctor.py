"""``slicewise doctor``: what works on this machine, and what to do about what does not.

Each check gives one line: ``ok``, ``note`` (an optional part absent or slow: how to get it),
``warning`` (works, but something will likely go wrong: little memory or disk) or ``PROBLEM``
(broken). The core (Python, the engine's packages, HDF5 compression filters) is always required;
the GPU, the desktop application (display, OpenGL, napari for the 3D view) and MPI are required when
asked for (``--gpu``, ``--gui``, ``--mpi``; ``SLICEWISE_BACKEND=cupy`` asks for the GPU). The
exit code is 1 when a required check is a PROBLEM, else 0.

The OpenGL, napari and MPI checks run in a child process (:mod:`.doctor_probe`): Qt aborts when it cannot
reach a display, and a broken MPI may abort or hang.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from slicewise.engine import __version__

OK, NOTE, WARNING, PROBLEM = "ok", "note", "warning", "PROBLEM"

#: (distribution, import name) of the engine's dependencies: all required.
CORE = (("numpy", "numpy"), ("scipy", "scipy"), ("h5py", "h5py"), ("hdf5plugin", "hdf5plugin"),
        ("tifffile", "tifffile"), ("xraylib", "xraylib"), ("tqdm", "tqdm"), ("tomli-w", "tomli_w"))
#: The ``gui`` extra's packages.
GUI = (("PyQt6", "PyQt6"), ("pyqtgraph", "pyqtgraph"), ("napari", "napari"), ("vispy", "vispy"),
       ("qtpy", "qtpy"))
#: Below these, a run is likely to fail for lack of room (GiB).
LOW_MEMORY_GIB, LOW_DISK_GIB = 2.0, 2.0
#: Seconds a probe in a child process may take (napari starts in a few seconds).
PROBE_TIMEOUT_S = 60


@dataclass(frozen=True)
class Check:
    status: str   # OK | NOTE | WARNING | PROBLEM
    name: str     # "OpenGL"
    detail: str   # one line: what was found, or what is wrong and the fix

    def line(self) -> str:
        return f"[{self.status:^7}] {self.name}: {self.detail}"


def _failed(required: bool) -> str:
    return PROBLEM if required else NOTE


# ---- versions ------------------------------------------------------------------------------------

def _version(dist: str, module: str) -> str | None:
    """The installed version, or None when the module cannot be found (no import: fast)."""
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:  # a bundle without the metadata: ask it
        try:
            return str(getattr(importlib.import_module(module), "__version__", "version unknown"))
        except Exception:  # noqa: BLE001 - found but broken: as good as missing
            return None


def install_kind() -> str:
    """How this Slicewise is installed: a frozen bundle, an editable (source) or a normal install."""
    if getattr(sys, "frozen", False):
        return f"frozen bundle in {Path(sys.executable).parent}"
    try:
        dist = importlib.metadata.distribution("slicewise")
        direct = dist.read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return "not installed (run from the source tree)"
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        return f"editable install of {json.loads(direct)['url'].removeprefix('file://')}"
    return f"installed in {dist.locate_file('')}"


def check_python() -> Check:
    v = sys.version_info
    where = "" if getattr(sys, "frozen", False) else f" ({sys.executable})"
    if v < (3, 10):
        return Check(PROBLEM, "Python", f"{platform.python_version()}: Slicewise needs 3.10 or newer")
    return Check(OK, "Python", f"{platform.python_version()} on {platform.system()} "
                               f"{platform.machine()}{where}")


def check_packages(packages, name: str, required: bool, fix: str) -> Check:
    found, missing = [], []
    for dist, module in packages:
        v = _version(dist, module)
        (found if v else missing).append(f"{dist} {v}" if v else dist)
    if missing:
        return Check(_failed(required), name, f"missing {', '.join(missing)}; {fix}"
                     + (f" (found {', '.join(found)})" if found else ""))
    return Check(OK, name, ", ".join(found))


def check_hdf5_filters() -> Check:
    """hdf5plugin's filters registered with h5py, and a Blosc/LZ4 dataset written and read back."""
    try:
        import h5py  # noqa: PLC0415 - only when checked
        import hdf5plugin  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415

        data = np.arange(4096, dtype=np.float32).reshape(64, 64)
        with h5py.File("doctor.h5", "w", driver="core", backing_store=False) as f:
            f.create_dataset("x", data=data, chunks=(32, 32), **hdf5plugin.Blosc(cname="lz4"))
            same = np.array_equal(f["x"][()], data)
        names = [n for n, fid in sorted(hdf5plugin.FILTERS.items()) if h5py.h5z.filter_avail(fid)]
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return Check(PROBLEM, "HDF5 filters", f"{type(exc).__name__}: {exc}; compressed data "
                     "files cannot be read (reinstall h5py and hdf5plugin)")
    if not same:
        return Check(PROBLEM, "HDF5 filters", "a Blosc-compressed dataset did not read back equal")
    return Check(OK, "HDF5 filters", f"HDF5 {h5py.version.hdf5_version}; compressed datasets "
                                     f"readable: {', '.join(names)}")


# ---- GPU -------------------------------------------------------------------------------------------

def check_gpu(required: bool) -> Check:
    """The array backend: CuPy on a GPU (engine/backend.py decides), else why not."""
    from slicewise.engine.backend import BackendError, get_backend  # noqa: PLC0415

    try:
        return Check(OK, "GPU", get_backend("cupy").describe())
    except BackendError as exc:
        why = str(exc).split("cannot be used: ", 1)[-1].split(". Use backend")[0]
    nvidia = shutil.which("nvidia-smi")
    hint = (f"; an NVIDIA driver is present ({nvidia}): install the 'gpu' extra, "
            "pip install 'slicewise[gpu]'" if nvidia and "not importable" in why else "")
    cpu = f"reconstructions run on NumPy/SciPy on {os.cpu_count()} CPU cores"
    return Check(_failed(required), "GPU", f"not used ({why}){hint}; {cpu}")


# ---- desktop application ---------------------------------------------------------------------------

def check_display(env, required: bool) -> Check:
    qpa = env.get("QT_QPA_PLATFORM", "")
    if qpa in ("offscreen", "minimal"):
        return Check(OK, "display", f"none needed: QT_QPA_PLATFORM={qpa} (windows are not shown)")
    shown = [f"{k}={env[k]}" for k in ("WAYLAND_DISPLAY", "DISPLAY") if env.get(k)]
    if shown:
        return Check(OK, "display", ", ".join(shown) + (f", QT_QPA_PLATFORM={qpa}" if qpa else ""))
    return Check(_failed(required), "display", "none (DISPLAY and WAYLAND_DISPLAY unset): the window "
                 "cannot open here; log in with a desktop (ssh -X) or run under xvfb-run, or use "
                 "the headless commands (reconstruct, demo --headless)")


def _probe(args: list[str], env=None) -> tuple[dict | None, str]:
    """Run a :mod:`.doctor_probe` child; its JSON result, or None and why it gave none."""
    cmd = [sys.executable, "-m", "slicewise.cli.doctor_probe", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"no answer within {PROBE_TIMEOUT_S} s"
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line), ""
    errors = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    why = next((ln for ln in errors if "could not" in ln.lower() or "error" in ln.lower()),
               errors[-1] if errors else "")
    return None, f"the probe process ended with code {proc.returncode}" + (f" ({why})" if why else "")


def check_opengl(env, required: bool) -> Check:
    """An OpenGL context made and a volume drawn as napari's 3D view does (vispy on PyQt6)."""
    result, why = _probe(["gl"], env=dict(env))
    if result is None or not result.get("ok"):
        why = why or result.get("error", "")
        return Check(_failed(required), "OpenGL", f"no working OpenGL for the 3D view ({why}); "
                     "install the Mesa drivers (Debian: apt install libgl1-mesa-dri libegl1) or "
                     "your GPU's driver")
    detail = (f"{result['renderer']}, OpenGL {result['version']} (Qt platform "
              f"{result['platform']}); a test volume was drawn")
    if any(s in result["renderer"].lower() for s in ("llvmpipe", "softpipe", "swrast")):
        return Check(OK, "OpenGL", detail + "; software rendering: the 3D view works, slowly")
    return Check(OK, "OpenGL", detail)


def check_napari(env, required: bool) -> Check:
    """napari itself: a viewer drawing a volume in 3D, and the plugins it found."""
    result, why = _probe(["napari"], env=dict(env))
    if result is None or not result.get("ok"):
        why = why or result.get("error", "")
        return Check(_failed(required), "3D view", f"napari cannot draw a volume ({why}); "
                     "reinstall the 'gui' extra: pip install --force-reinstall 'slicewise[gui]'")
    return Check(OK, "3D view", f"napari {result['napari']} drew a test volume; plugins: "
                                f"{', '.join(result['plugins']) or 'none'}")


# ---- MPI -----------------------------------------------------------------------------------------

def find_mpiexec() -> str | None:
    """``mpiexec`` next to this Python (the ``mpi`` extra's MPICH) first, then on PATH."""
    return shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


def check_mpi(required: bool, ranks: int = 2) -> list[Check]:
    """mpi4py and its MPI library; with ``required``, ``mpiexec -n ranks`` must make one world."""
    fix = "install the 'mpi' extra: pip install 'slicewise[mpi]'"
    if getattr(sys, "frozen", False):
        return [Check(_failed(required), "MPI", "not in the desktop bundle; for MPI runs install "
                      f"Slicewise with pip and {fix}")]
    if _version("mpi4py", "mpi4py") is None:
        return [Check(_failed(required), "MPI", f"mpi4py is not installed; {fix}")]
    one, why = _probe(["mpi"])
    if one is None or not one.get("ok"):
        return [Check(_failed(required), "MPI", f"mpi4py cannot initialise MPI "
                      f"({why or one.get('error')}); reinstall mpi4py and its MPI library")]
    checks = [Check(OK, "MPI", f"mpi4py {one['mpi4py']} with {one['library']}")]
    mpiexec = find_mpiexec()
    if mpiexec is None:
        checks.append(Check(_failed(required), "mpiexec", f"not found on PATH; {fix}"))
    elif required:
        checks.append(_check_world(mpiexec, ranks))
    else:
        checks.append(Check(OK, "mpiexec", f"{mpiexec} (doctor --mpi starts {ranks} ranks with it)"))
    return checks


def _check_world(mpiexec: str, ranks: int) -> Check:
    """Start ``ranks`` probes with ``mpiexec``: they must all see one world of that size."""
    cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "slicewise.cli.doctor_probe", "mpi"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Check(PROBLEM, "mpiexec", f"{mpiexec} -n {ranks}: no answer in {PROBE_TIMEOUT_S} s")
    found = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode == 0 and len(found) == 1 and found[0].get("ranks") == list(range(ranks)):
        return Check(OK, "mpiexec", f"{mpiexec}: {ranks} ranks make one world")
    if len(found) > 1 and all(r.get("size") == 1 for r in found):
        return Check(PROBLEM, "mpiexec", f"{mpiexec} started {len(found)} separate processes of one "
                     "rank each: it belongs to another MPI library than mpi4py's; use the mpiexec "
                     "of mpi4py's MPI (the 'mpi' extra puts it next to this Python)")
    tail = (proc.stderr.strip().splitlines() or [""])[-1]
    return Check(PROBLEM, "mpiexec", f"{mpiexec} -n {ranks} failed (exit code {proc.returncode}"
                 + (f": {tail}" if tail else "") + ")")


# ---- memory and disk ---------------------------------------------------------------------------

def available_memory_bytes() -> tuple[int, int] | None:
    """(available, total) RAM in bytes (Linux /proc/meminfo, else sysconf), None if unknown."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        kib = lambda k: int(info[k].split()[0]) * 1024  # noqa: E731
        return kib("MemAvailable"), kib("MemTotal")
    except (OSError, KeyError, ValueError):
        pass
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page
    except (ValueError, OSError, AttributeError):
        return None


def check_memory() -> Check:
    mem = available_memory_bytes()
    if mem is None:
        return Check(NOTE, "memory", "cannot tell how much memory is free on this system")
    avail, total = (x / 2**30 for x in mem)
    detail = f"{avail:.1f} GiB available of {total:.1f} GiB"
    if avail < LOW_MEMORY_GIB:
        return Check(WARNING, "memory", detail + "; large runs will fail: close other programs or "
                     "lower run.batch_spots / run.batch_angles (the run log estimates its peak)")
    return Check(OK, "memory", detail)


def check_disk(folder: Path) -> Check:
    try:
        usage = shutil.disk_usage(folder)
    except OSError as exc:
        return Check(WARNING, "disk", f"cannot read the free space of {folder} ({exc.strerror})")
    free = usage.free / 2**30
    detail = f"{free:.1f} GiB free in {folder} (results go below the current folder by default)"
    if free < LOW_DISK_GIB:
        return Check(WARNING, "disk", detail + "; results and checkpoints may not fit")
    return Check(OK, "disk", detail)


# ---- the command ---------------------------------------------------------------------------------

def iter_checks(gpu: bool = False, gui: bool = False, mpi: bool = False, env=None,
                folder: Path | None = None):
    """Every check, in the order a user reads them, each as soon as it is done;
    ``gpu``/``gui``/``mpi``: required. ``env``: the environment (default ``os.environ``)."""
    env = os.environ if env is None else env
    gpu = gpu or env.get("SLICEWISE_BACKEND", "").strip().lower() == "cupy"
    yield check_python()
    yield check_packages(CORE, "engine packages", True, "reinstall Slicewise: pip install slicewise")
    yield check_hdf5_filters()
    yield check_gpu(gpu)
    gui_packages = check_packages(GUI, "desktop packages", gui,
                                  "install the 'gui' extra: pip install 'slicewise[gui]'")
    yield gui_packages
    if gui_packages.status == OK:
        display = check_display(env, gui)
        yield display
        if display.status == OK:
            opengl = check_opengl(env, gui)
            yield opengl
            if opengl.status == OK:
                yield check_napari(env, gui)
    yield from check_mpi(mpi)
    yield check_memory()
    yield check_disk(folder or Path.cwd())


def add_doctor_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Check this installation: Python and packages, GPU, display and OpenGL for the "
                     "3D view, MPI, memory and disk. Exit code 1 when a required part is broken "
                     "(the engine always; the GPU, GUI and MPI when asked for).")
    p.add_argument("--gpu", action="store_true", help="a working GPU (CuPy) is required")
    p.add_argument("--gui", action="store_true",
                   help="the desktop application is required: packages, display, OpenGL")
    p.add_argument("--mpi", action="store_true",
                   help="MPI is required: mpi4py, and mpiexec starting 2 ranks in one world")
    p.set_defaults(func=run_doctor_cli)


def run_doctor_cli(args: argparse.Namespace) -> int:
    print(f"slicewise {__version__}: {install_kind()}", flush=True)
    checks = []
    for c in iter_checks(gpu=args.gpu, gui=args.gui, mpi=args.mpi):
        print(c.line(), flush=True)
        checks.append(c)
    problems = [c for c in checks if c.status == PROBLEM]
    if problems:
        print(f"{len(problems)} problem(s): {', '.join(c.name for c in problems)}")
        return 1
    notes = sum(c.status in (NOTE, WARNING) for c in checks)
    print("everything asked for works" + (f" ({notes} note(s) above)" if notes else ""))
    return 0
