"""Loading napari for the 3D view without freezing the window (a mixin of
:class:`.view.NapariView`).

napari and vispy are imported on a background thread soon after the window opens (seconds of
imports and set-up the event loop never sees); the (empty) viewer is made when the tab is first
shown, and its canvas then draws a tiny volume once, so that the canvas's one-time costs are not
paid with the first volume of a run.
"""

from __future__ import annotations

import logging
import sys
import threading

import numpy as np
from PyQt6.QtCore import Qt, QTimer

from . import shader_cache
from .layers import LAYER_STYLE

log = logging.getLogger("slicewise.app.napari")


class NapariLoading:
    def _later(self, ms: int, fn) -> None:
        """Call ``fn`` after ``ms`` milliseconds, by a timer this view owns: stopped by
        :meth:`_stop_timers` when the window closes and deleted with the view, on the window's
        thread; nothing of a closed view fires later."""
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(fn)
        timer.timeout.connect(timer.deleteLater)
        timer.start(ms)

    def _stop_timers(self) -> None:
        for timer in self.findChildren(QTimer, options=Qt.FindChildOption.FindDirectChildrenOnly):
            timer.stop()
            timer.deleteLater()

    @staticmethod
    def napari_imported() -> bool:
        return "napari.qt" in sys.modules and "napari.components" in sys.modules

    def preload(self, delay_ms: int = 1500, when=None) -> None:
        """Load napari on a background thread (seconds of imports and set-up the event loop
        never sees). ``when()``: whether now is a good time (e.g. no run competing for the
        CPU); asked again every few seconds until it is."""
        if self.napari_imported() and self._warm or self._loading:
            return
        self._loading = True
        self._when = when
        self._later(delay_ms, self._start_preload)

    def _start_preload(self) -> None:
        if self._closed:
            return
        if self._when is not None and not self._when():
            self._later(3000, self._start_preload)
            return
        self._import_done = threading.Event()
        threading.Thread(target=self._warm_up, args=(self._import_done,), daemon=True,
                         name="napari-import").start()
        self._later(50, self._poll_loaded)

    def _poll_loaded(self) -> None:
        """The window's thread learns here that the imports are done. The import thread never
        touches a Qt object: the view may be closed and deleted while it runs (a signal emitted
        from there could meet a half-destroyed receiver); a timer bound to the view dies with
        it."""
        if not self._import_done.is_set():
            self._later(50, self._poll_loaded)
            return
        self._on_loaded()

    def _warm_up(self, done: threading.Event) -> None:
        """Imports, the unit registry and a throw-away 3D viewer model: what would otherwise
        take seconds of the window's thread when the tab is first shown. Runs on its own
        thread; sets ``done`` at the end (see :meth:`_poll_loaded`)."""
        try:
            import napari._qt.qt_viewer  # noqa: F401, PLC0415
            import napari._vispy  # noqa: F401, PLC0415
            import napari.qt  # noqa: F401, PLC0415
            import vispy.visuals.volume  # noqa: F401, PLC0415
            import napari._qt.qt_main_window  # noqa: F401, PLC0415 - for a pop-out window
            import napari.viewer  # noqa: F401, PLC0415

            shader_cache.install()
            from napari.components import ViewerModel  # noqa: PLC0415

            vm = ViewerModel()
            vm.dims.ndisplay = 3
            vm.add_image(np.zeros((2, 2, 2), np.float32), rendering="attenuated_mip",
                         units=("um", "um", "um"), axis_labels=("z", "y", "x"))
            self._warm = True
        except Exception as exc:  # noqa: BLE001 - no napari / no OpenGL: said when the tab opens
            if self._closed:
                # The window closed while napari was importing: the interpreter may be shutting
                # down under this thread, and what fails then says nothing about napari.
                log.debug("napari loading ended by the window closing (%s)", exc)
            else:
                log.warning("napari could not be loaded", exc_info=True)
        self._load_tried = True
        done.set()

    def prepare(self) -> None:
        """The tab is shown: make the (empty) viewer now, while it costs the least, not with
        the first volume of a run."""
        if self.viewer is None and self._warm and not self._loading and not self._closed:
            try:
                self.ensure_viewer()
                QTimer.singleShot(0, self._warm_canvas)
            except Exception:  # noqa: BLE001 - said when a volume is shown
                log.warning("3D view: the viewer could not be made", exc_info=True)

    def _warm_canvas(self) -> None:
        """Draw a tiny black volume once, while nothing is shown: the canvas's one-time costs
        (overlay shaders, axis-label glyphs) are then paid now, not with the first volume of a
        run."""
        v = self.viewer
        if v is None or len(v.layers) or self._stages:
            return
        style = LAYER_STYLE["delta"]
        self._warm_layer = v.add_image(np.zeros((4, 4, 4), np.float32), name="\u2026",
                                       colormap=style[0], rendering=style[2],
                                       contrast_limits=(0.0, 1.0), blending="additive")
        self._later(300, self._end_warm)

    def _end_warm(self) -> None:
        layer, self._warm_layer = getattr(self, "_warm_layer", None), None
        if layer is not None and self.viewer is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    def _on_loaded(self) -> None:
        self._loading = False
        if self._closed:
            return
        if self.isVisible() and self._pending is None:
            self.prepare()
        if self._pending is not None:
            args, self._pending = self._pending, None
            self.show_volume(*args)
