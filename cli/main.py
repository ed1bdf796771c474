"""The ``slicewise`` command line.

``slicewise``               opens the desktop application (same as ``slicewise gui``)
``slicewise gui [FILE]``    opens the desktop application, optionally on a data/config/result file
``slicewise demo``          the cone demo: GUI when a display is present, else headless
``slicewise simulate ...``  writes a simulated data set (see ``slicewise simulate --help``)
``slicewise reconstruct``   runs a reconstruction from a TOML configuration
``slicewise info``          backend, versions, and what a data file contains
``slicewise frc A B``       Fourier ring correlation of two results (split-half resolution)
``slicewise doctor``        what works on this machine (packages, GPU, OpenGL, MPI, memory, disk)

This module lives outside the engine (which imports nothing from the GUI): it is the one place
that knows both. Subcommands import their modules lazily so that ``--help`` and ``--version`` are
instant and the headless commands never import Qt -- a compute node can install Slicewise without
the ``gui`` extra and run ``slicewise reconstruct``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import traceback

from slicewise.engine import __version__, interrupts

#: What the ``gui`` extra installs (top-level import names).
GUI_PACKAGES = ("PyQt6", "pyqtgraph", "napari", "vispy", "qtpy")


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _findable(name: str) -> bool:
    import importlib.util  # noqa: PLC0415

    try:
        return importlib.util.find_spec(name) is not None
    except ValueError:  # sys.modules[name] is None: made unimportable on purpose
        return False


def _run_gui():
    """The GUI's entry function, imported only now (Qt, pyqtgraph, napari: the ``gui`` extra)."""
    try:
        import PyQt6  # noqa: F401, PLC0415 - Qt only when asked for

        # found, not imported: run_gui starts the solver process before the heavy imports
        if not _findable("pyqtgraph"):
            raise ModuleNotFoundError("No module named 'pyqtgraph'", name="pyqtgraph")
        from slicewise.app.main import run_gui  # noqa: PLC0415
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in GUI_PACKAGES:
            raise  # a bug, not a missing extra
        from slicewise.engine.errors import SlicewiseError  # noqa: PLC0415

        raise SlicewiseError(f"the desktop application needs the 'gui' extra ({exc}); install it "
                             "with pip install 'slicewise[gui]', or use the headless commands "
                             "(slicewise reconstruct, simulate, demo --headless)") from None
    return run_gui


def _cmd_gui(args: argparse.Namespace) -> int:
    run_gui = _run_gui()

    return run_gui(getattr(args, "file", None), demo=getattr(args, "demo", False),
                   start=getattr(args, "start", False),
                   quit_when_done=getattr(args, "quit_when_done", False))


def _cmd_demo(args: argparse.Namespace) -> int:
    if _has_display() and not args.headless:
        return _run_gui()(None, demo=True)
    from slicewise.cli.demo import run_headless_demo  # noqa: PLC0415 - tqdm and the engine load only now

    return run_headless_demo(out_dir=args.out, epochs=args.epochs, backend=args.backend)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="slicewise",
        description="Multislice X-ray reconstruction by automatic differentiation "
                    "(ptychography, holography, tomography).")
    p.add_argument("--version", action="version", version=f"slicewise {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("gui", help="open the desktop application")
    g.add_argument("file", nargs="?", help="data file (.h5), configuration (.toml) or result file")
    g.add_argument("--demo", action="store_true", help="start on the built-in cone demo")
    g.add_argument("--start", action="store_true",
                   help="start the reconstruction as soon as FILE is open")
    g.add_argument("--quit-when-done", action="store_true",
                   help="close the window when the run ends (exit code 0 when it finished)")
    g.set_defaults(func=_cmd_gui)

    d = sub.add_parser("demo", help="hollow glass cone demo: GUI with a display, else headless")
    d.add_argument("--headless", action="store_true", help="never open a window")
    d.add_argument("--out", default="slicewise-demo", help="output folder (default: %(default)s)")
    d.add_argument("--epochs", type=int, default=None, help="override the demo's epoch count")
    d.add_argument("--backend", default="auto", choices=("auto", "numpy", "cupy"))
    d.set_defaults(func=_cmd_demo)

    from slicewise.cli.doctor import add_doctor_arguments  # noqa: PLC0415
    from slicewise.cli.halves import add_frc_arguments  # noqa: PLC0415
    from slicewise.cli.info import add_info_arguments  # noqa: PLC0415
    from slicewise.cli.reconstruct import add_reconstruct_arguments  # noqa: PLC0415
    from slicewise.engine.simulate import add_simulate_arguments  # noqa: PLC0415

    add_info_arguments(sub.add_parser("info", help="backend and versions; with FILE (data or "
                                                   "configuration), what the data file holds"))
    add_simulate_arguments(sub.add_parser("simulate", help="write a simulated data set"))
    add_frc_arguments(sub.add_parser("frc", help="Fourier ring correlation of two results "
                                                 "(split-half resolution)"))
    add_reconstruct_arguments(sub.add_parser("reconstruct", help="reconstruct from a configuration"))
    add_doctor_arguments(sub.add_parser("doctor", help="check this installation (the first thing "
                                        "to run when something does not work)"))
    return p


def main(argv: list[str] | None = None) -> int:
    old_handlers = interrupts.install()  # first, before anything slow is imported
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:
        if isinstance(exc, interrupts.RunInterrupted):
            return _report(exc.message(_checkpoint_epoch(exc.checkpoint)), 128 + exc.signum)
        if not isinstance(exc, interrupts.Interrupted):
            exc = interrupts.Interrupted(signal.SIGINT)
        return _report(f"interrupted ({exc.describe()}) before a run was under way; no result was "
                       "written", 128 + exc.signum, load_mpi=False)
    except MemoryError:
        return _report("error: out of memory; lower run.batch_spots / run.batch_angles, set "
                       "model.checkpoint_slices or choose a smaller model.object_shape", 2)
    except Exception as exc:  # a clear message, no traceback, for errors we raise on purpose
        from slicewise.engine.errors import SlicewiseError  # noqa: PLC0415

        if isinstance(exc, SlicewiseError):
            return _report(f"error: {' '.join(str(exc).split())}", 2)
        if _mpi_world(load=True) is not None:  # a bug on one rank: the others wait in MPI calls
            traceback.print_exc()
            return _report(f"error: {type(exc).__name__}: {' '.join(str(exc).split())} (a bug; "
                           "the traceback is above, please report it)", 1)
        raise
    finally:
        interrupts.restore(old_handlers)


def _checkpoint_epoch(path) -> int | None:
    """The epoch a checkpoint file holds, None when there is no readable one."""
    from slicewise.engine.io.hdf5 import open_h5  # noqa: PLC0415

    try:
        with open_h5(path) as f:
            return int(f.attrs["epoch"])
    except Exception:  # missing or unreadable: no checkpoint to point to
        return None


def _report(line: str, code: int, load_mpi: bool = True) -> int:
    """Print one line on stderr; under MPI stop every rank, which may wait in a collective call."""
    comm = _mpi_world(load_mpi)
    if comm is not None:
        line = line.replace(":", f" (MPI rank {comm.Get_rank()} of {comm.Get_size()}):", 1)
    print(line, file=sys.stderr, flush=True)
    if comm is not None and code != 0:
        # mpiexec stops forwarding output once Abort kills the job: give it the line first
        time.sleep(ABORT_GRACE_S)
        comm.Abort(code)
    return code


#: Seconds between a rank's last message and its MPI Abort (seen lost without it, under load).
ABORT_GRACE_S = 0.5


def _mpi_world(load: bool = False):
    """COMM_WORLD when this process is one of several MPI ranks, else None. With ``load``, loads
    mpi4py when ``mpiexec`` launched this process and the failure came before the run loaded it:
    a rank that ends without a word to the others leaves them waiting. (Not after a stop signal
    during start-up: that may have interrupted an import, and every rank got the signal.)"""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None:
        if not load:
            return None
        from slicewise.engine.runtime import launched_by_mpi  # noqa: PLC0415

        if not launched_by_mpi():
            return None
        try:
            from mpi4py import MPI as mpi  # noqa: PLC0415, N812 - optional dependency
        except Exception:  # not installed, or MPI cannot start: nobody to tell
            return None
    if mpi.COMM_WORLD.Get_size() < 2:
        return None
    return mpi.COMM_WORLD


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from slicewise.engine.runtime import mpi_rank_from_environment  # noqa: PLC0415

    level = logging.DEBUG if args.verbose else logging.INFO
    if mpi_rank_from_environment() > 0:  # rank 0 speaks for all; the others only warn
        level = max(level, logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:  # bare `slicewise` opens the application
        args.file, args.demo = None, False
        func = _cmd_gui
    if args.command in (None, "gui", "demo", "reconstruct"):
        from slicewise.engine.runtime import keep_freed_memory  # noqa: PLC0415

        keep_freed_memory()
    return int(func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
