"""Screenshots for the documentation: the main window during/after a short demo run, and the
napari 3D view.

Run under a (virtual) display::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \
        .venv/bin/python scripts/screenshots.py [--epochs 12] [--out docs/images]

It uses the built-in cone demo (simulated into a temporary folder), a fresh settings file (so a
developer's saved layout does not leak into the docs), the real solver, and then saves
``main_window.png`` and ``napari_3d.png``.
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for the PNGs")
    p.add_argument("--epochs", type=int, default=12, help="demo epochs to run before the shots")
    p.add_argument("--size", default="1500x920", help="window size WxH")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))

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
    from slicewise.engine import demo

    def fail(parent, title, message, details=""):  # a screenshot run must not sit on a dialog
        raise SystemExit(f"screenshots: error dialog '{title}': {message}\n{details}")

    errors.show_error = fail
    win = MainWindow(log_file=setup_logging(work / "logs"))
    win.resize(width, height)
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

    win.close()
    logging.shutdown()  # close the log file before its folder goes
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
