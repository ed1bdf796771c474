"""The napari 3D view: volumes as layers, physical voxel scale, ground truth, result files."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import fast_run, open_data, wait_idle

pytestmark = pytest.mark.napari


def test_3d_view_of_run_and_result(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=2)
    w.start_run()
    wait_idle(qtbot, w)

    w.show_3d()
    assert w.tabs.currentWidget() is w.napari_view
    nv = w.napari_view
    qtbot.waitUntil(lambda: len(nv.layer_names()) == 4 and not nv.busy, timeout=30000)
    assert nv.layer_names() == ["delta", "beta", "truth beta", "truth delta"] or \
        set(nv.layer_names()) == {"delta", "beta", "truth delta", "truth beta"}
    layers = nv.viewer.layers
    px_um = 50e-9 * 1e6
    assert tuple(layers["delta"].scale) == pytest.approx((px_um, px_um, px_um))
    assert layers["delta"].data.shape == (24, 24, 24)
    assert np.allclose(layers["delta"].data, w.last_snapshot.delta)
    assert [str(u) for u in layers["delta"].units] == ["micrometer"] * 3
    assert tuple(layers["truth delta"].scale) == pytest.approx((px_um, px_um, px_um))
    assert layers["truth delta"].visible and nv.viewer.grid.enabled  # side by side with truth
    assert nv.viewer.dims.ndisplay == 3
    assert tuple(nv.viewer.dims.axis_labels) == ("z", "y", "x")
    img = nv.screenshot()
    assert img is not None and img[..., :3].std() > 1.0  # something was drawn

    # a saved result opens in the same view (File > Open result in napari)
    nv.grid.setChecked(False)
    w.open_path(str(tmp_path / "out" / "result.h5"), then_3d=True)
    qtbot.waitUntil(lambda: "result.h5" in nv.title.text(), timeout=10000)
    assert not dialogs.errors
    assert "truth delta" in nv.layer_names()
    assert w.loss_view.epochs == [1, 2]       # the result's loss history is shown too

    # and can be popped out into a full napari window
    nv.pop_out()                    # made over several event-loop turns, then shown
    qtbot.waitUntil(lambda: not nv.busy and bool(nv.popouts), timeout=30000)
    pop = nv.popouts[-1]
    assert set(layer.name for layer in pop.layers) == set(nv.layer_names())
    assert tuple(pop.layers["delta"].scale) == pytest.approx((px_um, px_um, px_um))


def test_truth_on_another_grid_is_centred(qtbot):
    from slicewise.app.view3d.view import NapariView

    nv = NapariView()
    qtbot.addWidget(nv)
    nv.show()
    vol = np.zeros((32, 16, 16), np.float32)
    truth = {"delta": np.ones((8, 16, 16), np.float32)}
    nv.show_volume({"delta": vol}, 100e-9, 50e-9, truth, truth_voxel_m=(100e-9, 100e-9))
    qtbot.waitUntil(lambda: not nv.busy, timeout=30000)  # layers are made one per event-loop turn
    layer = nv.viewer.layers["truth delta"]
    # reconstruction: 32 x 0.05 um = 1.6 um deep; truth 8 x 0.1 um = 0.8 um, centred: 0.4 um in
    assert tuple(layer.scale) == pytest.approx((0.1, 0.1, 0.1))
    assert tuple(layer.translate) == pytest.approx((0.4, 0.0, 0.0))
    nv.close_viewer()


def test_bin_volume_is_a_block_mean():
    from slicewise.app.view3d.view import bin_volume, preview_factor

    a = np.arange(4 * 6 * 5, dtype=np.float32).reshape(4, 6, 5)
    b = bin_volume(a, 2)
    assert b.shape == (2, 3, 2)  # the odd x side is cut to 4
    assert b[1, 2, 1] == pytest.approx(a[2:4, 4:6, 2:4].mean())
    assert bin_volume(np.ones((1, 8, 8)), 2).shape == (1, 4, 4)  # a single slice stays one
    assert preview_factor((16, 24, 24)) == 1 and preview_factor((48, 48, 48)) == 2
    assert preview_factor((1, 200, 200)) == 4


def test_live_preview_is_binned_and_full_resolution_returns_in_place(qtbot):
    from slicewise.app.view3d.view import NapariView

    nv = NapariView()
    qtbot.addWidget(nv)
    nv.show()
    rng = np.random.default_rng(0)
    vol = rng.random((32, 32, 32)).astype(np.float32)
    truth = {"delta": rng.random((32, 32, 32)).astype(np.float32)}
    nv.show_volume({"delta": vol}, 50e-9, 50e-9, truth, preview=True)
    qtbot.waitUntil(lambda: not nv.busy, timeout=30000)
    layer, t_layer = nv.viewer.layers["delta"], nv.viewer.layers["truth delta"]
    # a 2x binned preview on a 2x coarser grid: the same physical size
    assert layer.data.shape == (16, 16, 16) and t_layer.data.shape == (16, 16, 16)
    assert tuple(layer.scale) == pytest.approx((0.1, 0.1, 0.1))
    assert float(layer.data[0, 0, 0]) == pytest.approx(float(vol[:2, :2, :2].mean()))
    binned_truth = t_layer.data
    nv.show_volume({"delta": vol * 2}, 50e-9, 50e-9, truth, preview=True)
    assert t_layer.data is binned_truth  # the unchanged truth is not sent again
    assert nv.viewer.layers["delta"] is layer
    assert float(layer.data[0, 0, 0]) == pytest.approx(2 * float(vol[:2, :2, :2].mean()))
    layer.visible = False  # the user's choice survives the switch to full resolution
    nv.show_volume({"delta": vol}, 50e-9, 50e-9, truth)  # changed layers: one per turn
    qtbot.waitUntil(lambda: not nv.busy, timeout=30000)
    assert nv.viewer.layers["delta"] is layer  # updated in place, not re-created
    assert layer.data.shape == (32, 32, 32) and np.array_equal(layer.data, vol)
    assert tuple(layer.scale) == pytest.approx((0.05, 0.05, 0.05)) and not layer.visible
    nv.close_viewer()


def test_first_volume_is_set_up_over_several_event_loop_turns(qtbot):
    """Each new layer costs the window tens of milliseconds (more with software OpenGL): the
    first volume's layers are made one per turn, visible ones first, and a volume that arrives
    meanwhile is shown once they all exist."""
    from slicewise.app.view3d.view import NapariView

    nv = NapariView()
    qtbot.addWidget(nv)
    nv.show()
    nv.preload(0)
    qtbot.waitUntil(lambda: not nv.busy, timeout=60000)
    rng = np.random.default_rng(1)
    vols = {"delta": rng.random((16, 16, 16), np.float32),
            "beta": rng.random((16, 16, 16), np.float32)}
    truth = {"delta": rng.random((16, 16, 16), np.float32),
             "beta": rng.random((16, 16, 16), np.float32)}
    nv.show_volume(vols, 50e-9, 50e-9, truth)
    assert nv.layer_names() == ["delta"] and nv.busy   # the rest comes in later turns
    newer = {k: v + 1 for k, v in vols.items()}
    nv.show_volume(newer, 50e-9, 50e-9, truth, title="newer")  # arrives during the set-up
    assert len(nv.layer_names()) < 4
    qtbot.waitUntil(lambda: not nv.busy, timeout=30000)
    # drawn ones first; reconstruction and truth side by side
    assert nv.layer_names() == ["delta", "truth delta", "beta", "truth beta"]
    assert nv.viewer.grid.enabled and nv.viewer.layers["truth delta"].visible
    assert not nv.viewer.layers["beta"].visible
    qtbot.waitUntil(lambda: "newer" in nv.title.text(), timeout=5000)
    assert np.array_equal(nv.viewer.layers["delta"].data, newer["delta"])
    assert nv.popout.isEnabled()
    nv.close_viewer()


def test_canvas_composites_alone_not_the_whole_window(qtbot, window):
    """The OpenGL canvas sits in a native child window, so the main window keeps plain (raster)
    drawing: with it switched to OpenGL composition, every progress-bar step would redraw and
    swap the whole window (tens of milliseconds each with software OpenGL)."""
    from PyQt6.QtCore import Qt
    from PyQt6.QtGui import QSurface

    w = window
    nv = w.napari_view
    w.tabs.setCurrentWidget(nv)
    nv.preload(0)
    qtbot.waitUntil(lambda: nv.viewer is not None, timeout=60000)
    gl = nv.qt_viewer.canvas.native
    qtbot.waitUntil(gl.isVisible, timeout=5000)
    assert gl.testAttribute(Qt.WidgetAttribute.WA_NativeWindow)
    assert gl.windowHandle() is not None and gl.windowHandle() is not w.windowHandle()
    assert w.windowHandle().surfaceType() == QSurface.SurfaceType.RasterSurface


@pytest.mark.parametrize("live_first", [False, True])
def test_finished_volume_and_truth_fit_their_panels(qtbot, live_first):
    """The reconstruction beside its truth (the grid's two panels), seen from the view's turned
    camera, fits its panel and fills most of it: not fitted to the first layer alone (one
    panel as wide as the canvas), nor to the box's face (a turned box overflows it), whether
    the volume comes at once (an opened result) or after binned live previews."""
    from slicewise.app.view3d.layers import rotated_fit
    from slicewise.app.view3d.view import NapariView

    nv = NapariView()
    qtbot.addWidget(nv)
    nv.resize(1200, 800)
    nv.show()
    vol = np.random.default_rng(3).random((32, 32, 32)).astype(np.float32)
    truth = {"delta": vol}
    for _ in range(2 if live_first else 0):
        nv.show_volume({"delta": vol}, 50e-9, 50e-9, truth, (50e-9, 50e-9), preview=True)
        qtbot.waitUntil(lambda: not nv.busy, timeout=60000)
    nv.show_volume({"delta": vol}, 50e-9, 50e-9, truth, (50e-9, 50e-9))  # finished: full size
    qtbot.waitUntil(lambda: not nv.busy, timeout=60000)
    canvas = nv.qt_viewer.canvas.native
    qtbot.waitUntil(lambda: canvas.width() >= nv.canvas_box.width() - 2, timeout=5000)
    v = nv.viewer
    assert v.grid.enabled
    side = 32 * 0.05                                    # micrometres, a cube
    fit = rotated_fit((side,) * 3, v.camera.view_direction, v.camera.up_direction)
    assert fit < 0.9                                    # the turned cube is wider than its face
    # screen size of the turned cube / its panel's (two panels side by side)
    wide = side / fit * v.camera.zoom / (canvas.width() / 2)
    high = side / fit * v.camera.zoom / canvas.height()
    assert max(wide, high) <= 1.0 and max(wide, high) > 0.6, (wide, high)
    nv.close_viewer()


def test_rotated_fit_of_a_turned_box():
    from slicewise.app.view3d.layers import rotated_fit

    assert rotated_fit((1, 1, 1), (-1, 0, 0), (0, -1, 0)) == pytest.approx(1.0)   # face-on
    s = np.sqrt(0.5)  # turned 45 degrees about y: the face's diagonal is the width
    assert rotated_fit((1, 1, 1), (-s, 0, s), (0, -1, 0)) == pytest.approx(s)
    assert rotated_fit((4, 1, 1), (-s, 0, s), (0, -1, 0)) == pytest.approx(1 / (5 * s))


def test_napari_loading_cut_short_by_closing_is_no_warning(qtbot, monkeypatch, caplog):
    """Closing the window while napari still imports on its thread (a signal at start-up) may
    shut the interpreter down under that thread: what fails then is not napari's fault and
    prints no traceback; the same failure with the window open is a warning."""
    import threading

    from slicewise.app.view3d import loading
    from slicewise.app.view3d.view import NapariView

    def fail():
        raise RuntimeError("can't register atexit after shutdown")

    monkeypatch.setattr(loading.shader_cache, "install", fail)
    nv = NapariView()
    qtbot.addWidget(nv)
    with caplog.at_level("DEBUG", logger="slicewise.app.napari"):
        nv._warm_up(threading.Event())
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        assert caplog.records[0].exc_info is not None
        caplog.clear()
        nv.close_viewer()
        done = threading.Event()
        nv._warm_up(done)
    assert done.is_set() and not nv._warm
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
    assert caplog.records[0].exc_info is None
