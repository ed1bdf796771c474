"""The "Reconstruction" tab: object slices on the left; loss curve, measured vs modelled frame,
probe and scan positions on the right. Fed by snapshots of a run or by a result file."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QSplitter, QTabWidget, QWidget

from .file_jobs import history_from_result
from .views.frames_view import FramesView
from .views.loss_view import LossView
from .views.positions_view import PositionsView
from .views.probe_view import ProbeView
from .views.slice_view import SliceView


class LiveViews(QSplitter):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setObjectName("live_splitter")
        self.slice_view = SliceView()
        self.loss_view = LossView()
        self.probe_view = ProbeView()
        self.positions_view = PositionsView()
        self.frames_view = FramesView()
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.frames_view, "Measured vs model")
        self.side_tabs.addTab(self.probe_view, "Probe")
        self.side_tabs.addTab(self.positions_view, "Scan positions")
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.loss_view)
        right.addWidget(self.side_tabs)
        right.setSizes([300, 400])
        self.addWidget(self.slice_view)
        self.addWidget(right)
        self.setSizes([620, 520])
        self._enable_tabs()

    def clear(self) -> None:
        for v in (self.slice_view, self.loss_view, self.probe_view, self.positions_view,
                  self.frames_view):
            v.clear()
        self._enable_tabs()

    def show_snapshot(self, snap, energy_ev: float | None) -> None:
        """A run's Snapshot (host arrays); cheap: only the visible cut of the volume is drawn."""
        self.slice_view.set_volume(snap.delta, snap.beta, snap.object,
                                   pixel_size_m=snap.pixel_size_m,
                                   slice_thickness_m=snap.slice_thickness_m, energy_ev=energy_ev,
                                   epoch=snap.epoch)
        self.probe_view.set_probe(snap.probe, snap.pixel_size_m)
        window = snap.probe.shape[1:] if snap.probe is not None else (0, 0)
        self.positions_view.set_positions(snap.positions, snap.initial_positions,
                                          snap.pixel_size_m, window)
        if snap.measured is not None:
            self.frames_view.set_frames(snap.measured, snap.modelled, snap.epoch)
        lv = self.loss_view
        if snap.history and (not lv.epochs or lv.epochs[0] > snap.history[0]["epoch"]):
            # resumed from a checkpoint: the epochs before it come from the run's history
            lv.set_history(snap.history, snap.batch_losses)
        lv.set_validation(snap.history)  # held-out frames' loss, when the run has them
        self._enable_tabs()

    def show_data_frame(self, ds, scan: bool = True) -> None:
        """Before a run: the measured side of "Measured vs model" shows the data set's frame;
        ``scan``: the probe and scan positions the file holds too (not over a result's own)."""
        a, s = self.frames_view.frame()
        try:
            meas = ds.frames([min(a, ds.n_angles - 1)], [min(s, ds.n_spots - 1)])[0, 0]
        except Exception:  # noqa: BLE001 - a bad frame is reported by the frame check
            return
        mask = getattr(ds, "mask", None)
        if ds.modality == "farfield":  # centred for display
            meas = np.fft.fftshift(meas)
            mask = None if mask is None else np.fft.fftshift(mask)
        self.frames_view.set_mask(mask)
        self.frames_view.set_frames(meas, None)
        self.frames_view.info.setText("measured frame; the model appears when a run starts"
                                      + (f"; {self.frames_view.n_masked} masked px (x)"
                                         if self.frames_view.n_masked else ""))
        # what the file says about the scan and the probe, until a run replaces it
        if scan and ds.positions_px is not None:
            self.positions_view.set_positions(ds.positions_px, None, ds.pixel_size_m,
                                              ds.frame_shape)
        if scan and ds.probe is not None:
            self.probe_view.set_probe(ds.probe, ds.pixel_size_m)
        self._enable_tabs()

    def show_result(self, res: dict, pixel_size_m: float, slice_thickness_m: float) -> None:
        """A result/checkpoint file as returned by ``read_result`` (with ``best_epoch``, the
        epoch of the lowest validation loss, 0 = none)."""
        p, extra = res["params"], res.get("extra", {})
        self.slice_view.set_volume(p.get("delta"), p.get("beta"), p.get("object"),
                                   pixel_size_m=pixel_size_m, slice_thickness_m=slice_thickness_m,
                                   energy_ev=extra.get("energy_ev"), epoch=res.get("epoch"))
        self.probe_view.set_probe(p.get("probe"), pixel_size_m)
        window = np.shape(p["probe"])[1:] if p.get("probe") is not None else (0, 0)
        self.positions_view.set_positions(p.get("positions"),
                                          res.get("initial", {}).get("positions"),
                                          pixel_size_m, window)
        self.frames_view.clear()
        self.loss_view.set_history(history_from_result(res),
                                   list(np.ravel(extra.get("batch_losses", []))),
                                   best_epoch=int(res.get("best_epoch", 0)))
        self._enable_tabs()

    def _enable_tabs(self) -> None:
        # holography has no probe and no scan positions: grey those tabs out rather than show
        # empty axes
        for view in (self.probe_view, self.positions_view):
            self.side_tabs.setTabEnabled(self.side_tabs.indexOf(view), view.has_data())
