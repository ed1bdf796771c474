"""The main window's 3D tab: which volume the napari view shows, and when it is refreshed.

A mixin of :class:`..main_window.MainWindow`. Volumes come from the last snapshot of a run or
from an opened result; a free complex object is turned into phase/amplitude volumes off the
window's thread. Failures of the 3D view never become dialogs: they go to the log and the view
shows a message (see :class:`.view.NapariView`).
"""

from __future__ import annotations

import logging
import time

from PyQt6.QtCore import QTimer

from .. import dialogs
from ..file_jobs import VolumeSet, object_volumes

log = logging.getLogger("slicewise.app")


class View3DMixin:
    def _init_3d(self) -> None:
        self._volumes = None           # what the 3D view shows (current run or a result)
        self._napari_shown_at = 0.0
        # a snapshot that came before the next live update was due is shown when it is due
        self._live_3d_timer = QTimer(self)
        self._live_3d_timer.setSingleShot(True)
        self._live_3d_timer.timeout.connect(self._live_3d_tick)

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.napari_view:
            self.napari_view.prepare()
            self.show_3d(preview=self.run_state == "running")

    def _snapshot_volumes(self, snap, info) -> VolumeSet:
        truth = info.truth if info is not None else {}
        voxel = info.truth_voxel_m if info is not None else None
        # snapshots count completed epochs (as the slice view says it)
        n = snap.epoch
        when = "during epoch 1" if n == 0 else f"after {n} epoch{'s' if n != 1 else ''}"
        return VolumeSet(object_volumes(snap.delta, snap.beta, snap.object), snap.pixel_size_m,
                         snap.slice_thickness_m, truth, voxel, f"current estimate, {when}")

    def show_3d(self, preview: bool = False) -> None:
        """Show the current estimate (or the last opened result) in the napari tab;
        ``preview``: a live update of a running reconstruction (binned, see NapariView)."""
        self.show_workspace()
        if self.tabs.currentWidget() is not self.napari_view:
            self.tabs.setCurrentWidget(self.napari_view)  # re-enters via _on_tab_changed
            return
        if self._volumes is not None:
            self._show_volumes(self._volumes, preview)
            return
        snap = self.session.last_snapshot
        if snap is None:
            self.napari_view.set_message("No volume yet: start a reconstruction or open a "
                                         "result file.")
            return
        info = self.session.run_info
        if snap.delta is not None:
            self._show_volumes(self._snapshot_volumes(snap, info), preview)
            return
        # a complex object: phase and amplitude are computed off the window's thread
        self.tasks.submit("preparing the 3D view", lambda: self._snapshot_volumes(snap, info),
                          lambda vs: self._show_volumes(vs, preview),
                          lambda exc, tb: log.warning("3D view: %s", exc))

    def _show_volumes(self, vs: VolumeSet, preview: bool = False) -> None:
        self._volumes = vs
        self._napari_shown_at = time.monotonic()
        self._3d_preview = preview
        # the view says how a preview is binned, and measures its own cost
        self.napari_view.show_volume(vs.volumes, vs.pixel_size_m, vs.slice_thickness_m,
                                     vs.truth, vs.truth_voxel_m, vs.title, preview=preview)

    def full_3d_when_paused(self) -> None:
        """A paused or ended run: the 3D tab, if it shows a binned preview, gets full
        resolution (the user now looks closely, and nothing competes for the CPU) -- in a turn
        of the event loop of its own, not after the run's other messages."""
        QTimer.singleShot(0, self._full_3d_now)

    def _full_3d_now(self) -> None:
        if getattr(self, "_3d_preview", False) and \
                self.tabs.currentWidget() is self.napari_view:
            self.show_3d()

    def _final_3d(self) -> None:
        """The run has ended: its last estimate, at full resolution, if the 3D tab is open."""
        if self.last_snapshot is not None and self.tabs.currentWidget() is self.napari_view:
            self.show_3d()

    def live_3d(self) -> None:
        """A run's new snapshot: the visible 3D tab shows it now if a live update is due
        (:meth:`live_interval_s` of the view: paced by its cost, at most a few seconds apart),
        else when it is due, by a timer -- not only when a later snapshot happens to come."""
        if self.tabs.currentWidget() is not self.napari_view:
            return
        wait = self._napari_shown_at + self.napari_view.live_interval_s() - time.monotonic()
        if wait <= 0:
            self._live_3d_timer.stop()
            self.show_3d(preview=self.run_state == "running")
        elif not self._live_3d_timer.isActive():
            self._live_3d_timer.start(int(1000 * wait) + 1)

    def _live_3d_tick(self) -> None:
        # _volumes is None: the newest snapshot has not gone to the 3D view yet
        if self.controller.is_active() and self._volumes is None and \
                self.session.last_snapshot is not None:
            self.live_3d()

    def open_result_in_napari(self) -> None:
        path = dialogs.open_file(self, "Open result in napari", dialogs.RESULT_FILTER)
        if path:
            self.open_path(path, then_3d=True)
