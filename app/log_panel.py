"""Log panel (a read-only view of the ``slicewise`` logger) and the log files.

Engine and GUI log through ``logging`` under the ``slicewise`` name. :func:`setup_logging` adds a
rotating file in the platform's application-data folder; the run controller adds one more file in
each run's output folder. The panel receives records through a Qt signal, so records logged on the
solver thread are queued to the UI thread instead of touching widgets from the wrong thread.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from PyQt6.QtCore import QObject, QStandardPaths, Qt, QUrl, pyqtSignal
from PyQt6.QtGui import QColor, QDesktopServices, QFont, QTextCharFormat
from PyQt6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                             QVBoxLayout, QWidget)

LOGGER_NAME = "slicewise"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_LEVEL_COLOURS = {logging.WARNING: QColor("#b36b00"), logging.ERROR: QColor("#c0392b"),
                  logging.CRITICAL: QColor("#c0392b"), logging.DEBUG: QColor("#777777")}


def log_dir() -> Path:
    """Platform application-data folder for logs (e.g. ~/.local/share/Slicewise/Slicewise/logs)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(base or Path.home() / ".slicewise") / "logs"


def setup_logging(directory: str | os.PathLike | None = None) -> Path | None:
    """Attach a rotating log file to the ``slicewise`` logger; returns its path (None if the
    folder is not writable: logging to the panel still works)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG)
    d = Path(directory) if directory else log_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        path = d / "slicewise.log"
        for h in logger.handlers:
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path:
                return path
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=5 * 2**20, backupCount=3,
                                                  encoding="utf-8")
    except OSError:
        return None
    fh.setFormatter(logging.Formatter(FORMAT))
    fh.setLevel(logging.DEBUG)
    logger.addHandler(fh)
    return path


class _Bridge(QObject):
    record = pyqtSignal(int, str)


class QtLogHandler(logging.Handler):
    """Formats records and emits them through a Qt signal (thread-safe: queued to the UI)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.bridge = _Bridge()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bridge.record.emit(record.levelno, self.format(record))
        except RuntimeError:  # the bridge was deleted while a thread still logs
            pass


class LogPanel(QWidget):
    """Shows log records (INFO and above by default) with warnings and errors coloured."""

    MAX_LINES = 5000

    def __init__(self, log_file: Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setMaximumBlockCount(self.MAX_LINES)
        self.text.setFont(QFont("monospace", 9))
        self.level = QComboBox()
        self.level.addItems(["DEBUG", "INFO", "WARNING", "ERROR"])
        self.level.setCurrentText("INFO")
        self.level.currentTextChanged.connect(self._set_level)
        self.file_label = QLabel()
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        open_btn = QPushButton("Open log folder")
        open_btn.clicked.connect(self._open_folder)
        clear_btn = QPushButton("Clear")
        clear_btn.clicked.connect(self.text.clear)
        top = QHBoxLayout()
        top.addWidget(QLabel("Level"))
        top.addWidget(self.level)
        top.addWidget(self.file_label, 1)
        top.addWidget(open_btn)
        top.addWidget(clear_btn)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.text)

        self.handler = QtLogHandler()
        self.handler.bridge.record.connect(self._append)
        self._set_level("INFO")
        logger = logging.getLogger(LOGGER_NAME)
        if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)  # handlers filter; the logger passes everything
        logger.addHandler(self.handler)
        self.set_log_file(log_file)

    def set_log_file(self, path: Path | None) -> None:
        self.log_file = path
        self.file_label.setText(f"log file: {path}" if path else "log file: none")

    def _set_level(self, name: str) -> None:
        self.handler.setLevel(getattr(logging, name))

    def _append(self, level: int, line: str) -> None:
        fmt = QTextCharFormat()
        fmt.setForeground(_LEVEL_COLOURS.get(level, self.palette().text().color()))
        cursor = self.text.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        if not self.text.document().isEmpty():
            cursor.insertBlock()
        cursor.insertText(line, fmt)
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())

    def lines(self) -> list[str]:
        return self.text.toPlainText().splitlines()

    def _open_folder(self) -> None:
        folder = self.log_file.parent if self.log_file else log_dir()
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def detach(self) -> None:
        """Remove the handler from the logger (the window is closing)."""
        logging.getLogger(LOGGER_NAME).removeHandler(self.handler)
