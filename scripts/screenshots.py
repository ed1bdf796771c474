"""Screenshots for the documentation: the main window after a short demo run, the napari 3D
view, the start page, a result opened, a line profile, a comparison with the ground truth and the
split-half FRC curve.

Run under a (virtual) display::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \
        .venv/bin/python scripts/screenshots.py [--epochs 12] [--out docs/images]

It uses the built-in cone demo (simulated into a temporary folder), a fresh settings file (so a
developer's saved layout does not leak into the docs), the real solver, and then saves
``main_window.png``, ``napari_3d.png``, ``start_page.png``, ``result_opened.png``,
``profile.png``, ``compare.png`` and ``frc.png``. The FRC table is made by ``slicewise
reconstruct --halves`` (the odd and the even angles reconstructed apart, their delta volumes
correlated shell by shell), from the demo's holograms with more noise.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _wait(app, predicate, timeout_s: float, what: str) -> None:
    t0 = time.monotonic()
    while not predicate():
        app.processEvents()
        if time.monotonic() - t0 > timeout_s:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        time.sleep(0.01)


def _settle(app, seconds: float = 0.5) -> None:
    """Let layouts, pyqtgraph and the OpenGL canvas finish drawing."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        app.processEvents()
        time.sleep(0.01)


def fresh_window(width: int, height: int):
    """``(app, work folder, main window)``: a Qt application with a fresh settings file in a new
    temporary folder (a developer's saved layout must not leak into the docs), error dialogs
    turned into exits, the window at the given size."""
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    work = Path(tempfile.mkdtemp(prefix="slicewise-shots-"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("Slicewise")
    app.setApplicationName("Slicewise")
    app.setStyle("Fusion")

    from slicewise.app import errors
    from slicewise.app.log_panel import setup_logging
    from slicewise.app.main_window import MainWindow

    def fail(parent, title, message, details=""):  # a screenshot run must not sit on a dialog
        raise SystemExit(f"screenshots: error dialog '{title}': {message}\n{details}")

    errors.show_error = fail
    win = MainWindow(log_file=setup_logging(work / "logs"))
    win.resize(width, height)
    return app, work, win


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for the PNGs")
    p.add_argument("--epochs", type=int, default=12, help="demo epochs to run before the shots")
    p.add_argument("--size", default="1500x920", help="window size WxH")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from slicewise.engine import demo

    app, work, win = fresh_window(width, height)
    win.show()
    _settle(app)

    # the demo, as File > Cone demo does it, but into the temporary folder
    data = demo.ensure_demo_data(work / "demo")
    cfg = demo.demo_config(data, work / "demo" / "results")
    cfg.run.epochs = args.epochs
    win.open_path(str(data))
    _wait(app, lambda: win.dataset is not None, 30, "the demo data set")
    win.params.set_config(cfg)
    win.start_run()
    _wait(app, lambda: win.run_state == "idle" and not win.controller.is_active(), 300,
          "the demo run")

    # what a scientist looks at first: a slice through the cone's axis, measured vs model
    win.slice_view.axis.setCurrentIndex(0)
    win.slice_view.slider.setValue(win.slice_view.slider.maximum() // 2)
    win.side_tabs.setCurrentWidget(win.frames_view)
    win.frames_view.angle.setValue(0)
    win.tabs.setCurrentWidget(win.live)
    win.loss_view.refresh()
    _settle(app, 1.0)
    main_png = out / "main_window.png"
    win.grab().save(str(main_png))
    print(f"wrote {main_png}")

    win.show_3d()  # napari loads in the background: wait for the layers, then for the drawing
    _wait(app, lambda: len(win.napari_view.layer_names()) > 0 and not win.napari_view.busy, 120,
          "the 3D view")
    _settle(app, 3.0)
    napari_png = out / "napari_3d.png"
    # from the screen, not the widget: the 3D tab shows another process's window (X11)
    top_left = win.mapToGlobal(win.rect().topLeft())
    app.primaryScreen().grabWindow(0, top_left.x(), top_left.y(), win.width(),
                                   win.height()).save(str(napari_png))
    print(f"wrote {napari_png}")

    result = Path(cfg.run.output_dir) / "result.h5"
    _analysis_shots(app, win, result, out, work, args.epochs)
    win.close()
    logging.shutdown()  # close the log file before its folder goes
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _grab(app, win, path: Path) -> None:
    _settle(app, 1.0)
    win.grab().save(str(path))
    print(f"wrote {path}")


def _analysis_shots(app, win, result: Path, out: Path, work: Path, epochs: int) -> None:
    """A result opened in a fresh window, a line profile, the comparison with the ground truth,
    the FRC curve of two half-data reconstructions, and the start page (with the files just
    used as its recent ones)."""
    from slicewise.app.main_window import MainWindow

    w = MainWindow()
    w.resize(win.width(), win.height())
    w.show()
    w.open_path(str(result))
    _wait(app, lambda: w.dataset is not None and w.slice_view.has_data() and
          not w.tasks.busy(), 60, "the result")
    w.side_tabs.setCurrentWidget(w.probe_view if w.probe_view.has_data() else w.frames_view)
    w.loss_view.refresh()
    _grab(app, w, out / "result_opened.png")

    sv = w.slice_view            # a line through the cone's wall, across its axis
    sv.axis.setCurrentIndex(1)   # along y: the cone's cross-section
    sv.slider.setValue(sv.slider.maximum() * 2 // 3)
    sv.measure.setCurrentIndex(sv.measure.findData("line"))
    x0, y0, width, height = sv.tool._image_rect()
    sv.tool.set_line((x0 + 0.1 * width, y0 + 0.5 * height), (x0 + 0.9 * width, y0 + 0.5 * height))
    _grab(app, w, out / "profile.png")
    sv.measure.setCurrentIndex(sv.measure.findData("off"))

    sv.axis.setCurrentIndex(0)
    w.act_compare_truth.trigger()
    _grab(app, w, out / "compare.png")

    table = _split_half_frc(work, result, epochs)
    w.open_path(str(table))
    _wait(app, lambda: w.frc_view.has_data(), 60, "the FRC table")
    _grab(app, w, out / "frc.png")
    w.close()
    win.show_start_page()
    _grab(app, win, out / "start_page.png")


def _split_half_frc(work: Path, result: Path, epochs: int, photons: float = 300.0) -> Path:
    """OUT/frc.h5 made by ``slicewise reconstruct CONFIG --halves --out OUT``: the odd and the
    even angles reconstructed apart with the demo's configuration, their delta volumes
    correlated shell by shell. The demo's holograms are nearly noise-free (the two halves then
    agree up to Nyquist); here they get the Poisson noise of ``photons`` per pixel, so that the
    curve shows where noise takes over."""
    import subprocess

    import numpy as np

    from slicewise.engine.io.datafile import Dataset
    from slicewise.engine.io.readers import open_dataset
    from slicewise.engine.io.results import read_result
    from slicewise.engine.io.slicewise_format import write_dataset
    from slicewise.engine.recon import config as cfgmod

    cfg = cfgmod.from_toml(read_result(result)["config_toml"])
    noisy = work / f"cone-{photons:g}-photons-per-pixel.h5"
    with open_dataset(cfg.data.path) as ds:
        rng = np.random.default_rng(0)
        frames = rng.poisson(np.maximum(ds.frames(None, None), 0) * photons) / photons
        write_dataset(noisy, Dataset.from_arrays(frames, ds.geometry))
    out = work / f"halves-{photons:g}-photons-per-pixel"
    cfg.data.path, cfg.run.output_dir, cfg.run.epochs = str(noisy), str(out), epochs
    cfg.run.save_tiff, cfg.run.overwrite = False, True
    cfgmod.to_toml(cfg, work / "halves.toml")
    proc = subprocess.run([sys.executable, "-m", "slicewise.cli", "reconstruct",
                           str(work / "halves.toml"), "--halves", "--out", str(out)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"screenshots: --halves failed:\n{proc.stderr[-3000:]}")
    return out / "frc.h5"


if __name__ == "__main__":
    sys.exit(main())
