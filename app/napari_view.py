"""3D view of the reconstructed volume in an embedded napari viewer.

A napari ``ViewerModel`` drawn by its ``QtViewer`` sits in a tab of the main window, with napari's
own layer list and layer controls beside it. Volumes are ``(z, y, x)`` with voxel scale in
micrometres (slice thickness along z, pixel size along y and x), so the scale bar and the axes are
physical. Ground truth, when the data set has it, is a further layer; "grid" shows the layers side
by side. "Pop out" copies the layers into a full napari window (plugins, export, ...).

napari is imported on a background thread soon after the window opens (it takes seconds and
needs OpenGL, which the rest of the application does not); the viewer itself is made when the tab
is first shown. The view is sturdy: drawing errors of the OpenGL canvas are logged, never shown as
dialogs, and the canvas is rebuilt (layers, camera and contrast kept), e.g. after a pop-out window
that shared its OpenGL context was closed.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from PyQt6.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QSplitter, QVBoxLayout,
                             QWidget)

from .views.common import UM, robust_levels

log = logging.getLogger("slicewise.app.napari")

# reconstruction layers and how they are drawn: (colormap, visible at first)
# napari Euler angles (degrees) of the first 3D view: the cone's axis (y) upright, tilted towards
# the viewer so that its 3D shape reads at a glance
CAMERA_ANGLES = (10.0, 40.0, 70.0)
# how each layer is drawn: (colour map, visible at first, rendering). Attenuated maximum
# intensity projection shows the volume's inside (the cone is hollow) and stays fast with software
# OpenGL (remote desktops, VNC), where napari's iso-surface takes seconds per frame. Everything can
# be changed in napari's layer controls.
_LAYER_STYLE = {"delta": ("bone", True, "attenuated_mip"), "beta": ("magma", False, "mip"),
                "truth delta": ("bone", False, "attenuated_mip"), "truth beta": ("magma", False, "mip"),
                "phase": ("gray", True, "mip"), "amplitude": ("gray", False, "mip")}
ATTENUATION = 0.5
ISO_FRACTION = 0.5


# live updates during a run draw a binned preview: software OpenGL (llvmpipe under Xvfb or a
# remote desktop) spends the update in ray marching, whose cost follows the texture's size along
# the rays, so 2x binning and a coarser ray step cut the window's block per update ~2-3x
PREVIEW_MIN_SIDE = 32         # volumes smaller than this along every axis are shown as they are
PREVIEW_STEP = 1.5            # vispy's relative ray step for previews (its default: 0.8)
FULL_STEP = 0.8


def preview_factor(shape) -> int:
    """The binning of a live preview of a ``shape`` volume: 1, 2 or 4 (largest side <= 64)."""
    f = 1
    while max(shape) // f > 64 or (f == 1 and max(shape) >= PREVIEW_MIN_SIDE):
        f *= 2
        if f == 4:
            break
    return f


def bin_volume(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over ``f``-cubed blocks (each axis cut to a multiple of ``f``; an axis shorter than
    ``f`` is kept), float32."""
    a = np.asarray(a, np.float32)
    if f == 1:
        return a
    fs = [f if n >= f else 1 for n in a.shape]
    a = a[tuple(slice(0, n - n % k) for n, k in zip(a.shape, fs))]
    shape = [x for n, k in zip(a.shape, fs) for x in (n // k, k)]
    return a.reshape(shape).mean(axis=(1, 3, 5), dtype=np.float32)


_VIEWS: list = []   # live NapariViews, told about OpenGL errors by errors.install_excepthook


def is_gl_error(exc: BaseException, tb_text: str = "") -> bool:
    """Whether ``exc`` comes from drawing the OpenGL canvas (vispy, PyOpenGL)."""
    name = type(exc).__module__ + "." + type(exc).__name__
    return "OpenGL" in name or "GLError" in name or "vispy" in tb_text or "OpenGL" in tb_text


def gl_error_seen() -> None:
    """A canvas failed to draw: every 3D view rebuilds its canvas at the next chance."""
    for view in list(_VIEWS):
        view.schedule_rebuild()


class _CloseWatcher(QObject):
    closed = pyqtSignal()

    def eventFilter(self, obj, event):  # noqa: N802 - Qt name
        if event.type() == QEvent.Type.Close:
            self.closed.emit()
        return False


class NapariView(QWidget):
    napariLoaded = pyqtSignal()
    min_interval_s = 2.0      # 3D texture uploads are the costliest view update
    budget = 0.03             # live 3D updates may take ~3 % of the time during a run

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = None        # napari.components.ViewerModel
        self.qt_viewer = None     # napari.qt.QtViewer
        self._popouts: list = []
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
        self.napariLoaded.connect(self._on_loaded)
        _VIEWS.append(self)
        self.title = QLabel("No volume yet: start a reconstruction or open a result file.")
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
        return max(self.min_interval_s, getattr(self, "_cost_s", 0.0) / self.budget)

    # ---- loading -----------------------------------------------------------------------------
    @staticmethod
    def napari_imported() -> bool:
        import sys  # noqa: PLC0415

        return "napari.qt" in sys.modules and "napari.components" in sys.modules

    def preload(self, delay_ms: int = 1500, when=None) -> None:
        """Load napari on a background thread (seconds of imports and set-up the event loop
        never sees). ``when()``: whether now is a good time (e.g. no run competing for the
        CPU); asked again every few seconds until it is."""
        if self.napari_imported() and self._warm or self._loading:
            return
        self._loading = True
        self._when = when
        QTimer.singleShot(delay_ms, self._start_preload)

    def _start_preload(self) -> None:
        if self._when is not None and not self._when():
            QTimer.singleShot(3000, self._start_preload)
            return
        threading.Thread(target=self._warm_up, daemon=True, name="napari-import").start()

    def _warm_up(self) -> None:
        """Imports, the unit registry and a throw-away 3D viewer model: what would otherwise
        take seconds of the window's thread when the tab is first shown."""
        try:
            import napari._qt.qt_viewer  # noqa: F401, PLC0415
            import napari._vispy  # noqa: F401, PLC0415
            import napari.qt  # noqa: F401, PLC0415
            import vispy.visuals.volume  # noqa: F401, PLC0415
            from napari.components import ViewerModel  # noqa: PLC0415

            vm = ViewerModel()
            vm.dims.ndisplay = 3
            vm.add_image(np.zeros((2, 2, 2), np.float32), rendering="attenuated_mip",
                         units=("um", "um", "um"), axis_labels=("z", "y", "x"))
            self._warm = True
        except Exception:  # noqa: BLE001 - no napari / no OpenGL: said when the tab opens
            log.warning("napari could not be loaded", exc_info=True)
        self._load_tried = True
        self.napariLoaded.emit()

    def prepare(self) -> None:
        """The tab is shown: make the (empty) viewer now, while it costs the least, not with
        the first volume of a run."""
        if self.viewer is None and self._warm and not self._loading:
            try:
                self.ensure_viewer()
            except Exception:  # noqa: BLE001 - said when a volume is shown
                log.warning("3D view: the viewer could not be made", exc_info=True)

    def _on_loaded(self) -> None:
        self._loading = False
        if self.isVisible() and self._pending is None:
            self.prepare()
        if self._pending is not None:
            args, self._pending = self._pending, None
            self.show_volume(*args)

    def set_message(self, text: str) -> None:
        self._title = text
        self.title.setText(text)

    def clear(self, keep_camera: bool = False) -> None:
        """No volume (Reset): layers removed, the pop-out button off; ``keep_camera``: the next
        volume is seen from the same camera (a new run of the same sample)."""
        self._pending = None
        if self.viewer is not None:
            cam = self.viewer.camera
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
        """Everything needed to draw the same view again: layers and their look, camera, grid."""
        v = self.viewer
        layers = [dict(data=ly.data, name=ly.name, scale=tuple(ly.scale),
                       translate=tuple(ly.translate), colormap=ly.colormap.name,
                       contrast_limits=tuple(ly.contrast_limits), gamma=ly.gamma,
                       visible=ly.visible, rendering=str(ly.rendering),
                       blending=str(ly.blending), attenuation=ly.attenuation,
                       iso_threshold=ly.iso_threshold, units=ly.units,
                       axis_labels=ly.axis_labels, metadata=dict(ly.metadata))
                  for ly in v.layers]
        cam = v.camera
        return {"layers": layers, "grid": v.grid.enabled, "ndisplay": v.dims.ndisplay,
                "camera": (tuple(cam.center), cam.zoom, tuple(cam.angles))}

    @staticmethod
    def apply_view_state(viewer, state: dict) -> None:
        viewer.dims.ndisplay = state["ndisplay"]
        for kw in state["layers"]:
            kw = dict(kw)
            meta = kw.pop("metadata")
            layer = viewer.add_image(kw.pop("data"), **kw)
            layer.metadata.update(meta)
        viewer.grid.enabled = state["grid"]
        center, zoom, angles = state["camera"]
        viewer.camera.center, viewer.camera.zoom, viewer.camera.angles = center, zoom, angles

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
        self.qt_viewer = self.viewer = None

    # ---- viewer ------------------------------------------------------------------------------
    def ensure_viewer(self):
        """Create the napari viewer on first use; returns the ViewerModel."""
        if self.viewer is not None:
            return self.viewer
        from napari.components import ViewerModel  # noqa: PLC0415 - slow import, on demand
        from napari.qt import QtViewer  # noqa: PLC0415

        self.viewer = ViewerModel(title="Slicewise 3D")
        self.qt_viewer = QtViewer(self.viewer, show_welcome_screen=False)
        side = QSplitter(Qt.Orientation.Vertical)
        # napari's own layer list and controls, taken out of their dock widgets
        side.addWidget(self.qt_viewer.controls)
        side.addWidget(self.qt_viewer.layers)
        side.setMinimumWidth(220)
        self.body.addWidget(side)
        self.body.addWidget(self.qt_viewer)
        self.body.setStretchFactor(1, 1)
        self.body.setSizes([240, 900])
        v = self.viewer
        v.dims.ndisplay = 3
        v.scale_bar.visible = True  # its unit comes from the layers' units (micrometres)
        v.scale_bar.box = True
        v.axes.visible = True
        v.axes.colored = True
        v.grid.enabled = self.grid.isChecked()
        return v

    def close_viewer(self) -> None:
        for w in self._popouts:
            try:
                w.close()
            except Exception:  # noqa: BLE001 - the user may have closed it already
                pass
        self._popouts.clear()
        if self.qt_viewer is not None:  # the window closes: napari's own orderly close
            self.qt_viewer.close()
        self.qt_viewer = self.viewer = None
        if self in _VIEWS:
            _VIEWS.remove(self)

    # ---- data --------------------------------------------------------------------------------
    @staticmethod
    def voxel_scale_um(pixel_size_m: float, slice_thickness_m: float) -> tuple[float, float, float]:
        """(z, y, x) voxel size in micrometres."""
        return (slice_thickness_m * UM, pixel_size_m * UM, pixel_size_m * UM)

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
        if self._loading or not (self.napari_imported() or self._load_tried):
            self._pending = (volumes, pixel_size_m, slice_thickness_m, truth, truth_voxel_m,
                             title, reset_camera, preview)
            self.set_message("loading the 3D viewer (napari)…")
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
        if self._rebuild_due:
            self.rebuild()
        v = self.ensure_viewer()
        vols = {k: a for k, a in volumes.items() if a is not None and np.ndim(a) == 3}
        f = preview_factor(next(iter(vols.values())).shape) if preview and vols else 1
        base = self.voxel_scale_um(pixel_size_m, slice_thickness_m)
        t_base = self.voxel_scale_um(truth_voxel_m[1], truth_voxel_m[0]) if truth_voxel_m \
            else base
        scale, t_scale = (tuple(x * f for x in b) for b in (base, t_base))
        layers = {k: (bin_volume(a, f), scale, (0.0, 0.0, 0.0)) for k, a in vols.items()}
        shape = next(iter(layers.values()))[0].shape if layers else None
        for k, a in (truth or {}).items():
            if np.ndim(a) != 3:
                continue
            a = self._binned(a, f)
            shift = tuple(((n * s - m * t) / 2 if shape else 0.0)
                          for n, s, m, t in zip(shape or a.shape, scale, a.shape, t_scale))
            layers[f"truth {k}"] = (a, t_scale, shift)
        first = len(v.layers) == 0
        levels = {name: robust_levels(data, 0.1, 99.9) for name, (data, _, _) in layers.items()}
        for name in list(levels):
            # a reconstruction and its ground truth share contrast and iso level (the truth's),
            # so that the comparison is fair and convergence shows as the surface filling in
            if f"truth {name}" in levels:
                levels[name] = levels[f"truth {name}"]
        for name, (data, sc, shift) in layers.items():
            cmap, visible, rendering = _LAYER_STYLE.get(name, ("gray", False, "mip"))
            lo, hi = levels[name]
            if name in v.layers:
                layer = v.layers[name]
                if layer.data is not data:  # the truth is not drawn again
                    if tuple(layer.scale) != sc or layer.data.shape != data.shape:
                        # preview <-> full resolution: the same layer (and its visual, whose
                        # shader compile costs seconds with software OpenGL) gets the new grid
                        layer.scale, layer.translate = sc, shift
                    self._update_layer(layer, data, (lo, hi))
                self._set_ray_step(layer, PREVIEW_STEP if f > 1 else FULL_STEP)
                continue
            layer = v.add_image(data, name=name, scale=sc, translate=shift, colormap=cmap,
                                visible=visible, contrast_limits=(lo, hi), rendering=rendering,
                                iso_threshold=lo + ISO_FRACTION * (hi - lo),
                                attenuation=ATTENUATION, blending="additive",
                                units=("um", "um", "um"), axis_labels=("z", "y", "x"))
            layer.metadata["auto"] = (layer.contrast_limits, layer.iso_threshold)
            layer.events.visible.connect(self._update_grid_label)
            self._set_ray_step(layer, PREVIEW_STEP if f > 1 else FULL_STEP)
        kept = getattr(self, "_kept_camera", None)
        if first and kept is not None and not reset_camera:
            v.camera.center, v.camera.zoom, v.camera.angles = kept
            self._kept_camera = None
        elif reset_camera or (reset_camera is None and first):
            self._fit_camera(CAMERA_ANGLES)
        if first and "truth delta" in v.layers:
            v.layers["truth delta"].visible = True
            self.grid.setChecked(True)  # reconstruction and truth side by side
        if first and v.layers:  # napari's controls then act on the reconstruction
            v.layers.selection.active = v.layers[0]
        self._title = title or "3D view"
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
        v = self.viewer
        v.reset_view()
        v.camera.angles = angles

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
        if self.viewer is not None and self.viewer.grid.enabled:
            # napari fills the grid in layer order with the visible layers (bottom of the list
            # first), left to right
            shown = [layer.name for layer in self.viewer.layers if layer.visible]
            text += "   |   grid, left to right: " + ", ".join(shown)
        self.title.setText(text)

    def layer_names(self) -> list[str]:
        return [] if self.viewer is None else [layer.name for layer in self.viewer.layers]

    def _set_grid(self, on: bool) -> None:
        if self.viewer is not None:
            self.viewer.grid.enabled = on
            self._fit_camera(self.viewer.camera.angles)  # the panels changed size
        self._update_grid_label()

    def screenshot(self) -> np.ndarray | None:
        """RGBA image of the canvas (docs, tests)."""
        if self.qt_viewer is None:
            return None
        return self.qt_viewer.screenshot(flash=False)

    def pop_out(self) -> None:
        """Open a full napari window showing the same view: layers with their look, grid and
        camera. Closing it rebuilds the embedded canvas, which shared its OpenGL context."""
        if self.viewer is None:
            return
        import napari  # noqa: PLC0415

        w = napari.Viewer(title="Slicewise \u2013 napari", ndisplay=3)
        self.apply_view_state(w, self.view_state())
        w.scale_bar.visible = True
        watcher = _CloseWatcher(self)
        watcher.closed.connect(lambda: (self._forget_popout(w), self.schedule_rebuild()))
        w.window._qt_window.installEventFilter(watcher)
        self._watchers.append(watcher)
        self._popouts.append(w)
        log.info("opened %d layer(s) in a napari window", len(self.viewer.layers))

    def _forget_popout(self, w) -> None:
        if w in self._popouts:
            self._popouts.remove(w)
