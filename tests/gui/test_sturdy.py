"""The window survives what users do to it: 3D pop-out/close/hide, results reopened, invalid
values typed while paused, broken frames, missing files, a crashing solver."""

from __future__ import annotations

import os
import signal

import h5py
import numpy as np
import pytest


from .conftest import fast_run, open_data, wait_idle


def _run(qtbot, w, data, out, epochs=2, **extra):
    open_data(qtbot, w, data)
    fast_run(w, out, epochs=epochs, **extra)
    w.start_run()
    wait_idle(qtbot, w)


@pytest.mark.napari
def test_popout_close_while_hidden_then_updates(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    _run(qtbot, w, holo_file, tmp_path / "out")
    nv = w.napari_view
    w.show_3d()
    qtbot.waitUntil(lambda: "delta" in nv.layer_names() and not nv.busy, timeout=30000)
    nv.viewer.camera.angles = (5.0, 30.0, 60.0)

    nv.pop_out()                    # made over several event-loop turns, then shown
    qtbot.waitUntil(lambda: not nv.busy and bool(nv.popouts), timeout=30000)
    pop = nv.popouts[-1]
    # the pop-out shows the same view: grid side by side, camera, contrast and rendering
    assert pop.grid.enabled == nv.viewer.grid.enabled
    assert tuple(pop.camera.angles) == pytest.approx(tuple(nv.viewer.camera.angles))
    for name in nv.layer_names():
        a, b = nv.viewer.layers[name], pop.layers[name]
        assert tuple(b.contrast_limits) == pytest.approx(tuple(a.contrast_limits))
        assert str(b.rendering) == str(a.rendering) and b.visible == a.visible

    w.tabs.setCurrentWidget(w.live)          # the 3D tab is hidden ...
    pop.close()                              # ... when the pop-out is closed
    qtbot.waitUntil(lambda: not nv.popouts, timeout=5000)
    w.params.set_value("run.epochs", 4)      # more updates while hidden
    w.continue_result()
    wait_idle(qtbot, w)
    w.show_3d()
    qtbot.waitUntil(lambda: nv.rebuilds >= 1 and not nv.busy, timeout=10000)  # a fresh canvas
    qtbot.wait(300)
    assert not dialogs.errors, dialogs.errors
    assert set(nv.layer_names()) >= {"delta", "beta"}
    assert tuple(nv.viewer.camera.angles) == pytest.approx((5.0, 30.0, 60.0))
    img = nv.screenshot()
    assert img is not None and img[..., :3].std() > 1.0   # the canvas draws, not black

    w.reset_run()                            # Reset clears the 3D tab too
    assert nv.layer_names() == [] and not nv.popout.isEnabled()


def test_gl_errors_never_become_dialogs(qtbot, window, dialogs, monkeypatch):
    import sys

    from slicewise.app import errors
    from slicewise.app.view3d import view as napari_view

    seen = []
    monkeypatch.setattr(napari_view, "gl_error_seen", lambda: seen.append(1))
    errors.install_excepthook()
    try:
        class GLError(Exception):
            pass

        GLError.__module__ = "OpenGL.error"
        for _ in range(3):  # one per frame in the original bug
            try:
                raise GLError("glTexSubImage3D: invalid operation")
            except GLError:
                sys.excepthook(*sys.exc_info())
        assert not dialogs.errors and len(seen) == 3
        try:
            raise ValueError("an ordinary bug")
        except ValueError:
            sys.excepthook(*sys.exc_info())
        assert len(dialogs.errors) == 1     # other errors still reach the user
    finally:
        sys.excepthook = sys.__excepthook__


def test_opening_a_result_loads_its_configuration(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    _run(qtbot, w, holo_file, tmp_path / "out", epochs=2, **{"run.shuffle_seed": 7})
    # the form moves on to other values ...
    w.params.set_value("run.shuffle_seed", 3)
    w.params.set_value("run.epochs", 9)
    # ... and the result brings its own back
    w.open_path(str(tmp_path / "out" / "result.h5"))
    qtbot.waitUntil(lambda: w.result_path is not None and
                    w.params.value("run.shuffle_seed") == 7, timeout=10000)
    assert w.params.value("run.epochs") == 2
    assert w.params.value("data.path") == str(holo_file.resolve())
    assert "result.h5" in w.windowTitle() and holo_file.name in w.windowTitle()
    assert w.loss_view.epochs == [1, 2]
    # result files carry per-epoch wall times
    from slicewise.engine.io.results import read_result
    res = read_result(tmp_path / "out" / "result.h5")
    times = np.ravel(res["extra"]["epoch_time_s"])
    assert len(times) == 2 and np.all(times > 0)

    # continue it: two more epochs on top of the two it has
    w.params.set_value("run.epochs", 4)
    assert w.act_continue.isEnabled()
    w.act_continue.trigger()
    wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
    w.loss_view.refresh()
    assert w.loss_view.epochs == [1, 2, 3, 4]
    times = np.ravel(read_result(tmp_path / "out" / "result.h5")["extra"]["epoch_time_s"])
    assert len(times) == 4 and np.all(times > 0)   # the resumed epochs keep their times


def test_invalid_value_typed_while_paused_is_refused(qtbot, window, holo_file, tmp_path,
                                                     dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=400)
    w.start_run()
    qtbot.waitUntil(lambda: len(w.loss_view.batch_loss) >= 1, timeout=20000)
    w.act_pause.trigger()
    qtbot.waitUntil(lambda: w.run_state == "paused", timeout=10000)

    field = "regularization.tv_weight"
    assert w.params.editor(field).isEnabled()
    w.params.editor(field).setText("-1")
    w.params.editor(field).textEdited.emit("-1")
    assert field in w.params.errors()
    w.act_pause.trigger()                    # Resume: refused, with the field named
    assert len(dialogs.errors) == 1 and field in dialogs.errors[0][1]
    qtbot.wait(200)
    assert w.run_state == "paused" and w.params.editor(field).isEnabled()

    w.params.set_value(field, 0.0)           # corrected: the form recovers, Resume works
    assert w.params.is_valid()
    w.act_pause.trigger()
    qtbot.waitUntil(lambda: w.run_state == "running", timeout=10000)
    w.act_pause.trigger()
    qtbot.waitUntil(lambda: w.run_state == "paused", timeout=10000)
    w.params.editor(field).setText("-2")     # invalid again, then Stop instead of fixing it
    w.params.editor(field).textEdited.emit("-2")
    w.act_stop.trigger()
    wait_idle(qtbot, w)
    assert w.params.is_valid() and w.act_start.isEnabled()   # the last valid value is back
    assert w.params.editor(field).text() == "0"


def test_nan_frames_are_named_when_the_file_opens(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    bad = tmp_path / "nan_frames.h5"
    bad.write_bytes(holo_file.read_bytes())
    with h5py.File(bad, "r+") as f:
        d = f["data/intensities"]                     # (angles, spots, y, x)
        block = d[2]
        block[..., 0, 0] = np.nan                     # every spot at angle 2
        d[2] = block
    w.open_path(str(bad))
    qtbot.waitUntil(lambda: len(dialogs.errors) == 1, timeout=15000)
    title, msg, _ = dialogs.errors[0]
    # every bad frame named, not just the one the reader sampled, and no other
    assert title == "Open" and "2 frame(s)" in msg
    assert "(angle 2, position 0)" in msg and "(angle 2, position 1)" in msg
    assert "angle 0" not in msg and "angle 3" not in msg


def test_bad_frames_outside_the_sample_found_after_open(qtbot, window, holo_file, tmp_path,
                                                        dialogs):
    w = window
    bad = tmp_path / "one_nan.h5"
    bad.write_bytes(holo_file.read_bytes())
    with h5py.File(bad, "r+") as f:
        d = f["data/intensities"]                     # 4 angles x 2 spots; the reader samples
        block = d[1]                                  # (0,0), (1,0), (2,1), (3,1)
        block[1, 3, 3] = np.nan
        d[1] = block
    open_data(qtbot, w, bad)                         # opens: the sample is clean ...
    qtbot.waitUntil(lambda: len(dialogs.errors) == 1, timeout=15000)  # ... the scan is not
    assert "(angle 1, position 1)" in dialogs.errors[0][1]
    assert "1 frame(s)" in dialogs.errors[0][1]
    assert "bad frames" in [w.summary.form.itemAt(i, w.summary.form.ItemRole.LabelRole)
                            .widget().text() for i in range(w.summary.form.rowCount())]
    # the frame browser says what is wrong with a bad frame instead of keeping the last one
    w.frames_browser.angle_slider.setValue(1)
    w.frames_browser.spot_slider.setValue(1)
    assert w.frames_browser.img.image is None
    assert "NaN" in w.frames_browser.frame_info.text()
    assert len(dialogs.errors) == 1


def test_missing_data_path_flagged_as_typed(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    w.params.editor("data.path").setText(str(tmp_path / "nope.h5"))
    w.params.editor("data.path").textEdited.emit(str(tmp_path / "nope.h5"))
    assert "data.path" in w.params.errors() and "nope.h5" in w.params.errors()["data.path"]
    assert not w.act_start.isEnabled() and "nope.h5" in w.start_reason.text()
    assert "nope.h5" in (w.summary.field_text("data file") or "")   # not the previous file
    w.params.set_value("data.path", str(holo_file))
    qtbot.waitUntil(lambda: "data.path" not in w.params.errors(), timeout=5000)
    assert not dialogs.errors


def test_output_folder_that_cannot_be_created(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    fast_run(w, blocker / "out", epochs=1)
    w.start_run()
    assert len(dialogs.errors) == 1
    msg = dialogs.errors[0][1]
    assert "run.output_dir" in msg and "a_file" in msg and "is a file" in msg
    assert w.run_state == "idle" and w.act_start.isEnabled()


def test_solver_crash_leaves_the_window_usable(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=1000)
    w.start_run()
    qtbot.waitUntil(lambda: w.run_state == "running", timeout=20000)
    os.kill(w.controller._client.proc.pid, signal.SIGKILL)   # e.g. the kernel's OOM killer
    wait_idle(qtbot, w)
    assert len(dialogs.errors) == 1 and "solver process ended" in dialogs.errors[0][1]
    fast_run(w, tmp_path / "out2", epochs=1)
    w.start_run()
    wait_idle(qtbot, w)
    assert len(dialogs.errors) == 1 and (tmp_path / "out2" / "result.h5").is_file()


def test_polish_labels_and_titles(qtbot, window, holo_file, tmp_path, dialogs):
    from slicewise.app.params_panel import field_label
    from slicewise.engine.recon import config as cfgmod

    w = window
    infos = {i.path: i for i in cfgmod.iter_fields(cfgmod.ReconConfig())}
    assert field_label(infos["run.epochs"]) == "epochs"            # not "epochs [epoch]"
    assert field_label(infos["data.energy_ev"]) == "energy [eV]"
    open_data(qtbot, w, holo_file)
    # holography's second frame index is the detector distance
    assert w.frames_view.spot_label.text() == "distance"
    assert w.frames_browser.spot_label.text() == "distance"
    # geometry read from the file is shown, not "unset"
    assert "10000" in w.params.editor("data.energy_ev").placeholderText()
    # "Measured vs model" shows the measured frame before any run
    assert w.frames_view.meas_img.image is not None
    _run(qtbot, w, holo_file, tmp_path / "out", epochs=1)
    assert "after 1 epoch" in w.slice_view.plot.titleLabel.text
    for act, key in ((w.act_reset, "Ctrl+R"), (w.act_show_3d, "Ctrl+3"),
                     (w.act_pause, "F6"), (w.act_out_dir, "Ctrl+Shift+O")):
        assert act.shortcut().toString() == key


def test_last_data_set_and_parameters_are_remembered(qtbot, holo_file, dialogs, make_window):
    w = make_window()
    open_data(qtbot, w, holo_file)
    w.params.set_value("run.epochs", 17)
    w.close()
    w2 = make_window()                 # the next start, without a file on the command line
    w2.restore_last_session()
    qtbot.waitUntil(lambda: w2.dataset is not None, timeout=10000)
    assert w2.params.value("run.epochs") == 17
    assert w2.dataset.source_path == str(holo_file)
    w2.close()
