"""The main window driving a real reconstruction: open, edit, run, pause/resume/stop, close."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent

from slicewise.app import settings
from slicewise.app.params_panel import format_value
from slicewise.engine.recon import config as cfgmod

from .conftest import fast_run, open_data, run_until_divergence, wait_idle


def test_open_edit_run_loss_decreases(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    assert w.summary.field_text("energy").startswith("10 keV")
    assert w.summary.field_text("distances") == "50 \u00b5m, 100 \u00b5m"
    assert w.frames_browser.has_data()
    assert w.params.value("data.path") == str(Path(holo_file).resolve())

    # change a parameter the way a user does: type into its field
    lr = w.params.editor("optimizer.lr_delta")
    lr.selectAll()
    qtbot.keyClicks(lr, "2e-7")
    assert w.params.value("optimizer.lr_delta") == pytest.approx(2e-7)
    fast_run(w, tmp_path / "out", epochs=6)
    assert w.act_start.isEnabled()

    w.act_start.trigger()
    qtbot.waitUntil(lambda: w.run_info is not None, timeout=20000)
    assert "NumPy" in w.backend_label.text()
    wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
    w.loss_view.refresh()
    assert w.loss_view.epochs == list(range(1, 7))
    assert len(w.loss_view.batch_loss) >= 6
    assert w.loss_view.epoch_loss[-1] < w.loss_view.epoch_loss[0]
    assert w.slice_view.has_data() and w.slice_view.updates >= 1
    assert w.slice_view.image().shape == (24, 24)
    assert w.frames_view.has_data()
    assert w.progress.value() == 1000
    assert (tmp_path / "out" / "result.h5").is_file()
    # the run's own log file next to its results
    assert "epoch" in (tmp_path / "out" / "slicewise-run.log").read_text()
    assert any("epoch 6/6" in line for line in w.log_panel.lines())
    # holography: no probe, no positions -> those tabs are greyed out, not empty plots
    assert not w.side_tabs.isTabEnabled(w.side_tabs.indexOf(w.probe_view))

    # the slice viewer's controls: other quantity, other axis, fixed levels
    w.slice_view.quantity.setCurrentIndex(2)  # phase
    assert w.slice_view.image() is not None and float(w.slice_view.image().max()) <= 0.0
    w.slice_view.axis.setCurrentIndex(1)      # along y
    assert w.slice_view.image().shape == (24, 24)
    w.slice_view.auto.setChecked(False)
    levels = w.slice_view.cbar.levels()
    w.slice_view.slider.setValue(3)
    assert w.slice_view.cbar.levels() == levels


def test_pause_change_resume_stop(qtbot, window, holo_file, tmp_path):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=400)
    w.start_run()
    qtbot.waitUntil(lambda: len(w.loss_view.batch_loss) >= 1, timeout=20000)

    w.act_pause.trigger()
    qtbot.waitUntil(lambda: w.run_state == "paused", timeout=10000)
    assert w.act_pause.text() == "Resume"
    # only fields that are safe while paused can be edited
    assert w.params.editor("optimizer.lr_delta").isEnabled()
    assert not w.params.editor("model.kind").isEnabled()
    n_batches = len(w.loss_view.batch_loss)
    qtbot.wait(300)
    assert len(w.loss_view.batch_loss) == n_batches, "the solver kept going while paused"
    assert w.last_snapshot is not None  # the paused state is on screen

    w.params.set_value("optimizer.lr_delta", "5e-8")
    assert w.params.pending_changes() == {"optimizer.lr_delta": 5e-8}
    w.act_pause.trigger()  # resume, applying the change
    qtbot.waitUntil(lambda: w.run_state == "running", timeout=10000)
    qtbot.waitUntil(lambda: w.params.pending_changes() == {}, timeout=10000)  # applied
    assert any("applied while paused: optimizer.lr_delta = 5e-08" in line
               for line in w.log_panel.lines())
    qtbot.waitUntil(lambda: len(w.loss_view.batch_loss) > n_batches + 2, timeout=10000)

    w.act_stop.trigger()
    wait_idle(qtbot, w)
    assert w.controller.last_stats.run_s > 0
    assert len(w.loss_view.epochs) < 400
    assert w.params.editor("model.kind").isEnabled()
    assert w.act_start.isEnabled()
    assert (tmp_path / "out" / "result.h5").is_file()
    # the solver really ran with the changed step size: the result records it
    from slicewise.engine.io.results import read_result
    res = read_result(tmp_path / "out" / "result.h5")
    assert cfgmod.from_toml(res["config_toml"]).optimizer.lr_delta == pytest.approx(5e-8)


def test_validation_as_you_type_disables_start(qtbot, window, holo_file, tmp_path):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=2)
    assert w.act_start.isEnabled()
    ed = w.params.editor("optimizer.lr_delta")
    ed.selectAll()
    qtbot.keyClicks(ed, "-1")
    assert "ffe0e0" in ed.styleSheet()              # marked red
    assert not w.act_start.isEnabled()
    assert "optimizer.lr_delta" in w.start_reason.text()
    assert "\u26a0" in w.params.group_title("optimizer")
    ed.selectAll()
    qtbot.keyClicks(ed, "abc")
    assert "expected a number" in w.params.first_error()
    assert "(str)" not in w.params.first_error()          # no Python type names
    ed2 = w.params.editor("run.epochs")
    ed2.selectAll()
    qtbot.keyClicks(ed2, "2.5")                            # a whole number is asked for
    assert "run.epochs: expected a whole number, got '2.5'" in w.params.errors()["run.epochs"]
    ed2.selectAll()
    qtbot.keyClicks(ed2, "3")
    ed.selectAll()
    qtbot.keyClicks(ed, "1e-7")
    assert ed.styleSheet() == "" and w.act_start.isEnabled()

    # a rule between fields: positions are refined only in ptychography
    w.params.set_value("model.kind", "holo")
    w.params.set_value("refine.positions", True)
    assert not w.act_start.isEnabled()
    assert "refine.positions" in w.start_reason.text()
    w.params.set_value("refine.positions", False)
    assert w.act_start.isEnabled()


def test_save_and_reload_configuration(qtbot, window, tmp_path, monkeypatch):
    w = window
    w.params.set_value("optimizer.lr_beta", "3e-9")
    w.params.set_value("run.epochs", "17")
    w.params.set_value("model.object_shape", "8, 16, 16")
    w.params.set_value("refine.probe", True)
    w.params.set_value("loss.kind", "poisson")
    path = tmp_path / "my run.toml"
    from slicewise.app import dialogs as dlg_mod

    monkeypatch.setattr(dlg_mod, "save_file", lambda *a, **k: str(path))
    w.save_config_dialog()
    assert path.is_file()
    assert cfgmod.from_toml(path).run.epochs == 17

    w.params.set_config(cfgmod.ReconConfig())
    assert w.params.value("run.epochs") == 50
    monkeypatch.setattr(dlg_mod, "open_file", lambda *a, **k: str(path))
    w.load_config_dialog()
    assert w.params.value("optimizer.lr_beta") == pytest.approx(3e-9)
    assert w.params.value("run.epochs") == 17
    assert w.params.value("model.object_shape") == (8, 16, 16)
    assert w.params.value("refine.probe") is True
    assert w.params.value("loss.kind") == "poisson"
    assert w.params.editor("loss.kind").currentText() == "poisson"
    assert w.config_path == str(path.resolve())
    assert str(path.resolve()) in settings.recent_files()


def test_bad_files_give_dialogs_and_window_stays_usable(qtbot, window, holo_file, tmp_path,
                                                        dialogs):
    w = window
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not HDF5")
    w.open_path(str(junk))
    qtbot.waitUntil(lambda: len(dialogs.errors) == 1, timeout=10000)
    title, message, details = dialogs.errors[0]
    assert "junk.h5" in message and "HDF5" in message
    assert details  # the expandable part

    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[optimizer]\nlr_delta = 'fast'\n")
    w.open_path(str(bad_toml))
    assert len(dialogs.errors) == 2 and "optimizer.lr_delta" in dialogs.errors[1][1]

    w.open_path(str(tmp_path / "missing.h5"))
    assert len(dialogs.errors) == 3 and "not found" in dialogs.errors[2][1]

    w.open_path(str(tmp_path / "notes.txt"))
    assert len(dialogs.errors) == 4

    # still alive: a good file opens and a run can start
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=1)
    w.start_run()
    wait_idle(qtbot, w)
    assert len(dialogs.errors) == 4
    assert w.loss_view.epochs == [1]


def test_divergence_is_reported_and_checkpoint_kept(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    run_until_divergence(qtbot, w, holo_file, tmp_path / "out")
    assert len(dialogs.errors) == 1
    title, message, _ = dialogs.errors[0]
    assert "diverged" in message and "learning rates" in message
    assert (tmp_path / "out" / "checkpoint.h5").is_file()
    assert w.slice_view.has_data()      # the last good estimate is still on screen
    assert np.all(np.isfinite(w.slice_view.image()))
    assert w.act_start.isEnabled()      # and a new run can be started


def test_inconsistent_configuration_is_reported(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=1, **{"model.object_shape": "24, 20, 20"})
    w.start_run()
    wait_idle(qtbot, w)
    assert len(dialogs.errors) == 1 and "object_shape" in dialogs.errors[0][1]
    assert w.act_start.isEnabled()


def test_close_during_run_asks_and_joins_worker(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=1000)
    w.start_run()
    qtbot.waitUntil(lambda: w.run_state == "running", timeout=20000)

    dialogs.confirm_answer = False      # "No": the window stays, the run goes on
    assert not w.close()
    assert w.isVisible() and w.controller.is_active()
    assert len(dialogs.confirms) == 1

    dialogs.confirm_answer = True
    proc = w.controller._client.proc  # the solver's own process
    t0 = time.perf_counter()
    assert w.close()
    assert time.perf_counter() - t0 < 20
    assert not w.controller.is_active()
    assert proc.wait(10) == 0
    assert (tmp_path / "out" / "result.h5").is_file()  # stopped cleanly, wrote its result


def test_drop_and_recent_files(qtbot, window, holo_file):
    w = window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(holo_file))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    w.dropEvent(ev)
    qtbot.waitUntil(lambda: w.dataset is not None, timeout=10000)
    assert str(Path(holo_file).resolve()) in settings.recent_files()
    w.fill_recent_menu()
    assert Path(holo_file).name in [a.text() for a in w.recent_menu.actions()]
    assert settings.last_dir() == str(Path(holo_file).parent.resolve())


def test_window_remembers_layout(qtbot, dialogs, make_window):
    w = make_window()
    w.show()
    w.show_workspace()                      # the start page hides the docks
    avail = w.screen().availableGeometry()  # offscreen test screens are small
    w.resize(min(1234, avail.width() - 40), min(777, avail.height() - 40))
    w.log_dock.hide()
    size = (w.width(), w.height())
    w.close()
    w2 = make_window()
    w2.show()
    assert (w2.width(), w2.height()) == size
    assert w2.on_start_page() and w2.params_dock.isHidden()
    w2.show_workspace()
    assert w2.log_dock.isHidden() and not w2.params_dock.isHidden()
    w2.close()


def test_ptycho_views_probe_and_positions(qtbot, window, ptycho_file, tmp_path):
    w = window
    open_data(qtbot, w, ptycho_file)
    assert w.summary.field_text("scan positions") == "25"
    fast_run(w, tmp_path / "out", epochs=3, **{"refine.positions": True, "refine.probe": True,
                                               "run.batch_spots": 5})
    w.frames_view.spot.setValue(7)
    w.start_run()
    wait_idle(qtbot, w)
    assert w.probe_view.has_data()
    assert w.probe_view.amp_img.image.shape == (16, 16)
    assert w.positions_view.has_data()
    assert "25 positions" in w.positions_view.info.text()
    assert w.side_tabs.isTabEnabled(w.side_tabs.indexOf(w.positions_view))
    # the frame chosen in the comparison view is the one the solver sends
    assert w.frames_view.has_data() and w.frames_view._measured.shape == (16, 16)
    snap_measured = w.last_snapshot.measured
    expected = np.fft.fftshift(w.dataset.frames([0], [7])[0, 0])
    assert np.allclose(snap_measured, expected)


def test_cone_demo_loads_data_and_tuned_configuration(qtbot, window, dialogs):
    from slicewise.engine import demo

    w = window
    w.act_demo.trigger()
    qtbot.waitUntil(lambda: w.dataset is not None, timeout=60000)
    assert not dialogs.errors
    assert Path(w.dataset.source_path).name == demo.DEMO_DATA_NAME
    assert w.params.value("run.epochs") == demo.DEMO_EPOCHS
    assert w.params.value("model.kind") == "holo"
    assert Path(w.params.value("run.output_dir")).is_absolute()
    assert w.act_start.isEnabled()


def test_configuration_with_relative_paths_opens_its_data(qtbot, window, holo_file, tmp_path,
                                                          dialogs):
    import shutil

    w = window
    shutil.copy(holo_file, tmp_path / "scan.h5")
    cfg = cfgmod.ReconConfig()
    cfg.data.path = "scan.h5"               # relative to the configuration file
    cfg.run.output_dir = "recon"
    cfg.run.epochs = 1
    cfg.run.backend = "numpy"
    cfg.run.save_tiff = False
    cfgmod.to_toml(cfg, tmp_path / "run.toml")
    w.open_path(str(tmp_path / "run.toml"))
    qtbot.waitUntil(lambda: w.dataset is not None, timeout=10000)
    assert Path(w.dataset.source_path).name == "scan.h5"
    assert w.params.value("data.path") == "scan.h5"   # kept as written
    w.start_run()
    wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
    assert (tmp_path / "recon" / "result.h5").is_file()


def test_resume_from_checkpoint_continues_the_history(qtbot, window, holo_file, tmp_path,
                                                      monkeypatch, dialogs):
    from slicewise.app import dialogs as dlg_mod

    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=2)
    w.start_run()
    wait_idle(qtbot, w)
    ckpt = tmp_path / "out" / "checkpoint.h5"
    assert ckpt.is_file()

    w.params.set_value("run.epochs", 4)
    monkeypatch.setattr(dlg_mod, "open_file", lambda *a, **k: str(ckpt))
    w.act_resume_ckpt.trigger()
    wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
    assert w.run_info.start_epoch == 2
    w.loss_view.refresh()
    assert w.loss_view.epochs == [1, 2, 3, 4]


def test_out_of_memory_is_reported_and_last_result_kept(qtbot, window, holo_file, tmp_path,
                                                        monkeypatch, dialogs):
    from slicewise.engine.recon.setup import memory as memory_mod

    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=1)
    w.start_run()
    wait_idle(qtbot, w)
    result = tmp_path / "out" / "result.h5"
    before = result.read_bytes()

    # a machine with (almost) no free memory: the run refuses to start, nothing is written.
    # The patch must reach the solver, so it runs on a thread of this process here.
    monkeypatch.setattr(memory_mod, "available_memory_bytes", lambda backend: 1024)
    w.controller.mode = "thread"
    w.params.set_value("run.epochs", 3)
    w.params.set_value("run.overwrite", True)  # else the earlier result alone refuses the run
    w.start_run()
    wait_idle(qtbot, w)
    assert len(dialogs.errors) == 1
    msg = dialogs.errors[0][1]
    assert "GiB" in msg and ("batch" in msg or "model.object_shape" in msg)
    assert result.read_bytes() == before
    assert w.act_start.isEnabled()


def test_form_shows_what_the_run_chose(qtbot, window, holo_file, tmp_path, dialogs):
    """Unset learning rates and ``auto`` fields show the run's measured/chosen values, and stay
    unset, so the next run measures again (issue 10: shown in the GUI's parameter form)."""
    w = window
    open_data(qtbot, w, holo_file)
    assert w.params.value("optimizer.lr_delta") is None
    fast_run(w, tmp_path / "out", epochs=2)
    w.act_start.trigger()
    wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
    saved = cfgmod.from_toml(tmp_path / "out" / "config.toml")
    line = w.params.editor("optimizer.lr_delta")
    assert line.text() == "" and w.params.value("optimizer.lr_delta") is None
    assert line.placeholderText() == f"run chose: {format_value(saved.optimizer.lr_delta)}"
    assert saved.optimizer.kind in w.params.editor("optimizer.kind").toolTip()
    w.params.set_config(cfgmod.ReconConfig())  # another configuration: the choices are gone
    assert line.placeholderText() == "unset"


def test_run_choices_show_their_reasons(qtbot, window, holo_file):
    """"run chose: ..." carries the reason of each choice when the run's config event has
    ``reasons`` (the RunPlan's), in the field's and its label's tooltips."""
    from slicewise.engine.recon.run import ProgressEvent

    w = window
    open_data(qtbot, w, holo_file)
    ev = ProgressEvent(kind="config", epoch=0, n_epochs=5,
                       changes={"optimizer.lr_delta": 3e-7, "optimizer.kind": "adam"})
    ev.reasons = {"optimizer.lr_delta": "measured from the loss's curvature along its gradient",
                  "optimizer.kind": "tomography: Adam on minibatches"}   # RunPlan's reasons
    w._on_events([ev])                       # the window's path for a run's events
    tip = w.params.editor("optimizer.lr_delta").toolTip()
    assert tip.startswith("run chose: 3e-07\nwhy: measured from the loss's curvature")
    assert "why: tomography: Adam on minibatches" in w.params.editor("optimizer.kind").toolTip()
    assert "why: tomography" in w.params._rows["optimizer.kind"].label.toolTip()
    ev2 = ProgressEvent(kind="config", epoch=0, n_epochs=5, changes={"optimizer.lr_beta": 1e-9})
    w._on_events([ev2])                      # a run without reasons: the choice alone
    assert w.params.editor("optimizer.lr_beta").toolTip().startswith("run chose: 1e-09\n\n")
    w.params.set_config(cfgmod.ReconConfig())   # another configuration: the reasons go too
    assert "why:" not in w.params.editor("optimizer.lr_delta").toolTip()
