"""Fixtures for the GUI tests: tiny simulated data sets, an isolated settings file, a window whose
dialogs are intercepted, and helpers that drive a real reconstruction for a few epochs.

Without a display the tests run on Qt's offscreen platform (napari tests are then skipped, they
need OpenGL); under ``xvfb-run`` with ``QT_QPA_PLATFORM=xcb`` everything runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt6.QtCore import QSettings  # noqa: E402

from slicewise.engine.simulate import SimulationConfig, simulate  # noqa: E402

# The window's own tests look inside the 3D view (napari's layers, camera, pop-outs), so they
# keep it in the window's process; test_napari_process.py drives the default, where the 3D view
# runs in a process of its own (app/view3d/remote.py).
os.environ.setdefault("SLICEWISE_3D_VIEW", "window")

HAS_GL_DISPLAY = os.environ.get("QT_QPA_PLATFORM", "xcb") not in ("offscreen", "minimal")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.gui)
            if "napari" in item.keywords and not HAS_GL_DISPLAY:
                item.add_marker(pytest.mark.skip(reason="napari needs an OpenGL display "
                                                        "(run under xvfb-run, QT_QPA_PLATFORM=xcb)"))


# ---- data ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def holo_file(tmp_path_factory) -> Path:
    """Near-field holotomography of a small hollow cone: 4 angles x 2 distances, 24^3 voxels."""
    cfg = SimulationConfig(modality="holo", object_shape=(24, 24, 24), n_angles=4,
                           distances_m=(5e-5, 1e-4), pixel_size_m=50e-9, energy_ev=10000.0)
    return simulate(cfg, tmp_path_factory.mktemp("data") / "cone_holo.h5", "numpy")


@pytest.fixture(scope="session")
def ptycho_file(tmp_path_factory) -> Path:
    """Far-field ptychography of a Siemens star slab: 25 positions of a 16x16 probe."""
    from slicewise.engine.phantoms import PhantomSpec

    cfg = SimulationConfig(modality="ptycho", phantom=PhantomSpec(kind="siemens"),
                           object_shape=(2, 32, 32), probe_shape=(16, 16), probe_size_px=4.0,
                           scan_step_px=4.0, pixel_size_m=10e-9, energy_ev=5000.0,
                           material="gold", position_error_px=0.5)
    return simulate(cfg, tmp_path_factory.mktemp("data") / "star_ptycho.h5", "numpy")


# ---- isolation -----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """QSettings and app-data folders in a temporary directory, never the user's."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qs"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    yield


class DialogLog:
    """Records what would have been shown in error dialogs and answers confirmations."""

    def __init__(self):
        self.errors: list[tuple[str, str, str]] = []
        self.confirm_answer = True
        self.confirms: list[str] = []

    def show_error(self, parent, title, message, details=""):
        self.errors.append((title, message, details))

    def confirm(self, parent, title, text):
        self.confirms.append(text)
        return self.confirm_answer


@pytest.fixture
def dialogs(monkeypatch) -> DialogLog:
    from slicewise.app import dialogs as dlg_mod
    from slicewise.app import errors

    rec = DialogLog()
    monkeypatch.setattr(errors, "show_error", rec.show_error)
    monkeypatch.setattr(dlg_mod, "confirm", rec.confirm)
    return rec


@pytest.fixture
def make_window(qtbot):
    """``make_window()`` -> a new MainWindow (not shown). At the end of the test every window
    is closed and deleted by Qt's event loop, in the window's thread. Left to the wrappers'
    reference counts, a closed window was deleted at the test's return, and a timer of a freed
    object then fired in pytest-qt's teardown (a rare segmentation fault after
    test_window_remembers_layout)."""
    from PyQt6 import sip

    from slicewise.app.main_window import MainWindow

    made = []

    def make():
        made.append(MainWindow())
        return made[-1]

    yield make
    for w in made:
        if sip.isdeleted(w):
            continue
        if w.controller.is_active():  # never leave a solver behind
            w.controller.stop()
            w.controller.wait(30)
        w.close()
        w.deleteLater()
    qtbot.waitUntil(lambda: all(sip.isdeleted(w) for w in made), timeout=10000)


@pytest.fixture
def window(qtbot, dialogs, make_window):
    w = make_window()
    w.show()
    qtbot.waitExposed(w)
    return w


# ---- helpers -------------------------------------------------------------------------------------
def open_data(qtbot, w, path, timeout=10000) -> None:
    w.open_path(str(path))
    qtbot.waitUntil(lambda: w.dataset is not None and w.dataset.source_path == str(path),
                    timeout=timeout)


def fast_run(w, out_dir, epochs: int, **extra) -> None:
    """Settings for a quick CPU run with live previews as often as allowed."""
    # every frame fitted (no held-out data, no weight search) unless a test asks for it
    values = {"run.epochs": epochs, "run.output_dir": str(out_dir), "run.backend": "numpy",
              "run.snapshot_every_s": 0, "run.checkpoint_every": 0, "run.save_tiff": False,
              "run.validation_share": 0.0, **extra}
    for path, value in values.items():
        w.params.set_value(path, value)
    assert w.params.is_valid(), w.params.errors()


def wait_idle(qtbot, w, timeout=60000) -> None:
    qtbot.waitUntil(lambda: w.run_state == "idle" and not w.controller.is_active(),
                    timeout=timeout)


def run_until_divergence(qtbot, w, data, out_dir) -> None:
    """Open ``data`` and run it with absurd rates, so that the solver diverges and fails."""
    open_data(qtbot, w, data)
    fast_run(w, out_dir, epochs=5, **{"optimizer.lr_delta": 1e30, "optimizer.lr_beta": 1e30,
                                      "constraints.nonneg": False})
    w.start_run()
    wait_idle(qtbot, w)
