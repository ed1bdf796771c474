"""The main window's actions, menus and run toolbar (what the user can trigger, and its keys)."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMessageBox, QToolBar

from slicewise.engine import __version__

QUICK_START = (
    "<h3>Quick start</h3><ol>"
    "<li><b>Try the demo</b>: File \u203a Cone demo loads a simulated hollow glass cone "
    "(holotomography) with tuned parameters; press <b>Start</b> (F5).</li>"
    "<li><b>Your data</b>: File \u203a Open (Ctrl+O) a data file (.h5), a configuration (.toml) "
    "or a result file; or drop it on the window. The data set's geometry fills the form.</li>"
    "<li><b>Parameters</b>: hover a field for its meaning, unit and range. Red fields say what "
    "is wrong; Start stays disabled until they are fixed.</li>"
    "<li><b>Run</b>: Start (F5), Pause/Resume (F6), Stop (Shift+F5), Reset (Ctrl+R). While "
    "paused, fields that are not greyed out (learning rates, weights, epochs) can be changed; "
    "they apply on Resume.</li>"
    "<li><b>Results</b>: the output folder (Run \u203a Open output folder, Ctrl+Shift+O) holds "
    "result.h5, checkpoint.h5, TIFF stacks and the configuration. Opening result.h5 later "
    "restores its settings, so it can be continued or run again.</li>"
    "<li><b>3D</b>: the 3D view tab (Ctrl+3) shows the volume in napari; \u201cPop out\u201d "
    "opens a full napari window.</li>"
    "<li><b>Measure, compare, export</b>: every image view has a line profile and a region "
    "with its statistics (its \u201cmeasure\u201d box); Analysis \u203a Compare puts a result "
    "beside another or the ground truth; the Export menu writes the view (PNG/SVG), the slice "
    "(TIFF) and the loss (CSV).</li></ol>"
    "<p>Scripts: <code>slicewise gui CONFIG.toml --start --quit-when-done</code>; headless: "
    "<code>slicewise reconstruct CONFIG.toml</code>.</p>")


def make_action(win, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    a = QAction(text, win)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
    if tip:
        a.setToolTip(tip)
        a.setStatusTip(tip)
    a.triggered.connect(lambda _=False: slot())
    return a


def build_actions(w) -> None:
    A = lambda *a, **k: make_action(w, *a, **k)  # noqa: E731
    w.act_open = A("&Open\u2026", w.open_dialog, QKeySequence.StandardKey.Open,
                   "open a data file (.h5), a configuration (.toml) or a result file")
    w.act_simulate = A("&New simulated data set\u2026", w.new_simulation, "Ctrl+N",
                       "simulate a cone, Siemens star or spheres data set")
    w.act_load_cfg = A("&Load configuration\u2026", w.load_config_dialog, "Ctrl+L",
                       "read parameters from a TOML file")
    w.act_save_cfg = A("&Save configuration\u2026", w.save_config_dialog,
                       QKeySequence.StandardKey.Save, "write the parameters as TOML")
    w.act_napari = A("Open result in &napari\u2026", w.open_result_in_napari, "Ctrl+Shift+3",
                     "show a saved result or checkpoint as 3D volumes")
    w.act_demo = A("Cone &demo", w.load_demo, "Ctrl+D",
                   "the built-in hollow glass cone data set and configuration")
    w.act_quit = A("&Quit", w.close, QKeySequence.StandardKey.Quit)
    w.act_start = A("Start", w.start_run, "F5", "start a reconstruction")
    w.act_pause = A("Pause", w.toggle_pause, "F6",
                    "pause after the current minibatch; fields marked safe can be changed "
                    "(F6 again resumes)")
    w.act_stop = A("Stop", w.stop_run, "Shift+F5",
                   "stop after the current minibatch and write the result")
    w.act_reset = A("Reset", w.reset_run, "Ctrl+R",
                    "clear the live views and the 3D view; the next Start begins from the "
                    "initial guess")
    w.act_continue = A("Continue this result", w.continue_result, "Ctrl+F5",
                       "continue the opened (or last) result for the epochs the form adds")
    w.act_resume_ckpt = A("Resume from checkpoint\u2026", w.resume_from_checkpoint, None,
                          "continue a run from a checkpoint file")
    w.act_out_dir = A("Open output folder", w.open_output_folder, "Ctrl+Shift+O",
                      "show the run's output folder (results, checkpoints, log) in the file "
                      "manager")
    w.act_show_3d = A("Show 3D view", w.show_3d, "Ctrl+3",
                      "show the current volume in the napari tab")
    w.act_start_page = A("Start page", w.show_start_page, "Ctrl+Shift+H",
                         "open your data, the demo, recent files and example configurations")
    w.act_walkthrough = A("Your own data, step by step", w.show_walkthrough, None,
                          "CXI and DXchange files, masks, cone beam (docs/real-data.md)")


def build_menus_and_toolbar(w) -> None:
    mb = w.menuBar()
    m = mb.addMenu("&File")
    m.addAction(w.act_open)
    w.recent_menu = m.addMenu("Open &recent")
    w.recent_menu.aboutToShow.connect(w.fill_recent_menu)
    for a in (w.act_simulate, w.act_demo, None, w.act_load_cfg, w.act_save_cfg, None,
              w.act_napari, w.act_out_dir, None, w.act_quit):
        m.addSeparator() if a is None else m.addAction(a)
    r = mb.addMenu("&Run")
    for a in (w.act_start, w.act_pause, w.act_stop, w.act_reset, None, w.act_continue,
              w.act_resume_ckpt, w.act_out_dir):
        r.addSeparator() if a is None else r.addAction(a)
    v = mb.addMenu("&View")
    for d in (w.data_dock, w.params_dock, w.log_dock):
        v.addAction(d.toggleViewAction())
    v.addAction(w.act_show_3d)
    v.addAction(w.act_start_page)
    h = mb.addMenu("&Help")
    h.addAction(make_action(w, "&Quick start", lambda: quick_start(w), "F1"))
    h.addAction(w.act_walkthrough)
    h.addAction(make_action(w, "About Slicewise", lambda: about(w)))

    tb = QToolBar("Run control")
    tb.setObjectName("run_toolbar")
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    w.addToolBar(tb)
    tb.addAction(w.act_open)
    tb.addAction(w.act_simulate)
    tb.addSeparator()
    for a in (w.act_start, w.act_pause, w.act_stop, w.act_reset):
        tb.addAction(a)
    tb.addSeparator()
    for widget in (w.epoch_label, w.progress, w.eta_label):
        tb.addWidget(widget)
    w.start_reason_action = tb.addWidget(w.start_reason)  # hidden on the start page
    w.run_toolbar = tb


def quick_start(w) -> None:
    box = QMessageBox(w)
    box.setWindowTitle("Slicewise quick start")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(QUICK_START)
    demo = box.addButton("Load the cone demo", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Close)
    box.exec()
    if box.clickedButton() is demo and w.act_demo.isEnabled():
        w.load_demo()


def about(w) -> None:
    QMessageBox.about(w, "About Slicewise",
                      f"<b>Slicewise {__version__}</b><br>Multislice X-ray reconstruction "
                      "(ptychography, holography, tomography) by automatic differentiation."
                      f"<br><br>Log file: {w.log_panel.log_file or 'none'}")
