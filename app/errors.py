"""Every failure reaches the user as a dialog: a plain message plus expandable details.

Callers use :func:`report_exception` (an exception caught around an action) or :func:`show_error`
(a message of our own). Both log the problem as well, so it also lands in the log panel and the
log file. Tests replace ``show_error`` (``monkeypatch.setattr(errors, "show_error", ...)``); every
caller therefore goes through this module attribute, never a ``from ... import show_error`` copy.
"""

from __future__ import annotations

import logging
import sys
import traceback

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication, QMessageBox, QWidget

from slicewise.engine.errors import ConfigError, DataFileError, DivergenceError, SlicewiseError

log = logging.getLogger("slicewise.app")


def friendly_message(exc: BaseException, context: str = "") -> str:
    """One or two plain sentences for ``exc``: what went wrong and what to try."""
    pre = f"{context}: " if context else ""
    if isinstance(exc, DivergenceError):
        return (f"{pre}{exc}\n\nThe reconstruction diverged. The last checkpoint was kept. "
                "Try smaller learning rates (Parameters > optimizer) and start again.")
    if isinstance(exc, ConfigError):
        return f"{pre}the configuration is not valid.\n\n{exc}"
    if isinstance(exc, DataFileError):
        return f"{pre}the data file cannot be used.\n\n{exc}"
    if isinstance(exc, SlicewiseError):
        return f"{pre}{exc}"
    if isinstance(exc, MemoryError):
        return (f"{pre}out of memory.\n\nReduce run.batch_spots / run.batch_angles, set "
                "model.checkpoint_slices, or use single precision. Earlier results are intact.")
    if type(exc).__name__ == "OutOfMemoryError":  # cupy.cuda.memory.OutOfMemoryError
        return (f"{pre}the GPU ran out of memory.\n\nReduce the batch size, set "
                "model.checkpoint_slices, or run on the CPU (run.backend = numpy).")
    if isinstance(exc, FileNotFoundError):
        return f"{pre}file not found: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"{pre}permission denied: {exc.filename or exc}"
    if isinstance(exc, OSError):
        return f"{pre}{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return f"{pre}unexpected error ({type(exc).__name__}: {exc})"


def details_of(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    """Modal error dialog; ``details`` (a traceback, a file listing) sit behind "Show Details"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(message)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.exec()


def report_exception(parent: QWidget | None, exc: BaseException, context: str = "",
                     title: str = "Slicewise", details: str | None = None) -> None:
    """Log ``exc`` (with traceback) and show it as a dialog."""
    msg = friendly_message(exc, context)
    det = details if details is not None else details_of(exc)
    # Errors we raise on purpose are expected: a warning line, the traceback only in the file
    level = logging.WARNING if isinstance(exc, SlicewiseError) else logging.ERROR
    log.log(level, "%s", msg.replace("\n\n", " "))
    log.debug("details:\n%s", det)
    # module attribute lookup on purpose: tests replace show_error
    sys.modules[__name__].show_error(parent, title, msg, det)


def install_excepthook() -> None:
    """Uncaught exceptions in Qt slots become dialogs instead of aborting the application (PyQt6
    calls ``qFatal`` on an unhandled exception when the default hook is in place)."""

    def hook(etype, value, tb):
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        exc = value if value is not None else etype()
        exc.__traceback__ = tb
        from .view3d.view import gl_error_seen, is_gl_error  # noqa: PLC0415

        if is_gl_error(exc, "".join(traceback.format_tb(tb))):
            # the 3D canvas failed to draw: never a modal dialog (one per frame); log it once
            # and let the view rebuild its canvas
            log.warning("3D view: drawing failed (%s: %s); rebuilding the canvas",
                        type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
            gl_error_seen()
            return
        parent = QApplication.activeWindow()
        try:
            report_exception(parent, exc, "")
        except Exception:  # noqa: BLE001 - last resort; never raise from the hook
            sys.__excepthook__(etype, value, tb)

    sys.excepthook = hook
