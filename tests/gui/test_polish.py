"""The smaller defects of issue 23 (defect 6), each driven through the real window: near-field
ptychography's labels, the toolbar after a failure, the loss axis in the first epoch, the title
after another file, docks after a shrink and an enlargement, the napari pop-out's close."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QApplication, QDialog

from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.slicewise_format import write_dataset
from slicewise.engine.recon.run import ProgressEvent

from .conftest import fast_run, open_data, run_until_divergence, wait_idle
from .x11 import close_like_the_window_manager


def _settle(qtbot, ms: int = 300) -> None:
    qtbot.wait(ms)
    QApplication.processEvents()


def test_near_field_ptychography_is_named_so(qtbot, window, tmp_path, holo_file):
    rng = np.random.default_rng(0)
    frames = (1 + 0.05 * rng.random((1, 9, 16, 16))).astype(np.float32)
    pos = np.array([(y, x) for y in (0, 4, 8) for x in (0, 4, 8)], float)
    ds = Dataset.from_arrays(frames, Geometry(modality="nearfield", energy_ev=10000.0,
                                              pixel_size_m=50e-9, distances_m=[1e-4],
                                              positions_px=pos))
    path = tmp_path / "nfptycho.h5"
    write_dataset(path, ds)
    w = window
    open_data(qtbot, w, path)
    assert w.summary.field_text("modality") == "near field (ptychography)"
    assert w.frames_view.spot_label.text() == "position"
    assert w.frames_browser.spot_label.text() == "position"
    assert "scan position" in w.frames_view.spot.toolTip()
    open_data(qtbot, w, holo_file)                  # holography: the index is the distance
    assert w.summary.field_text("modality") == "near field (holography), tomography"
    assert w.frames_view.spot_label.text() == "distance"
    assert w.frames_browser.spot_label.text() == "distance"


def test_toolbar_forgets_epoch_and_eta_after_a_failure(qtbot, window, holo_file, tmp_path,
                                                       dialogs):
    w = window
    run_until_divergence(qtbot, w, holo_file, tmp_path / "out")
    assert len(dialogs.errors) == 1 and "diverged" in dialogs.errors[0][1]
    assert w.epoch_label.text() == "failed"
    assert w.eta_label.text() == ""
    assert w.progress.value() == 0


def test_loss_axis_reads_epochs_in_the_first_epoch(qtbot, window):
    w = window
    events = [ProgressEvent(kind="batch", epoch=1, n_epochs=50, batch=b, n_batches=400,
                            loss=1.0 / b) for b in range(1, 5)]
    w._on_events(events)                         # the window's path for a run's events
    w.loss_view.refresh()
    _settle(qtbot)
    axis = w.loss_view.plot.getAxis("bottom")
    assert "epoch" in axis.labelString()
    assert "x0.001" not in axis.labelString() and "(x" not in axis.labelString()
    assert axis.autoSIPrefixScale == 1.0


def test_title_follows_the_file_opened(qtbot, window, holo_file, ptycho_file, tmp_path):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=1)
    w.start_run()
    wait_idle(qtbot, w)
    result = tmp_path / "out" / "result.h5"
    for quick in (False, True):
        open_data(qtbot, w, holo_file)
        w.open_path(str(result))
        if not quick:                            # the result on screen, then another file
            qtbot.waitUntil(lambda: not w.tasks.busy() and w.result_path == result,
                            timeout=15000)
            assert "result out/result.h5" in w.windowTitle()
        w.open_path(str(ptycho_file))            # asked for last: shown, whichever reads first
        qtbot.waitUntil(lambda: not w.tasks.busy() and
                        w.dataset.source_path == str(ptycho_file), timeout=15000)
        assert ptycho_file.name in w.windowTitle()
        assert "result" not in w.windowTitle() and holo_file.name not in w.windowTitle()
        assert not w.act_continue.isEnabled()    # "Continue this result": no result open


def test_docks_get_their_width_back_after_shrink_and_enlarge(qtbot, window):
    w = window
    w.show_workspace()                           # the start page hides the docks
    w.resize(1500, 920)
    _settle(qtbot)
    w.resizeDocks([w.params_dock], [360], Qt.Orientation.Horizontal)   # the user's width
    _settle(qtbot)
    wide = w.params_dock.width()
    assert wide >= 350
    w.resize(700, 500)
    _settle(qtbot)
    assert w.params_dock.width() >= 200          # narrower, but still a usable form
    w.resize(1500, 920)
    _settle(qtbot)
    assert abs(w.params_dock.width() - wide) <= 4
    assert abs(w.data_dock.width() - wide) <= 4


@pytest.mark.napari
def test_closing_the_popout_asks_nothing(qtbot, window):
    w = window
    nv = w.napari_view
    w.tabs.setCurrentWidget(nv)
    vol = np.random.default_rng(1).random((16, 16, 16)).astype(np.float32)
    nv.show_volume({"delta": vol}, 50e-9, 50e-9, title="test volume")
    qtbot.waitUntil(lambda: "delta" in nv.layer_names() and not nv.busy, timeout=60000)
    nv.pop_out()
    qtbot.waitUntil(lambda: not nv.busy and bool(nv.popouts), timeout=30000)
    qt_window = nv.popouts[-1].window._qt_window
    asked = []

    def answer_any_dialog():
        for top in QApplication.topLevelWidgets():
            if isinstance(top, QDialog) and top.isVisible():
                asked.append(type(top).__name__)
                top.accept()

    poll = QTimer()
    poll.timeout.connect(answer_any_dialog)
    poll.start(50)
    try:
        close_like_the_window_manager(int(qt_window.winId()))   # its title bar's close button
        qtbot.waitUntil(lambda: not nv.popouts, timeout=10000)
    finally:
        poll.stop()
    assert asked == []
