"""The main window's start page and the switch to the workspace (a mixin of
:class:`.main_window.MainWindow`).

The central area is a stack: the start page (:mod:`.start_page`) until something is opened,
loaded, simulated or run, then the workspace (the live views, measured data and 3D tabs). View ›
Start page goes back to it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QStackedWidget

from slicewise.engine.recon import config as cfgmod

from . import settings
from .help_docs import MarkdownDialog, find_doc
from .start_page import StartPage

log = logging.getLogger("slicewise.app")

WALKTHROUGH = "real-data.md"


class StartMixin:
    def _build_start(self) -> QStackedWidget:
        """The stack of the start page and ``self.tabs`` (the workspace)."""
        self.start_page = StartPage()
        sp = self.start_page
        sp.openRequested.connect(self.open_dialog)
        sp.demoRequested.connect(lambda: self.load_demo(autostart=True))
        sp.simulateRequested.connect(self.new_simulation)
        sp.walkthroughRequested.connect(self.show_walkthrough)
        sp.restoreRequested.connect(self.restore_last_session)
        sp.recentChosen.connect(self.open_path)
        sp.exampleChosen.connect(self.load_example)
        self._docks_shown = None   # docks the start page hid (None: it hid none), shown after
        self.central = QStackedWidget()
        self.central.addWidget(sp)
        self.central.addWidget(self.tabs)
        return self.central

    def on_start_page(self) -> bool:
        return self.central.currentWidget() is self.start_page

    def show_start_page(self) -> None:
        """The start page fills the window: the docks (an empty form, no data set, the log)
        are hidden until the workspace shows again."""
        self.start_page.refresh(self._last_session_data())
        if self._docks_shown is None:
            self._docks_shown = [d for d in self._docks() if not d.isHidden()]
            for d in self._docks_shown:
                d.hide()
        self.central.setCurrentWidget(self.start_page)
        self.start_reason_action.setVisible(False)   # "cannot start: open a data file": no news

    def show_workspace(self) -> None:
        if self.on_start_page():
            self.central.setCurrentWidget(self.tabs)
            self.start_reason_action.setVisible(True)
            self.restore_docks()

    def restore_docks(self) -> None:
        """The docks the start page hid (also before the window's layout is saved)."""
        for d in self._docks_shown or ():
            d.show()
        if self._docks_shown:   # shown again, they would keep their minimum width
            QTimer.singleShot(0, lambda: self.dock_widths.restore(shown_again=True))
        self._docks_shown = None

    def _docks(self) -> list:
        return [self.data_dock, self.params_dock, self.log_dock]

    def _leave_start_page_if_busy(self) -> None:
        """Something is open, loaded or running: the workspace shows it."""
        s = self.session
        if s.dataset is not None or s.result_path or s.config_path or s.active:
            self.show_workspace()

    @staticmethod
    def _last_session_data() -> str | None:
        """The data file of the last session's parameters, when it still exists."""
        text = settings.settings().value("session/config_toml", "")
        try:
            path = cfgmod.from_toml(str(text)).data.path if text else ""
        except Exception:  # noqa: BLE001 - an older version's settings
            return None
        return path if path and Path(path).is_file() else None

    def load_example(self, kind: str) -> None:
        """An example configuration in the form; the data set shown (if any) stays its data."""
        cfg = cfgmod.preset(kind)
        cfg.data.path = self.params.value("data.path") if self.session.dataset else ""
        self.session.set_config_path(None)
        self.params.set_config(cfg)
        self.show_workspace()
        self.statusBar().showMessage(f"example configuration '{kind}' loaded: open your data "
                                     "(File \u203a Open), then Start", 20000)
        log.info("example configuration %s loaded", kind)

    def show_walkthrough(self) -> None:
        path = find_doc(WALKTHROUGH)
        if path is None:
            self.report("Your own data", f"The walkthrough docs/{WALKTHROUGH} is not part of "
                        "this installation; it is in the project's source (docs/).")
            return
        self.walkthrough = MarkdownDialog(self, "Your own data, step by step", path)
        self.walkthrough.show()
