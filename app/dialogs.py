"""Small modal questions and file choosers, in one place so that tests can replace them."""

from __future__ import annotations

from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from . import settings

DATA_FILTER = "Slicewise files (*.h5 *.hdf5 *.hdf *.nxs *.cxi *.toml);;HDF5 data or results (*.h5 *.hdf5 *.hdf *.nxs *.cxi);;Configuration (*.toml);;All files (*)"
CONFIG_FILTER = "Configuration (*.toml);;All files (*)"
RESULT_FILTER = "Results and checkpoints (*.h5 *.hdf5);;All files (*)"


def confirm(parent: QWidget | None, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def open_file(parent: QWidget | None, title: str, file_filter: str) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, title, settings.last_dir(), file_filter)
    return path or None


def save_file(parent: QWidget | None, title: str, file_filter: str, name: str = "") -> str | None:
    start = settings.last_dir() + ("/" + name if name else "")
    path, _ = QFileDialog.getSaveFileName(parent, title, start, file_filter)
    return path or None



def ask_more_epochs(parent: QWidget | None, done: int, asked: int) -> int | None:
    """A checkpoint at epoch ``done`` is already past the ``asked`` epochs: how many more to
    run (None: none)."""
    n, ok = QInputDialog.getInt(
        parent, "Resume", f"The checkpoint is at epoch {done}, already past the {asked} epochs "
        "asked for (run.epochs).\n\nContinue for how many more epochs?",
        max(1, asked), 1, 1_000_000)
    return int(n) if ok else None
