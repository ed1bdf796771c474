"""Error dialogs, the log panel, the simulation dialog and the ``run_gui`` entry point."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox

from slicewise.engine.errors import DataFileError


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
        # a bad material first: a dialog, and the simulation dialog stays open
        dlg.material.setText("unobtainium")
        dlg.run_btn.click()
        state["error"] = list(dialogs.errors)
        dlg.material.setText("SiO2 glass")
        dlg.phantom.setCurrentIndex(2)          # spheres
        dlg.modality.setCurrentIndex(0)         # holography
        dlg.nz.setValue(16)
        dlg.ny.setValue(16)
        dlg.nx.setValue(16)
        dlg.distances.setText("40, 80")
        dlg.output.setText(str(out))
        dlg.run_btn.click()

    QTimer.singleShot(100, drive)
    w.new_simulation()
    assert state["error"] and "unobtainium" in state["error"][0][1]
    assert out.is_file()
    qtbot.waitUntil(lambda: w.dataset is not None, timeout=10000)
    assert w.dataset.frame_shape == (16, 16)
    assert w.summary.field_text("distances") == "40 \u00b5m, 80 \u00b5m"
    assert "delta" in w.summary.field_text("ground truth")


def test_run_gui_opens_a_file_and_returns_exit_code(qtbot, holo_file, dialogs,
                                                    restore_excepthook, tmp_path):
    from slicewise.app import main
    from slicewise.app.log_panel import LOGGER_NAME
    from slicewise.app.main_window import MainWindow

    seen = {}
    app = QApplication.instance()

    def check():
        wins = [x for x in app.topLevelWidgets() if isinstance(x, MainWindow) and x.isVisible()]
        if wins and wins[0].dataset is not None:
            seen["path"] = wins[0].dataset.source_path
            seen["log"] = wins[0].log_panel.log_file
            wins[0].close()
            app.exit(0)
        else:
            QTimer.singleShot(50, check)

    QTimer.singleShot(50, check)
    QTimer.singleShot(30000, lambda: app.exit(3))  # safety net: never hang the suite
    before = list(logging.getLogger(LOGGER_NAME).handlers)
    try:
        rc = main.run_gui(str(holo_file))
    finally:
        for h in logging.getLogger(LOGGER_NAME).handlers:
            if h not in before:
                logging.getLogger(LOGGER_NAME).removeHandler(h)
                h.close()
    assert rc == 0
    assert seen["path"] == str(holo_file)
    log_file = Path(seen["log"])
    assert log_file.is_relative_to(tmp_path)  # the app-data folder (XDG_DATA_HOME in tests)
    assert "Slicewise started" in log_file.read_text()
