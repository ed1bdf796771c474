"""What scientists reach for (issue 23), driven through the window: line profiles and regions
with statistics in physical units, comparing two results (and a result with its ground truth),
exporting views, slices and the loss, and the split-half FRC curve."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from slicewise.engine.quality.frc import fourier_ring_correlation, write_frc

from .conftest import fast_run, open_data, wait_idle


def _run(qtbot, w, data, out, epochs=2):
    open_data(qtbot, w, data)
    fast_run(w, out, epochs=epochs)
    w.start_run()
    wait_idle(qtbot, w)


def _ramp_volume(w):
    """A volume whose value is its x index (times 1e-6), 24^3 voxels of 50 nm, on screen."""
    vol = np.broadcast_to(np.arange(24, dtype=np.float32) * 1e-6, (24, 24, 24)).copy()
    w.show_workspace()
    w.slice_view.set_volume(vol, None, None, pixel_size_m=50e-9, slice_thickness_m=50e-9,
                            energy_ev=10000.0, epoch=3)
    return vol


def test_scale_bar_only_with_an_image(qtbot, window):
    """An empty slice view showed a bare scale bar labelled "1"; it appears with an image, with
    a length in physical units, and goes when the view is cleared."""
    w = window
    w.show_workspace()
    sv = w.slice_view
    sv.clear()
    assert not sv.scale_bar.isVisible()
    _ramp_volume(w)
    assert sv.scale_bar.isVisible() and sv.scale_bar.text.toPlainText() == "0.2 \u00b5m"
    sv.clear()
    assert not sv.scale_bar.isVisible()


def test_line_profile_on_the_slice_in_physical_units(qtbot, window):
    w = window
    _ramp_volume(w)
    sv = w.slice_view
    assert sv._unit == "\u00b5m"                 # 24 x 50 nm = 1.2 um
    sv.measure.setCurrentIndex(sv.measure.findData("line"))
    assert sv.tool.panel.isVisible()
    sv.tool.set_line((0.025, 0.6), (1.175, 0.6))  # the first to the last pixel centre
    d, v = sv.tool.profiles["slice"]
    assert d[-1] == pytest.approx(1.15)
    assert v[0] == pytest.approx(0.0, abs=1e-12) and v[-1] == pytest.approx(23e-6)
    assert np.allclose(v, d / 0.05 * 1e-6, atol=1e-9)   # linear along the ramp
    assert "line 1.15 \u00b5m" in sv.tool.panel.numbers.text()
    assert sv.tool.panel.plot.getAxis("bottom").labelText == "distance along the line (\u00b5m)"
    sv.slider.setValue(3)                          # another slice: measured again
    assert sv.tool.profiles["slice"][1][-1] == pytest.approx(23e-6)


def test_region_statistics_on_the_slice(qtbot, window):
    w = window
    _ramp_volume(w)
    sv = w.slice_view
    sv.measure.setCurrentIndex(sv.measure.findData("region"))
    sv.tool.set_region((0.0, 0.0), (0.5, 0.5))     # 10 x 10 pixels of 50 nm
    s = sv.tool.stats["slice"]
    x = np.arange(10) * 1e-6
    assert s.n == 100 and s.mean == pytest.approx(x.mean()) and s.std == pytest.approx(x.std())
    assert (s.min, s.max) == pytest.approx((0.0, 9e-6))
    assert s.area == pytest.approx(0.25)
    text = sv.tool.panel.numbers.text()
    assert "region 0.5 \u00d7 0.5 \u00b5m = 0.25 \u00b5m\u00b2" in text and "mean 4.5e-06" in text
    sv.measure.setCurrentIndex(sv.measure.findData("off"))
    assert not sv.tool.panel.isVisible() and sv.tool.roi is None


def test_region_on_measured_and_modelled_frames(qtbot, window, holo_file, tmp_path):
    w = window
    _run(qtbot, w, holo_file, tmp_path / "out", epochs=1)
    fv = w.frames_view
    fv.measure.setCurrentIndex(fv.measure.findData("region"))
    fv.tool.set_region((4.0, 4.0), (8.0, 8.0))      # detector pixels
    meas, model = fv.tool.stats["measured"], fv.tool.stats["modelled"]
    frame = np.asarray(fv.meas_img.image)
    assert meas.n == 64 and meas.mean == pytest.approx(float(frame[4:12, 4:12].mean()), rel=1e-6)
    assert model.n == 64
    unit, per_px = fv._units()                       # holograms: the sample plane's lengths
    assert unit == "\u00b5m" and per_px == pytest.approx(0.05)
    assert meas.width == pytest.approx(0.4) and meas.area == pytest.approx(0.16)
    assert "measured: mean" in fv.tool.panel.numbers.text()
    assert "modelled: mean" in fv.tool.panel.numbers.text()


def test_compare_with_truth_and_with_another_result(qtbot, window, holo_file, tmp_path,
                                                    dialogs, monkeypatch):
    from slicewise.app import dialogs as dlg_mod

    w = window
    _run(qtbot, w, holo_file, tmp_path / "first", epochs=1)
    first = tmp_path / "first" / "result.h5"
    fast_run(w, tmp_path / "second", epochs=3)
    w.start_run()
    wait_idle(qtbot, w)
    w.slice_view.slider.setValue(9)
    w.act_compare_truth.trigger()
    cv = w.compare_view
    assert w.tabs.currentWidget() is cv
    a, b, d = cv.images()
    assert cv.slider.value() == 9                     # the slice the slice view showed
    assert np.allclose(a, w.last_snapshot.delta[9])
    truth = np.asarray(w.dataset.truth["delta"])
    assert np.allclose(b, truth[9]) and np.allclose(d, a - b)
    assert cv.imgs[0].levels is not None and \
        np.allclose(cv.imgs[0].getLevels(), cv.imgs[1].getLevels())   # same levels
    lo, hi = cv.diff_bar.levels()
    assert lo == pytest.approx(-hi)                   # the difference: symmetric about zero
    assert "correlation" in cv.stats.text() and "ground truth" in cv.names.text()

    monkeypatch.setattr(dlg_mod, "open_file", lambda *a: str(first))
    w.act_compare.trigger()                           # A: the 3-epoch run, B: the 1-epoch one
    qtbot.waitUntil(lambda: "first" in cv.names.text() or "result.h5" in cv.names.text(),
                    timeout=15000)
    from slicewise.engine.io.results import read_result
    b_vol = read_result(first)["params"]["delta"]
    a, b, d = cv.images()
    assert np.allclose(b, b_vol[cv.slider.value()])
    assert not np.allclose(a, b)                      # two more epochs changed it
    assert not dialogs.errors, dialogs.errors


def test_export_view_slice_and_loss(qtbot, window, holo_file, tmp_path, monkeypatch):
    import tifffile

    from slicewise.app import dialogs as dlg_mod

    w = window
    _run(qtbot, w, holo_file, tmp_path / "out", epochs=2)
    w.tabs.setCurrentWidget(w.live)
    targets = iter([tmp_path / "view.png", tmp_path / "view.svg", tmp_path / "slice",
                    tmp_path / "loss.csv"])
    monkeypatch.setattr(dlg_mod, "save_file", lambda *a: str(next(targets)))
    w.act_export_png.trigger()
    png = (tmp_path / "view.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PyQt6.QtGui import QImage
    img = QImage(str(tmp_path / "view.png"))
    assert img.width() >= 1.9 * w.slice_view.glw.ci.boundingRect().width()
    w.act_export_svg.trigger()
    svg = (tmp_path / "view.svg").read_text()
    assert "<svg" in svg and "\u00b5m" in svg          # axes in micrometres, the scale bar
    w.act_export_tiff.trigger()                        # no suffix typed: .tif added
    with tifffile.TiffFile(tmp_path / "slice.tif") as tif:
        data = tif.asarray()
        xres = tif.pages[0].tags["XResolution"].value
    assert np.array_equal(data, w.slice_view.image())
    assert xres[0] / xres[1] == pytest.approx(1 / 0.05, rel=1e-4)   # pixels per um
    w.act_export_csv.trigger()
    rows = (tmp_path / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,total") and len(rows) == 3
    assert float(rows[2].split(",")[1]) == pytest.approx(w.loss_view.epoch_loss[1])


def _frc_table(out: Path, result: Path) -> Path:
    """OUT/frc.h5 as `slicewise reconstruct --halves` writes it, from two noisy views of one
    smooth image (the curve falls through both thresholds)."""
    rng = np.random.default_rng(3)
    truth = ndimage.gaussian_filter(rng.random((96, 96)), 3)
    a = truth + 0.002 * rng.standard_normal(truth.shape)
    b = truth + 0.002 * rng.standard_normal(truth.shape)
    for half in ("odd", "even"):
        (out / half).mkdir(parents=True)
        shutil.copy(result, out / half / "result.h5")
    res = fourier_ring_correlation(a, b, 10e-9)
    write_frc(out / "frc.h5", res, sources=(out / "odd" / "result.h5", out / "even" / "result.h5"))
    return out / "frc.h5"


def test_frc_curve_in_the_window(qtbot, window, holo_file, tmp_path, make_window, dialogs):
    from slicewise.engine.quality.frc import read_frc

    w = window
    _run(qtbot, w, holo_file, tmp_path / "run", epochs=1)
    table = _frc_table(tmp_path / "halves", tmp_path / "run" / "result.h5")
    res = read_frc(table)
    assert res.reached["half-bit"]
    w.open_path(str(table))
    qtbot.waitUntil(lambda: w.frc_view.has_data(), timeout=15000)
    fv = w.frc_view
    assert w.tabs.currentWidget() is fv
    x, y = fv.curve.getData()
    assert np.allclose(y, res.frc)
    assert np.allclose(x, res.frequency / 10e-9 * 1e-6)     # cycles per um
    assert len(fv.marks) == 2 and "half-bit" in fv.summary.text()
    assert f"{res.resolution_m['half-bit'] * 1e9:.4g} nm" in fv.summary.text()
    assert "odd/result.h5 and even/result.h5" in fv.summary.text()
    # a half of the split-half run brings its curve along
    w2 = make_window()
    w2.show()
    w2.open_path(str(tmp_path / "halves" / "odd" / "result.h5"))
    qtbot.waitUntil(lambda: w2.frc_view.has_data(), timeout=15000)
    assert not dialogs.errors, dialogs.errors
