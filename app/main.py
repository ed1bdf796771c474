"""Entry point of the desktop application (``slicewise``, ``slicewise gui [FILE]``, ``slicewise demo``)."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("slicewise.app")


def run_gui(path: str | None = None, demo: bool = False, start: bool = False,
            quit_when_done: bool = False) -> int:
    """Show the main window, optionally opening ``path`` (data, configuration or result file) or
    the built-in cone demo; returns the application's exit code.

    ``start``: start the reconstruction as soon as the file is open and the form is valid.
    ``quit_when_done``: close the window when the run ends; exit code 0 when it finished, 1 when
    it failed or was stopped, 2 when it could not start (errors are logged, not shown).
    """
    from PyQt6.QtCore import QTimer  # noqa: PLC0415 - Qt only when the GUI is asked for
    from PyQt6.QtWidgets import QApplication  # noqa: PLC0415

    from . import settings  # noqa: PLC0415
    from .errors import install_excepthook  # noqa: PLC0415
    from .log_panel import setup_logging  # noqa: PLC0415

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(settings.ORGANISATION)
    app.setApplicationName(settings.APPLICATION)
    app.setApplicationDisplayName("Slicewise")
    app.setStyle("Fusion")  # the same look on every platform, crisp at any DPI
    log_file = setup_logging()
    install_excepthook()

    from .main_window import MainWindow  # noqa: PLC0415 - after the QApplication exists

    win = MainWindow(log_file=log_file)
    win.quit_when_done = quit_when_done
    win.show()
    log.info("Slicewise started; log file %s", log_file)
    if demo:
        QTimer.singleShot(0, lambda: win.load_demo(autostart=True))
    elif path:
        if start:
            win.request_autostart()
        QTimer.singleShot(0, lambda: win.open_path(path))
    else:
        QTimer.singleShot(0, win.restore_last_session)
    code = int(app.exec())
    return win.exit_code if win.exit_code is not None else code
