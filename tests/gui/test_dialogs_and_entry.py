"""Error dialogs, the log panel, the simulation dialog and the ``run_gui`` entry point."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox

from slicewise.engine.errors import DataFileError
from slicewise.engine.io.results import read_result
from slicewise.engine.recon import config as cfgmod


def test_error_dialog_plain_message_and_details(qtbot):
    from slicewise.app import errors

    seen = {}

    def read_and_close():
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.update(title=box.windowTitle(), text=box.text(), details=box.detailedText())
        box.accept()

    QTimer.singleShot(50, read_and_close)
    try:
        raise DataFileError("/geometry attribute energy_ev is missing (Slicewise layout)")
    except DataFileError as exc:
        errors.report_exception(None, exc, "Opening scan.h5", title="Open")
    assert seen["title"] == "Open"
    assert seen["text"].startswith("Opening scan.h5: the data file cannot be used.")
    assert "energy_ev" in seen["text"]
    assert "Traceback" in seen["details"] and "DataFileError" in seen["details"]


@pytest.mark.parametrize("exc, words", [
    (MemoryError(), "out of memory"),
    (FileNotFoundError(2, "No such file", "/x/y.h5"), "not found"),
    (ValueError("boom"), "unexpected error (ValueError: boom)"),
])
def test_friendly_messages(exc, words):
    from slicewise.app.errors import friendly_message

    assert words in friendly_message(exc)


def test_log_panel_shows_records_from_other_threads(qtbot):
    from slicewise.app.log_panel import LogPanel

    panel = LogPanel()
    qtbot.addWidget(panel)
    t = threading.Thread(target=lambda: logging.getLogger("slicewise.engine.test").warning(
        "from the solver thread"))
    t.start()
    t.join()
    qtbot.waitUntil(lambda: any("from the solver thread" in s for s in panel.lines()), timeout=5000)
    logging.getLogger("slicewise.engine.test").debug("hidden at INFO level")
    qtbot.wait(50)
    assert not any("hidden" in s for s in panel.lines())
    panel.detach()


def test_simulation_dialog_from_the_file_menu(qtbot, window, tmp_path, dialogs):
    w = window
    out = tmp_path / "spheres.h5"
    state = {}

    def drive():
        from slicewise.app.sim_dialog import SimulationDialog

        dlg = QApplication.activeModalWidget()
        assert isinstance(dlg, SimulationDialog)
        # the form is generated from the simulation schema: an invalid value is refused
        # with the field named, and Simulate is disabled until it is fixed
        dlg.set_value("energy_ev", "5")
        assert "energy_ev" in dlg.form.errors() and not dlg.run_btn.isEnabled()
        assert dlg.form.first_error().startswith("energy_ev: must be >= 100 eV")
        tip = dlg.form.editor("energy_ev").toolTip()
        assert "photon energy" in tip and "unit: eV" in tip and "during a run" not in tip
        dlg.set_value("energy_ev", "8000")
        dlg.set_value("material", "unobtainium")
        state["error"] = dlg.form.first_error()
        assert not dlg.run_btn.isEnabled()
        dlg.set_value("material", "SiO2 glass")
        # a preset fills the form; then edits on top of it
        dlg.preset.setCurrentIndex(dlg.preset.findData("star-ptycho"))
        state["preset"] = (dlg.form.value("modality"), dlg.form.value("phantom.kind"),
                           dlg.form.editor("probe_size_px").isEnabled())
        dlg.set_value("modality", "holo")
        state["probe_enabled"] = dlg.form.editor("probe_size_px").isEnabled()
        dlg.set_value("phantom.kind", "spheres")
        dlg.set_value("object_shape", "16, 16, 16")
        dlg.set_value("distances_m", "4e-5, 8e-5")
        dlg.set_value("photons", "")
        dlg.output.setText(str(out))
        assert dlg.run_btn.isEnabled(), dlg.form.first_error()
        dlg.run_btn.click()

    QTimer.singleShot(100, drive)
    w.new_simulation()
    assert state["error"].startswith("material:") and "unobtainium" in state["error"]
    assert state["preset"] == ("ptycho", "siemens", True) and not state["probe_enabled"]
    assert out.is_file()
    qtbot.waitUntil(lambda: w.dataset is not None, timeout=10000)
    assert w.dataset.frame_shape == (16, 16)
    assert w.summary.field_text("distances") == "40 \u00b5m, 80 \u00b5m"
    assert "delta" in w.summary.field_text("ground truth")


_RUN_GUI_SCRIPT = r"""
import json, sys
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
from slicewise.app.main import run_gui
from slicewise.app.main_window import MainWindow

app = QApplication(sys.argv[:1])
seen = {}

def check():
    wins = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    if wins and wins[0].dataset is not None:
        w = wins[0]
        seen.update(path=w.dataset.source_path, log=str(w.log_panel.log_file),
                    title=w.windowTitle(), hook=sys.excepthook is not sys.__excepthook__)
        w.close()
    else:
        QTimer.singleShot(50, check)

QTimer.singleShot(50, check)
QTimer.singleShot(30000, lambda: app.exit(3))  # never hang the test suite
rc = run_gui(sys.argv[1])
print("RESULT", json.dumps(dict(seen, rc=rc)))
"""


def test_run_gui_opens_a_file_and_returns_exit_code(holo_file, tmp_path):
    """The ``slicewise gui FILE`` entry point, in its own process (it owns the event loop)."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, "-c", _RUN_GUI_SCRIPT, str(holo_file)], env=env,
                          capture_output=True, text=True, timeout=90)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    res = json.loads(lines[-1][len("RESULT "):])
    assert res["rc"] == 0
    assert res["path"] == str(holo_file)
    assert Path(holo_file).name in res["title"]
    assert res["hook"]  # uncaught exceptions become dialogs
    log_file = Path(res["log"])
    assert log_file.is_relative_to(tmp_path / "data")  # the platform's app-data folder
    assert "Slicewise started" in log_file.read_text()


def _gui_command_line(*args, cwd) -> tuple[list[str], dict]:
    """``slicewise gui ARGS`` and its environment (settings and logs under ``cwd``)."""
    # the console script sits beside the interpreter of the environment it was installed into,
    # which need not be on PATH (CI runs the venv's python without activating it)
    beside = Path(sys.executable).with_name("slicewise")
    exe = str(beside) if beside.exists() else shutil.which("slicewise")
    assert exe, "the slicewise command is installed with the package"
    env = dict(os.environ, XDG_DATA_HOME=str(cwd / "data"), XDG_CONFIG_HOME=str(cwd / "config"))
    return [exe, "gui", *args], env


def _gui_command(*args, cwd, timeout=120):
    cmd, env = _gui_command_line(*args, cwd=cwd)
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_gui_start_and_quit_when_done(holo_file, tmp_path):
    """``slicewise gui CONFIG --start --quit-when-done``: scripts and demos drive the window."""
    cfg = cfgmod.ReconConfig()
    cfg.data.path = str(holo_file)
    cfg.run.epochs, cfg.run.backend, cfg.run.output_dir = 2, "numpy", "out"
    cfg.run.save_tiff, cfg.run.checkpoint_every = False, 0
    cfgmod.to_toml(cfg, tmp_path / "run.toml")
    proc = _gui_command(str(tmp_path / "run.toml"), "--start", "--quit-when-done", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = read_result(tmp_path / "out" / "result.h5")   # relative to the configuration
    assert res["epoch"] == 2

    cfg.data.path = str(tmp_path / "missing.h5")          # cannot start: exit code 2, no hang
    cfgmod.to_toml(cfg, tmp_path / "bad.toml")
    proc = _gui_command(str(tmp_path / "bad.toml"), "--start", "--quit-when-done", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
