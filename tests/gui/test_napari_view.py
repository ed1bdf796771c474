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
    qtbot.waitUntil(lambda: len(nv.layer_names()) == 4, timeout=30000)  # napari loads first
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
    nv.pop_out()
    pop = nv._popouts[-1]
    assert set(layer.name for layer in pop.layers) == set(nv.layer_names())
    assert tuple(pop.layers["delta"].scale) == pytest.approx((px_um, px_um, px_um))


def test_truth_on_another_grid_is_centred(qtbot):
    from slicewise.app.napari_view import NapariView

    nv = NapariView()
    qtbot.addWidget(nv)
    nv.show()
    vol = np.zeros((32, 16, 16), np.float32)
    truth = {"delta": np.ones((8, 16, 16), np.float32)}
    nv.show_volume({"delta": vol}, 100e-9, 50e-9, truth, truth_voxel_m=(100e-9, 100e-9))
    layer = nv.viewer.layers["truth delta"]
    # reconstruction: 32 x 0.05 um = 1.6 um deep; truth 8 x 0.1 um = 0.8 um, centred: 0.4 um in
    assert tuple(layer.scale) == pytest.approx((0.1, 0.1, 0.1))
    assert tuple(layer.translate) == pytest.approx((0.4, 0.0, 0.0))
    nv.close_viewer()
