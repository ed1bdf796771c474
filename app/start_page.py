"""The start page: what ``slicewise`` shows before any file is open.

Open your data (with the formats Slicewise reads, from the readers' registry), the cone demo in one
click, a simulated data set, recent files and results (each named by what it is), the example
configurations, and the walkthrough for one's own data (``docs/real-data.md``, shown in the
window). The page only says what was chosen (signals); the main window acts.
"""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                             QPushButton, QVBoxLayout, QWidget)

from slicewise.engine.io.readers import READERS

from . import settings

FORMAT_NAMES = {"slicewise": "Slicewise", "cxi": "CXI 1.x (.cxi)", "dxchange": "DXchange",
                "adorym": "Adorym-style"}
EXAMPLES = {  # kind (engine.recon.config.preset) -> (name, what it is)
    "ptycho": ("Far-field ptychography", "2D or multislice; the probe is refined"),
    "holo": ("Near-field holography", "one or several detector distances"),
    "tomo": ("Tomography", "of either; the model chosen from the data, a support constraint"),
    "nearfield-ptycho": ("Near-field ptychography", "a measured scan (CXI), cone beam"),
}
PATH_ROLE = Qt.ItemDataRole.UserRole


def formats_text() -> str:
    """The data formats the readers' registry reads, in words."""
    names = [FORMAT_NAMES.get(r.name, r.name) for r in READERS]
    return (f"HDF5 in the {', '.join(names[:-1])} or {names[-1]} layout (.h5, .hdf5, .nxs, "
            ".cxi); a configuration (.toml) or a result (result.h5)")


def file_kind(path: str) -> str:
    """What a recent file is, from its name or its HDF5 attributes (no frames are read)."""
    if path.lower().endswith(".toml"):
        return "configuration"
    try:
        import h5py  # noqa: PLC0415 - only for the few recent files

        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format", b"")
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
            if fmt == "slicewise-result":
                return str(f.attrs.get("kind", "result"))
            if fmt == "slicewise-frc":
                return "FRC curve"
    except (OSError, ValueError):
        return "file"
    return "data"


class StartPage(QWidget):
    openRequested = pyqtSignal()
    demoRequested = pyqtSignal()
    simulateRequested = pyqtSignal()
    walkthroughRequested = pyqtSignal()
    restoreRequested = pyqtSignal()
    recentChosen = pyqtSignal(str)
    exampleChosen = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        title = QLabel("Slicewise")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 2.2)
        font.setBold(True)
        title.setFont(font)
        sub = QLabel("Reconstruction of thick samples from X-ray data: multislice ptychography, "
                     "near-field holography and tomography of both.")
        sub.setWordWrap(True)
        columns = QHBoxLayout()
        columns.addWidget(self._start_box(), 3)
        columns.addWidget(self._recent_box(), 4)
        columns.addWidget(self._examples_box(), 4)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(36, 28, 36, 28)
        lay.addWidget(title)
        lay.addWidget(sub)
        lay.addSpacing(16)
        lay.addLayout(columns, 3)
        lay.addStretch(1)
        self.refresh()

    # ---- the three columns ---------------------------------------------------------------------
    def _start_box(self) -> QGroupBox:
        box = QGroupBox("Start")
        v = QVBoxLayout(box)
        self.open_button = self._button("Open your data\u2026", self.openRequested)
        v.addWidget(self.open_button)
        formats = QLabel(formats_text())
        formats.setWordWrap(True)
        formats.setStyleSheet("color: #555;")
        v.addWidget(formats)
        v.addSpacing(10)
        self.demo_button = self._button("Try the cone demo", self.demoRequested)
        self.demo_button.setToolTip("simulate a hollow glass cone (holotomography, 10 keV) and "
                                    "reconstruct it, in one click")
        v.addWidget(self.demo_button)
        note = QLabel("a hollow glass cone, simulated and reconstructed while you watch")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        v.addWidget(note)
        v.addSpacing(10)
        v.addWidget(self._button("New simulated data set\u2026", self.simulateRequested))
        v.addSpacing(10)
        self.walkthrough_link = QLabel('<a href="walkthrough">Your own data, step by step</a> '
                                       '(CXI and DXchange files, masks, cone beam)')
        self.walkthrough_link.setWordWrap(True)
        self.walkthrough_link.linkActivated.connect(lambda _: self.walkthroughRequested.emit())
        v.addWidget(self.walkthrough_link)
        v.addStretch(1)
        return box

    def _recent_box(self) -> QGroupBox:
        box = QGroupBox("Recent files and results")
        v = QVBoxLayout(box)
        self.restore_button = self._button("", self.restoreRequested)
        v.addWidget(self.restore_button)
        self.recent = QListWidget()
        self.recent.setSpacing(2)
        self.recent.itemClicked.connect(lambda it: self.recentChosen.emit(it.data(PATH_ROLE)))
        v.addWidget(self.recent, 1)
        return box

    def _examples_box(self) -> QGroupBox:
        box = QGroupBox("Example configurations")
        v = QVBoxLayout(box)
        hint = QLabel("A starting configuration for a kind of measurement; open your data "
                      "next, then Start.")
        hint.setWordWrap(True)
        v.addWidget(hint)
        self.examples = QListWidget()
        self.examples.setWordWrap(True)
        self.examples.setSpacing(4)
        for kind, (name, text) in EXAMPLES.items():
            item = QListWidgetItem(f"{name}\n{text}")
            item.setData(PATH_ROLE, kind)
            item.setToolTip(f"'slicewise reconstruct --example {kind}' writes the same, "
                            "commented")
            self.examples.addItem(item)
        self.examples.itemClicked.connect(lambda it: self.exampleChosen.emit(it.data(PATH_ROLE)))
        v.addWidget(self.examples, 1)
        return box

    @staticmethod
    def _button(text: str, signal) -> QPushButton:
        b = QPushButton(text)
        b.setMinimumHeight(34)
        b.clicked.connect(lambda _=False: signal.emit())
        return b

    # ---- contents ------------------------------------------------------------------------------
    def refresh(self, last_session: str | None = None) -> None:
        """Recent files (most recent first, each with what it is) and the last session's entry
        (``last_session``: its data file's name; None: no last session)."""
        self.recent.clear()
        for path in settings.recent_files():
            item = QListWidgetItem(f"{Path(path).name}   ({file_kind(path)})")
            item.setData(PATH_ROLE, path)
            item.setToolTip(path)
            self.recent.addItem(item)
        if not self.recent.count():
            item = QListWidgetItem("(nothing opened yet)")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)
        self.restore_button.setVisible(bool(last_session))
        if last_session:
            self.restore_button.setText(f"Continue the last session ({os.path.basename(last_session)})")

    def recent_paths(self) -> list[str]:
        return [self.recent.item(i).data(PATH_ROLE) for i in range(self.recent.count())
                if self.recent.item(i).data(PATH_ROLE)]
