"""File > New simulated data set: a form generated from the engine's ``SimulationConfig``.

The form is the reconstruction's parameter form (:class:`~.params_panel.ParamsPanel`) driven by
the simulation's schema (``engine.simulate.SCHEMA``): the same field metadata (unit, help,
choices, range) and the same validation as ``slicewise simulate``, so an invalid value turns its
row red and names the field before anything runs. Values are SI, as in the TOML file. The
simulation runs off the UI thread; the dialog shows its progress and closes with the written
file's path.
"""

from __future__ import annotations

import os

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout,
                             QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from slicewise.engine.errors import ConfigError
from slicewise.engine.simulate import PRESETS, SCHEMA, SimulationConfig, simulate

from . import dialogs, errors
from .params_panel import ParamsPanel
from .tasks import TaskRunner

GROUP_TITLES = {"experiment": "Experiment", "phantom": "Phantom", "sample": "Sample",
                "ptychography": "Probe and scan (ptychography)",
                "noise and output": "Noise and output"}


class _Progress(QObject):
    step = pyqtSignal(int, int)


class SimulationDialog(QDialog):
    """Edit a simulation, run it, return the data file (``result_path``) on accept."""

    def __init__(self, parent: QWidget | None = None, directory: str | None = None,
                 tasks: TaskRunner | None = None):
        super().__init__(parent)
        self.setWindowTitle("New simulated data set")
        self.resize(560, 760)
        self.result_path: str | None = None
        self._tasks = tasks or TaskRunner(self)
        self._own_tasks = tasks is None
        self._progress = _Progress()

        self.preset = QComboBox()
        self.preset.addItem("(custom)", None)
        for name in sorted(PRESETS):
            self.preset.addItem(name, name)
        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.form = ParamsPanel(SimulationConfig(), self, schema=SCHEMA, titles=GROUP_TITLES)
        self.form.validityChanged.connect(self._validity)
        self.form.configChanged.connect(self._update_enabled)
        directory = directory or os.getcwd()
        self.output = QLineEdit(os.path.join(directory, "simulated.h5"))
        browse = QPushButton("\u2026")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)

        top = QFormLayout()
        top.addRow("preset", self.preset)
        row = QHBoxLayout()
        row.addWidget(self.output, 1)
        row.addWidget(browse)
        top.addRow("data file", row)
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.run_btn = self.buttons.addButton("Simulate", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.form, 1)
        lay.addWidget(self.bar)
        lay.addWidget(self.buttons)
        self._progress.step.connect(self._on_step)
        self._update_enabled()
        self._validity(self.form.is_valid(), self.form.first_error())

    # ---- form <-> config ---------------------------------------------------------------------
    def _update_enabled(self) -> None:
        self.form.set_group_enabled("ptychography", self.form.value("modality") == "ptycho")
        self.form.editor("distances_m").setEnabled(self.form.value("modality") == "holo")

    def _validity(self, ok: bool, reason: str) -> None:
        self.run_btn.setEnabled(ok and not self._tasks.busy())
        self.run_btn.setToolTip("" if ok else reason)

    def set_value(self, path: str, value) -> None:
        """Set one field by dotted path (typed value or text, as typed into its row)."""
        self.form.set_value(path, value)

    def set_config(self, c: SimulationConfig) -> None:
        self.form.set_config(c)

    def _apply_preset(self) -> None:
        name = self.preset.currentData()
        if name:
            self.set_config(SimulationConfig.from_dict(PRESETS[name], f"preset {name}"))

    def config(self) -> SimulationConfig:
        """The simulation as entered, validated (raises ConfigError naming the first bad field;
        a row holding text that was never accepted counts)."""
        if not self.form.is_valid():
            raise ConfigError(self.form.first_error())
        return self.form.config().validate()

    def _browse(self) -> None:
        path = dialogs.save_file(self, "Simulated data file", "HDF5 (*.h5)",
                                 os.path.basename(self.output.text()))
        if path:
            self.output.setText(path if path.endswith((".h5", ".hdf5")) else path + ".h5")

    # ---- running -----------------------------------------------------------------------------
    def start(self) -> None:
        try:
            cfg = self.config()
        except Exception as exc:  # noqa: BLE001 - shown, dialog stays open for a fix
            errors.report_exception(self, exc, "Simulation settings")
            return
        path = self.output.text().strip()
        if not path:
            errors.show_error(self, "Slicewise", "Choose an output data file.")
            return
        self.run_btn.setEnabled(False)
        self.bar.setVisible(True)
        self.bar.setRange(0, 0)
        step = self._progress.step
        self._tasks.submit("simulating", lambda: simulate(cfg, path, "auto",
                                                          progress=lambda i, n: step.emit(i, n)),
                           self._done, self._failed)

    def _on_step(self, i: int, n: int) -> None:
        self.bar.setRange(0, n)
        self.bar.setValue(i)

    def _done(self, path) -> None:
        self.result_path = str(path)
        self.bar.setVisible(False)
        self.accept()

    def _failed(self, exc: BaseException, tb: str) -> None:
        self.run_btn.setEnabled(True)
        self.bar.setVisible(False)
        errors.report_exception(self, exc, "Simulation", details=tb)

    def reject(self) -> None:
        if self._tasks.busy():
            return  # the simulator cannot be interrupted; wait for it
        super().reject()

    def done(self, r: int) -> None:
        if self._own_tasks:
            self._tasks.shutdown()
        super().done(r)
