"""The default 3D tab: napari in a process of its own, its window embedded in the tab.

Driven as a user would: a run with the 3D tab open, the volume and ground truth drawn, a result
opened, Reset, the 3D process killed (the window carries on and the next volume brings the view
back), and the window closed (the process goes with it).
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from .conftest import fast_run, open_data, wait_idle

pytestmark = pytest.mark.napari


@pytest.fixture
def window3d(qtbot, dialogs, make_window, monkeypatch):
    monkeypatch.setenv("SLICEWISE_3D_VIEW", "process")
    w = make_window()
    w.show()
    qtbot.waitExposed(w)
    return w


def _ask(qtbot, nv, what="state", timeout=20000):
    qid = nv.query(what)
    qtbot.waitUntil(lambda: qid in nv.replies, timeout=timeout)
    return nv.replies.pop(qid)


def _drawn(nv, names=("delta", "beta")) -> bool:
    return set(nv.layer_names()) >= set(names) and not nv.busy


def test_run_result_reset_in_the_3d_process(qtbot, window3d, holo_file, tmp_path, dialogs):
    from slicewise.app.view3d.remote import RemoteNapariView

    w = window3d
    nv = w.napari_view
    assert isinstance(nv, RemoteNapariView)
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=3)
    w.tabs.setCurrentWidget(nv)             # the tab is open during the run
    w.start_run()
    wait_idle(qtbot, w)
    qtbot.waitUntil(lambda: _drawn(nv, ("delta", "beta", "truth delta")) and nv.updates >= 1,
                    timeout=60000)
    assert nv.process is not None and nv.process.pid != os.getpid()
    state = _ask(qtbot, nv)
    assert state["layer_info"]["delta"]["shape"] == (24, 24, 24)   # full size after the run
    assert state["layer_info"]["truth delta"]["visible"] and state["grid"]
    assert "after 3 epochs" in state["title"]
    # the embedded window fills the tab and draws the volumes
    c = nv._container
    assert c is not None and c.isVisible() and c.width() > 0.8 * nv.width()
    img = _ask(qtbot, nv, "screenshot")
    assert img is not None and img[..., :3].std() > 1.0
    # the window is resized while the tab is hidden: shown again, the 3D window fills it
    w.tabs.setCurrentWidget(w.live)
    w.resize(w.width() - 150, w.height() - 80)
    w.tabs.setCurrentWidget(nv)
    qtbot.waitUntil(lambda: tuple(nv.status().get("size", ())) == (c.width(), c.height()),
                    timeout=10000)

    # a saved result opens in the same view
    w.open_path(str(tmp_path / "out" / "result.h5"), then_3d=True)
    qtbot.waitUntil(lambda: "result.h5" in nv.status().get("title", "") and not nv.busy,
                    timeout=20000)
    # ... and pops out into a full napari window of the 3D process
    nv.pop_out()
    qtbot.waitUntil(lambda: nv.status().get("popouts") == 1, timeout=30000)

    w.reset_run()                           # Reset clears the 3D tab too
    qtbot.waitUntil(lambda: nv.layer_names() == [] and
                    not nv.status().get("popout_enabled", True), timeout=10000)
    assert not dialogs.errors, dialogs.errors


def test_a_dead_3d_process_costs_the_view_not_the_window(qtbot, window3d, holo_file, tmp_path,
                                                         dialogs):
    w = window3d
    nv = w.napari_view
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=2)
    w.start_run()
    wait_idle(qtbot, w)
    w.show_3d()
    qtbot.waitUntil(lambda: _drawn(nv), timeout=60000)
    first = nv.process
    first.send_signal(signal.SIGKILL)       # e.g. a crash in an OpenGL driver
    qtbot.waitUntil(lambda: nv.process is None, timeout=10000)
    assert "ended" in nv.note.text() and nv.note.isVisible()
    assert not dialogs.errors                # said in the tab and the log, not in a dialog
    # the window carries on: another run, and the 3D view comes back with its volume
    w.params.set_value("run.epochs", 3)
    w.continue_result()
    wait_idle(qtbot, w)
    w.show_3d()
    qtbot.waitUntil(lambda: nv.process is not None and _drawn(nv), timeout=60000)
    assert nv.process.pid != first.pid
    assert not dialogs.errors, dialogs.errors

    proc = nv.process
    w.close()                                # the 3D process ends with the window
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=10000)


def test_the_3d_process_ends_with_the_window_while_it_starts(qtbot, window3d):
    nv = window3d.napari_view
    nv.prepare()                             # the tab was opened: the process starts ...
    proc = nv.process
    assert proc is not None
    window3d.close()                         # ... and the window closes at once
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=10000)


def test_volumes_sent_while_one_is_on_its_way_keep_only_the_newest(qtbot):
    """The sender thread drops a volume that a newer one has overtaken in its queue."""
    from slicewise.app.view3d.remote import _Link

    sent = []

    class Conn:
        def send(self, msg):
            sent.append(msg)

    link = _Link.__new__(_Link)
    import queue
    link._out, link.conn = queue.Queue(), Conn()
    for seq in (1, 2, 3):
        link.send("show", seq, (np.zeros(2),))
    link.send("message", "x")
    link._out.put(None)
    link._write()
    assert [m[:2] for m in sent] == [("show", 3), ("message", "x")]


def test_a_3d_process_that_keeps_dying_is_not_restarted_forever(qtbot, window3d, dialogs):
    from slicewise.app.view3d.remote import MAX_CRASHES

    nv = window3d.napari_view
    vol = {"delta": np.zeros((4, 4, 4), np.float32)}
    nv.show_volume(vol, 1e-8, 1e-8)          # starts the process; the volume waits for it
    for k in range(MAX_CRASHES):
        # e.g. no usable OpenGL: it dies before it shows the volume, which starts it again
        qtbot.waitUntil(lambda: nv.process is not None, timeout=5000)
        nv.process.kill()
        qtbot.waitUntil(lambda: nv.crashes == k + 1, timeout=10000)
    assert "not started again" in nv.note.text() and "SLICEWISE_3D_VIEW=window" in nv.note.text()
    nv.show_volume(vol, 1e-8, 1e-8)
    assert nv.process is None and not nv.busy
    assert not dialogs.errors


def test_the_3d_window_fills_a_tab_it_was_made_for_while_hidden(qtbot, window3d):
    """The process became ready while the tab was hidden and the window was resized meanwhile:
    when the tab is shown, the 3D window is placed in it and fills it."""
    w = window3d
    nv = w.napari_view
    w.tabs.setCurrentWidget(w.live)
    nv.preload(0)                            # started in the background, the tab hidden
    qtbot.waitUntil(lambda: nv.ready, timeout=30000)
    w.resize(w.width() + 120, w.height() + 60)
    qtbot.wait(200)
    w.tabs.setCurrentWidget(nv)
    c = nv._container
    qtbot.waitUntil(lambda: c.isVisible() and c.width() > 0.8 * nv.width(), timeout=5000)
    qtbot.waitUntil(lambda: tuple(nv.status().get("size", ())) == (c.width(), c.height()),
                    timeout=10000)
