"""3D view of the reconstructed volume in an embedded napari viewer.

A napari ``ViewerModel`` drawn by its ``QtViewer`` sits in a tab of the main window, with napari's
own layer list and layer controls beside it. Volumes are ``(z, y, x)`` with voxel scale in
micrometres (slice thickness along z, pixel size along y and x), so the scale bar and the axes are
physical. Ground truth, when the data set has it, is a further layer; "grid" shows the layers side
by side. "Pop out" copies the layers into a full napari window (plugins, export, ...;
:mod:`.popout`).

napari is loaded in the background (:mod:`.loading`). A new volume's layers are made, and
changed layers get their new data, one per turn of the event loop (each costs tens of
milliseconds). The canvas sits in a native child window (:mod:`.canvas`) and always fills the
tab. Live previews of a run are binned (said in the title) and paced by their measured cost
(:func:`.layers.live_interval`). The view is sturdy: drawing errors of the OpenGL canvas are
logged, never shown as dialogs, and the canvas is rebuilt (layers, camera and contrast kept),
e.g. after a pop-out window that shared its OpenGL context was closed.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSplitter,
                             QVBoxLayout, QWidget)

from . import shader_cache
from .canvas import CanvasBox
from .layers import (ATTENUATION, CAMERA_ANGLES, FULL_STEP, ISO_FRACTION, LAYER_STYLE,
                     PREVIEW_STEP, LayerPlan, apply_view_state, bin_volume, camera_of, grid_of,
                     live_interval, plan_layers, preview_factor, preview_words, rotated_fit,
                     setup_order, view_state, voxel_scale_um)
from .loading import NapariLoading
from .popout import NapariPopout

__all__ = ["NapariView", "bin_volume", "preview_factor", "is_gl_error", "gl_error_seen"]

log = logging.getLogger("slicewise.app.napari")

STAGE_GAP_MS = 30   # between the steps of a new volume's set-up: the canvas draws in between


_VIEWS: list = []   # live NapariViews, told about OpenGL errors by errors.install_excepthook


def is_gl_error(exc: BaseException, tb_text: str = "") -> bool:
    """Whether ``exc`` comes from drawing the OpenGL canvas (vispy, PyOpenGL)."""
    name = type(exc).__module__ + "." + type(exc).__name__
    return "OpenGL" in name or "GLError" in name or "vispy" in tb_text or "OpenGL" in tb_text


def gl_error_seen() -> None:
    """A canvas failed to draw: every 3D view rebuilds its canvas at the next chance."""
    for view in list(_VIEWS):
        view.schedule_rebuild()


class NapariView(NapariLoading, NapariPopout, QWidget):
    """The 3D tab: napari's layer list and controls beside its canvas (see the module's
    docstring)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = None        # napari.components.ViewerModel
        self.qt_viewer = None     # napari.qt.QtViewer
        self.popouts: list = []     # the open pop-out napari windows
        self._watchers: list = []
        self._pending = None      # show_volume arguments waiting for napari to load
        self._loading = False
        self._warm = False
        self._load_tried = False
        self._when = None
        self._rebuild_due = False
        self.rebuilds = 0
        self.updates = 0          # volumes shown (tests, benchmarks)
        self._bin_cache: dict = {}
        self._stages: list = []   # the remaining steps of a new volume's set-up
        self._after_stages = None  # show_volume arguments that came during the set-up
        self._closed = False      # close_viewer was called: the window is closing
        _VIEWS.append(self)
        self.title = QLabel("No volume yet: start a reconstruction or open a result file.")
        self.title.setWordWrap(True)   # a long title must not widen the tab
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.grid = QCheckBox("grid (side by side)")
        self.grid.setToolTip("show every visible layer in its own panel, e.g. reconstruction "
                             "next to ground truth")
        self.grid.toggled.connect(self._set_grid)
        self.popout = QPushButton("Pop out to napari\u2026")
        self.popout.setToolTip("open these layers in a full napari window")
        self.popout.clicked.connect(self.pop_out)
        self.popout.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.grid)
        top.addWidget(self.popout)
        self.body = QSplitter(Qt.Orientation.Horizontal)
        self.canvas_box = CanvasBox()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.body, 1)

    # ---- pacing ------------------------------------------------------------------------------
    def update_cost(self, seconds: float) -> None:
        """How long the last update took, drawing included (a smoothed estimate)."""
        prev = getattr(self, "_cost_s", None)
        self._cost_s = seconds if prev is None else 0.5 * (prev + seconds)

    def live_interval_s(self) -> float:
        """Seconds between live updates during a run (see :func:`.layers.live_interval`)."""
        return live_interval(getattr(self, "_cost_s", None))

    @property
    def cost_s(self) -> float | None:
        """The smoothed cost of a volume update (None before the first one is drawn)."""
        return getattr(self, "_cost_s", None)

    @property
    def ready(self) -> bool:
        """napari is loaded: a volume is shown without waiting for imports."""
        return bool(self._warm)

    def set_message(self, text: str) -> None:
        self._title = text
        self.title.setText(text)

    def clear(self, keep_camera: bool = False) -> None:
        """No volume (Reset): layers removed, the pop-out button off; ``keep_camera``: the next
        volume is seen from the same camera (a new run of the same sample)."""
        self._pending = self._after_stages = None
        self._stages.clear()
        if self.viewer is not None:
            cam = camera_of(self.viewer)
            self._kept_camera = (tuple(cam.center), cam.zoom, tuple(cam.angles)) \
                if keep_camera and len(self.viewer.layers) else None
            self.viewer.layers.clear()
        self.popout.setEnabled(False)
        self.set_message("No volume yet: start a reconstruction or open a result file.")

    def schedule_rebuild(self) -> None:
        if self.viewer is None or self._rebuild_due:
            return
        self._rebuild_due = True
        if self.isVisible():
            QTimer.singleShot(0, self.rebuild)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().showEvent(event)
        if self._rebuild_due:
            QTimer.singleShot(0, self.rebuild)

    def rebuild(self) -> None:
        """A fresh canvas with the same layers, camera, grid and contrast."""
        if not self._rebuild_due or self.viewer is None:
            return
        self._rebuild_due = False
        state = self.view_state()
        self._drop_viewer()
        self.ensure_viewer()
        self.apply_view_state(self.viewer, state)
        self.rebuilds += 1
        log.info("3D view rebuilt (%d layer(s))", len(state["layers"]))

    def view_state(self) -> dict:
        return view_state(self.viewer)

    apply_view_state = staticmethod(apply_view_state)

    def _drop_viewer(self) -> None:
        if self.qt_viewer is not None:
            for w in (self.qt_viewer.controls, self.qt_viewer.layers, self.qt_viewer):
                w.setParent(None)
            side = self.body.widget(0)
            if side is not None:
                side.setParent(None)
                side.deleteLater()
            try:
                self.qt_viewer.close()
            except Exception:  # noqa: BLE001 - a broken canvas may fail to close cleanly
                log.debug("closing the old 3D canvas failed", exc_info=True)
            # deleted by the event loop, between events: left to Python's garbage collector
            # (napari's objects hold reference cycles) the OpenGL widget would go at any moment
            self.qt_viewer.deleteLater()
        self.qt_viewer = self.viewer = None

    # ---- viewer ------------------------------------------------------------------------------
    def ensure_viewer(self):
        """Create the napari viewer on first use; returns the ViewerModel."""
        if self.viewer is not None:
            return self.viewer
        from napari.components import ViewerModel  # noqa: PLC0415 - slow import, on demand
        from napari.qt import QtViewer  # noqa: PLC0415

        shader_cache.install()
        self.viewer = ViewerModel(title="Slicewise 3D")
        self.qt_viewer = QtViewer(self.viewer, show_welcome_screen=False)
        side = QSplitter(Qt.Orientation.Vertical)
        # napari's own layer list and controls, taken out of their dock widgets
        side.addWidget(self.qt_viewer.controls)
        side.addWidget(self.qt_viewer.layers)
        side.setMinimumWidth(220)
        self.body.insertWidget(0, side)
        if self.body.indexOf(self.canvas_box) < 0:
            self.body.addWidget(self.canvas_box)
        self.body.setStretchFactor(1, 1)
        self.body.setSizes([240, 900])
        self.canvas_box.set_viewer(self.qt_viewer)  # the canvas in a native window
        v = self.viewer
        v.dims.ndisplay = 3
        v.scale_bar.visible = True  # its unit comes from the layers' units (micrometres)
        v.scale_bar.box = True
        v.axes.visible = True
        v.axes.colored = True
        grid_of(v).enabled = self.grid.isChecked()
        return v

    def close_viewer(self) -> None:
        """The window closes: pop-outs closed, napari's own orderly close; nothing pending
        (stages, a waiting volume, a rebuild, the end of napari's loading) acts afterwards."""
        self._closed = True
        self._stop_timers()
        self._stages.clear()
        self._pending = self._after_stages = None
        self._rebuild_due = False
        for w in self.popouts:
            try:
                w.close()
            except Exception:  # noqa: BLE001 - the user may have closed it already
                pass
        self.popouts.clear()
        if self.qt_viewer is not None:  # the window closes: napari's own orderly close
            self.qt_viewer.close()
        self.qt_viewer = self.viewer = None
        if self in _VIEWS:
            _VIEWS.remove(self)

    # ---- data --------------------------------------------------------------------------------
    voxel_scale_um = staticmethod(voxel_scale_um)

    def show_volume(self, volumes: dict[str, np.ndarray], pixel_size_m: float,
                    slice_thickness_m: float, truth: dict | None = None,
                    truth_voxel_m: tuple[float, float] | None = None, title: str = "",
                    reset_camera: bool | None = None, preview: bool = False) -> None:
        """Show ``volumes`` (e.g. delta, beta (nz, ny, nx)) and ``truth`` arrays as layers.

        ``truth_voxel_m``: (slice thickness, pixel size) of the ground-truth grid, which may differ
        from the reconstruction's (e.g. cubic voxels in a tomographic reconstruction of a thinner
        phantom); it is centred on the reconstruction, as both are centred on the rotation axis.
        Layers that exist already get new data (camera and the user's contrast stay). While
        napari is still loading, the volume waits and is shown when it is ready. ``preview``
        (live updates of a running reconstruction): volumes binned 2x or 4x and drawn with a
        coarser ray step, so the window's thread is blocked for less of each update.
        """
        if self._closed:
            return
        if self._loading or not (self.napari_imported() or self._load_tried):
            self._pending = (volumes, pixel_size_m, slice_thickness_m, truth, truth_voxel_m,
                             title, reset_camera, preview)
            self.set_message("loading the 3D viewer (napari)…")
            self._when = None  # a volume is asked for: load now, even while a run computes
            self.preload(0)
            return
        try:
            self._show_volume(volumes, pixel_size_m, slice_thickness_m, truth, truth_voxel_m,
                              title, reset_camera, preview)
        except Exception as exc:  # noqa: BLE001 - e.g. no OpenGL: the rest keeps working
            log.warning("3D view: %s", exc, exc_info=True)
            self.set_message(f"The 3D view failed ({type(exc).__name__}: {exc}); it is rebuilt "
                             "at the next update.")
            self._rebuild_due = self.viewer is not None

    def _binned(self, a, f: int) -> np.ndarray:
        """``bin_volume`` with the result kept per array (the ground truth is binned once)."""
        key = (id(a), f)
        hit = self._bin_cache.get(key)
        if hit is not None and hit[0] is a:
            return hit[1]
        out = bin_volume(a, f)
        if len(self._bin_cache) > 8:
            self._bin_cache.clear()
        self._bin_cache[key] = (a, out)
        return out

    def _show_volume(self, volumes, pixel_size_m, slice_thickness_m, truth, truth_voxel_m,
                     title, reset_camera, preview=False) -> None:
        if self._stages:  # new layers are still being set up: the newest volume waits
            self._after_stages = (volumes, pixel_size_m, slice_thickness_m, truth,
                                  truth_voxel_m, title, reset_camera, preview)
            return
        self._after_stages = None  # this newer volume replaces one still waiting
        if self._rebuild_due:
            self.rebuild()
        self._end_warm()
        v = self.ensure_viewer()
        f, plans = plan_layers(volumes, pixel_size_m, slice_thickness_m, truth, truth_voxel_m,
                               preview, self._binned)
        step = PREVIEW_STEP if f > 1 else FULL_STEP
        shape = next((np.shape(a) for a in volumes.values() if np.ndim(a) == 3), ())
        self._title = ", ".join(x for x in (title or "3D view",
                                            preview_words(f, shape) if preview else "") if x)
        stages = []
        for name, plan in plans.items():
            if name not in v.layers:
                continue
            if v.layers[name].data is plan.data:  # e.g. the truth: only the ray step
                self._set_ray_step(v.layers[name], step)
            else:  # new data (tens of milliseconds with napari's events, and a drawing)
                stages.append(lambda n=name, p=plan: self._refresh_layer(v.layers[n], p, step))
        new = setup_order(n for n in plans if n not in v.layers)
        first = len(v.layers) == 0
        if not first and reset_camera:
            stages.append(lambda: self._fit_camera(CAMERA_ANGLES))
        # each new layer costs tens of milliseconds (napari's controls, vispy's visual) and its
        # first drawing as much again (shaders): one layer per turn of the event loop
        adds = [lambda p=plans[n]: self._add_layer(p, step) for n in new]
        if first and new:
            adds[0] = lambda p=plans[new[0]]: (self._add_layer(p, step),
                                               self._first_camera(reset_camera))
            if "truth delta" in new:  # made, then drawn beside the reconstruction
                k = new.index("truth delta")
                # grid first (one panel), then the truth's panel: two shorter turns
                adds[k + 1:k + 1] = [lambda: self.grid.setChecked(True), self._show_truth]
            # a camera fitted to the first layer alone cuts the grid's panels off (1.25x a
            # fresh fit's zoom): fitted again once every layer is in place
            adds.append(self._refit_camera)
        self._stages = [*stages, *adds, lambda: self._shown(select=first)]
        self._update_s = 0.0
        self._measuring = True
        self._run_stage()

    def _run_stage(self) -> None:
        if not self._stages:
            return
        self._stage_t0 = time.perf_counter()
        try:
            self._stages.pop(0)()
        except Exception as exc:  # noqa: BLE001 - as in show_volume: logged, rebuilt later
            self._stages.clear()
            log.warning("3D view: %s", exc, exc_info=True)
            self.set_message(f"The 3D view failed ({type(exc).__name__}: {exc}); it is rebuilt "
                             "at the next update.")
            self._rebuild_due = self.viewer is not None
            self.popout.setEnabled(self._rebuild_due and len(self.viewer.layers) > 0)
            return
        # a zero timer fires after the canvas has drawn what this stage changed
        QTimer.singleShot(0, self._stage_drawn)
        if self._stages:
            self._later(STAGE_GAP_MS, self._run_stage)
        elif self._after_stages is not None:
            # a timer the view owns (_later), not a lambda: it dies with the view
            self._later(STAGE_GAP_MS, self._show_waiting)

    def _stage_drawn(self) -> None:
        """Adds a stage and its drawing to the update's cost; the update's total paces the
        live updates (:meth:`live_interval_s`)."""
        if not getattr(self, "_measuring", False):
            return
        self._update_s += time.perf_counter() - self._stage_t0
        if not self._stages:
            self._measuring = False
            self.update_cost(self._update_s)

    def _show_waiting(self) -> None:
        """The volume that came while the last one was being set up."""
        if self._after_stages is not None and not self._stages:
            args, self._after_stages = self._after_stages, None
            self.show_volume(*args)

    @property
    def busy(self) -> bool:
        """Whether a volume is still being set up (napari loading, layers being made)."""
        return bool(self._stages) or self._pending is not None or self._loading or \
            self._after_stages is not None

    def _refresh_layer(self, layer, plan: LayerPlan, step: float) -> None:
        if layer.data is not plan.data:  # the truth is not drawn again
            if tuple(layer.scale) != plan.scale or layer.data.shape != plan.data.shape:
                # preview <-> full resolution: the same layer (and its visual, whose shader
                # compile costs seconds with software OpenGL) gets the new grid
                layer.scale, layer.translate = plan.scale, plan.translate
            self._update_layer(layer, plan.data, plan.levels)
        self._set_ray_step(layer, step)

    def _add_layer(self, plan: LayerPlan, step: float, visible: bool | None = None) -> None:
        cmap, shown, rendering = LAYER_STYLE.get(plan.name, ("gray", False, "mip"))
        lo, hi = plan.levels
        layer = self.viewer.add_image(
            plan.data, name=plan.name, scale=plan.scale, translate=plan.translate,
            colormap=cmap, visible=shown if visible is None else visible,
            contrast_limits=(lo, hi), rendering=rendering,
            iso_threshold=lo + ISO_FRACTION * (hi - lo), attenuation=ATTENUATION,
            blending="additive", units=("um", "um", "um"), axis_labels=("z", "y", "x"))
        layer.metadata["auto"] = (layer.contrast_limits, layer.iso_threshold)
        layer.events.visible.connect(self._update_grid_label)
        self._set_ray_step(layer, step)
        self._update_grid_label()

    def _show_truth(self) -> None:
        if "truth delta" in self.viewer.layers:
            self.viewer.layers["truth delta"].visible = True

    def _first_camera(self, reset_camera: bool | None) -> None:
        """The first volume is seen from the camera kept from the last run (Reset between
        runs of one sample), else from the default angles."""
        kept = getattr(self, "_kept_camera", None)
        self._kept_camera = None
        v = self.viewer
        self._fitted = False
        if kept is not None and not reset_camera:
            cam = camera_of(v)
            cam.center, cam.zoom, cam.angles = kept
        elif reset_camera is not False:
            self._fit_camera(CAMERA_ANGLES)
            self._fitted = True

    def _refit_camera(self) -> None:
        """Fit again, at the same angles, once every layer and the grid are in place (only a
        camera this view fitted itself: a kept one stays)."""
        if getattr(self, "_fitted", False):
            self._fit_camera(tuple(camera_of(self.viewer).angles))

    def _shown(self, select: bool = False) -> None:
        v = self.viewer
        if select and v.layers:  # napari's controls then act on the reconstruction
            v.layers.selection.active = v.layers[0]
        self._update_grid_label()
        self.popout.setEnabled(True)
        self.updates += 1

    def _set_ray_step(self, layer, step: float) -> None:
        """vispy's ray-marching step of a volume layer (napari has no public setting for it;
        without the private mapping the default step stays, which is only slower)."""
        try:
            node = self.qt_viewer.canvas.layer_to_visual[layer].node
            if node.relative_step_size != step:
                node.relative_step_size = step
        except (AttributeError, KeyError):
            pass

    def _fit_camera(self, angles) -> None:
        """Every layer in view at ``angles``: napari fits the box's face, which a turned box
        overflows (the finished cone was cut off)."""
        v = self.viewer
        v.reset_view()
        cam = camera_of(v)
        cam.angles = angles
        if v.dims.ndisplay == 3 and len(v.layers):
            ext = np.asarray(v.layers.extent.world, float)
            size = (ext[1] - ext[0])[-3:]
            cam.zoom = cam.zoom * rotated_fit(size, cam.view_direction, cam.up_direction)

    @staticmethod
    def _update_layer(layer, data: np.ndarray, levels: tuple[float, float]) -> None:
        """New data for a live layer; contrast and iso level follow the data unless the user
        has changed them in napari's controls."""
        auto_clim, auto_iso = layer.metadata.get("auto", (None, None))
        user_clim = auto_clim is not None and tuple(layer.contrast_limits) != tuple(auto_clim)
        user_iso = auto_iso is not None and layer.iso_threshold != auto_iso
        layer.data = data
        if not user_clim:
            layer.contrast_limits = levels
        if not user_iso:
            layer.iso_threshold = levels[0] + ISO_FRACTION * (levels[1] - levels[0])
        layer.metadata["auto"] = (tuple(layer.contrast_limits), layer.iso_threshold)

    def _update_grid_label(self, *_) -> None:
        text = getattr(self, "_title", "")
        if self.viewer is not None and grid_of(self.viewer).enabled:
            # napari fills the grid in layer order with the visible layers (bottom of the list
            # first), left to right
            shown = [layer.name for layer in self.viewer.layers if layer.visible]
            text += "   |   grid, left to right: " + ", ".join(shown)
        self.title.setText(text)

    def layer_names(self) -> list[str]:
        return [] if self.viewer is None else [layer.name for layer in self.viewer.layers]

    def _set_grid(self, on: bool) -> None:
        if self.viewer is not None:
            grid_of(self.viewer).enabled = on
            self._fit_camera(camera_of(self.viewer).angles)  # the panels changed size
        self._update_grid_label()

    def screenshot(self) -> np.ndarray | None:
        """RGBA image of the canvas (docs, tests)."""
        if self.qt_viewer is None:
            return None
        return self.qt_viewer.screenshot(flash=False)
