"""Entry point of the desktop application (``slicewise``, ``slicewise gui [FILE]``, ``slicewise demo``)."""

from __future__ import annotations

import logging
import os
import sys

from slicewise.engine import interrupts

log = logging.getLogger("slicewise.app")


def run_gui(path: str | None = None, demo: bool = False, start: bool = False,
            quit_when_done: bool = False) -> int:
    """Show the main window, optionally opening ``path`` (data, configuration or result file) or
    the built-in cone demo; returns the application's exit code.

    ``start``: start the reconstruction as soon as the file is open and the form is valid.
    ``quit_when_done``: close the window when the run ends; exit code 0 when it finished, 1 when
    it failed or was stopped, 2 when it could not start (errors are logged, not shown); the
    process then ends here with that code. With ``start`` and a configuration file, the solver
    process is started first and builds the run while Qt and the window start.
    """
    solver = None
    if start and path and not demo:
        from .worker import early_solver  # noqa: PLC0415

        solver = early_solver(path)  # builds the run while Qt and the window start
    from PyQt6.QtCore import QTimer  # noqa: PLC0415 - Qt only when the GUI is asked for
    from PyQt6.QtWidgets import QApplication  # noqa: PLC0415

    from . import settings  # noqa: PLC0415
    from .errors import install_excepthook  # noqa: PLC0415
    from .log_panel import setup_logging  # noqa: PLC0415
    from slicewise.resources import APP_ID, window_icon  # noqa: PLC0415

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(settings.ORGANISATION)
    app.setApplicationName(settings.APPLICATION)
    app.setApplicationDisplayName("Slicewise")
    app.setWindowIcon(window_icon())
    app.setDesktopFileName(APP_ID)  # Wayland shells match the window to the installed entry
    app.setStyle("Fusion")  # the same look on every platform, crisp at any DPI
    log_file = setup_logging()
    install_excepthook()

    from .main_window import MainWindow  # noqa: PLC0415 - after the QApplication exists
    from .stop_signals import StopSignals  # noqa: PLC0415

    win = MainWindow(log_file=log_file, solver=solver)
    win.quit_when_done = quit_when_done
    stops = StopSignals(win.stop_and_quit)
    try:
        interrupts.raise_if_received()  # one that came while Qt and the window started
    except interrupts.Interrupted as exc:
        signum = exc.signum
        QTimer.singleShot(0, lambda: win.stop_and_quit(signum))
    win.show()
    log.info("Slicewise started; log file %s", log_file)
    if demo:
        win.show_workspace()
        QTimer.singleShot(0, lambda: win.load_demo(autostart=True))
    elif path:
        win.show_workspace()
        if start:
            win.request_autostart()
        QTimer.singleShot(0, lambda: win.open_path(path))
    # else the start page (open, demo, recent files, examples, the last session)
    code = int(app.exec())
    stops.restore()
    code = win.exit_code if win.exit_code is not None else code
    if quit_when_done:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the process without tearing down Qt and the interpreter object by object (a tenth
    of a second or more, in a scripted run that waits for the exit): the window has saved its
    settings, the solver process has ended, the log is flushed here."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
