"""File > New simulated data set: a form over the engine's ``SimulationConfig``.

Quantities are entered in the units people use at the beamline (keV, nm, um) and converted to the
SI values the simulator takes. The simulation runs off the UI thread; the dialog shows its
progress and closes with the written file's path.
"""

from __future__ import annotations

import dataclasses
import os

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                             QGroupBox, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                             QSpinBox, QVBoxLayout, QWidget)

from slicewise.engine.errors import ConfigError
from slicewise.engine.materials import NAMED_MATERIALS, material_optics, named_material
from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.simulate import PRESETS, SimulationConfig, simulate

from . import dialogs, errors
from .tasks import TaskRunner

PHANTOMS = {"cone": "hollow glass cone", "siemens": "Siemens star", "spheres": "random spheres"}
MODALITIES = {"holo": "near-field holography", "ptycho": "far-field ptychography"}


def _dspin(lo, hi, value, decimals=3, suffix="", step=1.0) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    w.setValue(value)
    if suffix:
        w.setSuffix(" " + suffix)
    return w


def _ispin(lo, hi, value) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setValue(value)
    return w


class _Progress(QObject):
    step = pyqtSignal(int, int)


class SimulationDialog(QDialog):
    """Edit a simulation, run it, return the data file (``result_path``) on accept."""

    def __init__(self, parent: QWidget | None = None, directory: str | None = None,
                 tasks: TaskRunner | None = None):
        super().__init__(parent)
        self.setWindowTitle("New simulated data set")
        self.result_path: str | None = None
        self._tasks = tasks or TaskRunner(self)
        self._own_tasks = tasks is None
        self._progress = _Progress()
        d = SimulationConfig()

        self.preset = QComboBox()
        self.preset.addItem("(custom)", None)
        for name in sorted(PRESETS):
            self.preset.addItem(name, name)
        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.phantom = QComboBox()
        for k, v in PHANTOMS.items():
            self.phantom.addItem(v, k)
        self.modality = QComboBox()
        for k, v in MODALITIES.items():
            self.modality.addItem(v, k)
        self.modality.currentIndexChanged.connect(self._update_enabled)
        self.material = QComboBox()
        self.material.setEditable(True)
        self.material.addItems(list(NAMED_MATERIALS))
        self.material.setCurrentText(d.material)
        self.material.setToolTip("a named material or FORMULA:DENSITY with the density in "
                                 "g/cm\u00b3, e.g. 'SiO2:2.2'")
        self.nz, self.ny, self.nx = (_ispin(1, 1024, n) for n in d.object_shape)
        self.energy = _dspin(0.1, 200.0, d.energy_ev / 1e3, 3, "keV")
        self.pixel = _dspin(0.001, 1e6, d.pixel_size_m * 1e9, 3, "nm")
        self.slice = _dspin(0.0, 1e6, 0.0, 3, "nm")
        self.slice.setSpecialValueText("= pixel size")
        self.n_angles = _ispin(1, 3600, d.n_angles)
        self.angle_range = _dspin(0.0, 360.0, d.angle_range_deg, 1, "\u00b0")
        self.distances = QLineEdit(", ".join(f"{x * 1e6:g}" for x in d.distances_m))
        self.distances.setToolTip("sample-detector distances in micrometres, comma separated")
        self.probe_kind = QComboBox()
        self.probe_kind.addItems(["airy", "gaussian"])
        self.probe_py, self.probe_px = (_ispin(2, 2048, n) for n in d.probe_shape)
        self.probe_size = _dspin(0.1, 1e4, d.probe_size_px, 2, "px")
        self.scan = QComboBox()
        self.scan.addItems(["raster", "fermat"])
        self.step = _dspin(0.1, 1e4, d.scan_step_px, 2, "px")
        self.pos_error = _dspin(0.0, 100.0, d.position_error_px, 2, "px")
        self.photons = _dspin(0.0, 1e15, 0.0, 0, "")
        self.photons.setSpecialValueText("no noise")
        self.photons.setToolTip("Poisson noise: photons per frame (ptychography) or per pixel "
                                "(holography); 0 = noise-free")
        self.seed = _ispin(0, 2**31 - 1, d.seed)
        self.layout_box = QComboBox()
        self.layout_box.addItems(["slicewise", "adorym"])
        directory = directory or os.getcwd()
        self.output = QLineEdit(os.path.join(directory, "simulated.h5"))
        browse = QPushButton("\u2026")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self._browse)

        sample = QGroupBox("Sample")
        f = QFormLayout(sample)
        f.addRow("preset", self.preset)
        f.addRow("phantom", self.phantom)
        f.addRow("material", self.material)
        shape = QHBoxLayout()
        for lab, w in (("z", self.nz), ("y", self.ny), ("x", self.nx)):
            shape.addWidget(QLabel(lab))
            shape.addWidget(w)
        f.addRow("object grid [voxels]", shape)
        f.addRow("pixel size", self.pixel)
        f.addRow("slice thickness", self.slice)
        exp = QGroupBox("Experiment")
        g = QFormLayout(exp)
        g.addRow("modality", self.modality)
        g.addRow("photon energy", self.energy)
        g.addRow("rotation angles", self.n_angles)
        g.addRow("angle range", self.angle_range)
        g.addRow("distances [\u00b5m]", self.distances)
        probe_shape = QHBoxLayout()
        probe_shape.addWidget(self.probe_py)
        probe_shape.addWidget(QLabel("\u00d7"))
        probe_shape.addWidget(self.probe_px)
        g.addRow("probe", self.probe_kind)
        g.addRow("probe window [px]", probe_shape)
        g.addRow("probe size", self.probe_size)
        g.addRow("scan", self.scan)
        g.addRow("scan step", self.step)
        g.addRow("position error", self.pos_error)
        g.addRow("photons", self.photons)
        g.addRow("seed", self.seed)
        out = QGroupBox("Output")
        o = QFormLayout(out)
        row = QHBoxLayout()
        row.addWidget(self.output, 1)
        row.addWidget(browse)
        o.addRow("data file", row)
        o.addRow("layout", self.layout_box)

        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.run_btn = self.buttons.addButton("Simulate", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        cols = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(sample)
        left.addWidget(out)
        left.addStretch(1)
        cols.addLayout(left)
        cols.addWidget(exp)
        lay = QVBoxLayout(self)
        lay.addLayout(cols)
        lay.addWidget(self.bar)
        lay.addWidget(self.buttons)
        self._progress.step.connect(self._on_step)
        self._update_enabled()

    # ---- form <-> config ---------------------------------------------------------------------
    def _update_enabled(self) -> None:
        ptycho = self.modality.currentData() == "ptycho"
        for w in (self.probe_kind, self.probe_py, self.probe_px, self.probe_size, self.scan,
                  self.step, self.pos_error):
            w.setEnabled(ptycho)
        self.distances.setEnabled(not ptycho)

    def set_config(self, c: SimulationConfig) -> None:
        self.phantom.setCurrentIndex(list(PHANTOMS).index(c.phantom.kind))
        self.modality.setCurrentIndex(list(MODALITIES).index(c.modality))
        self.material.setCurrentText(c.material)
        for w, n in zip((self.nz, self.ny, self.nx), c.object_shape):
            w.setValue(int(n))
        self.energy.setValue(c.energy_ev / 1e3)
        self.pixel.setValue(c.pixel_size_m * 1e9)
        self.slice.setValue((c.slice_thickness_m or 0.0) * 1e9)
        self.n_angles.setValue(c.n_angles)
        self.angle_range.setValue(c.angle_range_deg)
        self.distances.setText(", ".join(f"{x * 1e6:g}" for x in c.distances_m))
        self.probe_kind.setCurrentText(c.probe_kind)
        self.probe_py.setValue(c.probe_shape[0])
        self.probe_px.setValue(c.probe_shape[1])
        self.probe_size.setValue(c.probe_size_px)
        self.scan.setCurrentText(c.scan)
        self.step.setValue(c.scan_step_px)
        self.pos_error.setValue(c.position_error_px)
        self.photons.setValue(c.photons or 0.0)
        self.seed.setValue(c.seed)
        self.layout_box.setCurrentText(c.layout)

    def _apply_preset(self) -> None:
        name = self.preset.currentData()
        if name:
            self.set_config(SimulationConfig.from_dict(
                {k: (dataclasses.asdict(v) if isinstance(v, PhantomSpec) else v)
                 for k, v in PRESETS[name].items()}))

    def config(self) -> SimulationConfig:
        """The simulation as entered (validated by the engine; raises ConfigError)."""
        try:
            dist = tuple(float(t) * 1e-6 for t in self.distances.text().replace(";", ",").split(",")
                         if t.strip())
        except ValueError:
            raise ConfigError(f"distances: expected numbers in \u00b5m separated by commas, got "
                              f"{self.distances.text()!r}") from None
        c = SimulationConfig(
            modality=self.modality.currentData(),
            phantom=PhantomSpec(kind=self.phantom.currentData(), seed=self.seed.value()),
            material=self.material.currentText().strip(),
            object_shape=(self.nz.value(), self.ny.value(), self.nx.value()),
            energy_ev=self.energy.value() * 1e3, pixel_size_m=self.pixel.value() * 1e-9,
            slice_thickness_m=self.slice.value() * 1e-9 or None, n_angles=self.n_angles.value(),
            angle_range_deg=self.angle_range.value(), distances_m=dist or SimulationConfig().distances_m,
            probe_kind=self.probe_kind.currentText(),
            probe_shape=(self.probe_py.value(), self.probe_px.value()),
            probe_size_px=self.probe_size.value(), scan=self.scan.currentText(),
            scan_step_px=self.step.value(), position_error_px=self.pos_error.value(),
            photons=self.photons.value() or None, seed=self.seed.value(),
            layout=self.layout_box.currentText())
        c.validate()
        self._check_material(c.material, c.energy_ev)
        return c

    @staticmethod
    def _check_material(spec: str, energy_ev: float) -> None:
        """Fail now, with the engine's message, rather than in the middle of the simulation."""
        if ":" in spec:
            formula, density = spec.split(":", 1)
            try:
                rho = float(density)
            except ValueError:
                raise ConfigError(f"material {spec!r}: expected FORMULA:DENSITY in g/cm\u00b3, "
                                  "e.g. 'SiO2:2.2'") from None
            material_optics(formula.strip(), rho, energy_ev)
        else:
            named_material(spec).optics(energy_ev)

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
