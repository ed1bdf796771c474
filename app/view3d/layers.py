"""What the 3D view draws: the layers of a volume set, their grids and look, and previews.

Qt-free helpers of :class:`.view.NapariView`: a volume set (reconstruction and ground
truth) becomes a list of :class:`LayerPlan` (data, voxel scale and offset in micrometres,
contrast limits), binned for live previews; :func:`setup_order` says in which order new layers
are made, so that a first volume can be set up over several turns of the window's event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..views.common import UM, robust_levels

# napari Euler angles (degrees) of the first 3D view: the cone's axis (y) upright, tilted towards
# the viewer so that its 3D shape reads at a glance
CAMERA_ANGLES = (10.0, 40.0, 70.0)
# how each layer is drawn: (colour map, visible at first, rendering). Attenuated maximum
# intensity projection shows the volume's inside (the cone is hollow) and stays fast with software
# OpenGL (remote desktops, VNC), where napari's iso-surface takes seconds per frame. Everything can
# be changed in napari's layer controls.
LAYER_STYLE = {"delta": ("bone", True, "attenuated_mip"), "beta": ("magma", False, "mip"),
               "truth delta": ("bone", False, "attenuated_mip"),
               "truth beta": ("magma", False, "mip"),
               "phase": ("gray", True, "mip"), "amplitude": ("gray", False, "mip")}
ATTENUATION = 0.5
ISO_FRACTION = 0.5

# live updates during a run draw a binned preview: software OpenGL (llvmpipe under Xvfb or a
# remote desktop) spends the update in ray marching, whose cost follows the texture's size along
# the rays, so 2x binning and a coarser ray step cut the window's block per update ~2-3x
PREVIEW_MIN_SIDE = 32         # volumes smaller than this along every axis are shown as they are
PREVIEW_STEP = 1.5            # vispy's relative ray step for previews (its default: 0.8)
FULL_STEP = 0.8


# live 3D updates during a run: one at least every LIVE_MAX_INTERVAL_S (the newest estimate is on
# screen within that and one drawing), at most every LIVE_MIN_INTERVAL_S, and in between as often
# as LIVE_BUDGET of the time allows (a drawing's cost, measured, over the budget)
LIVE_MIN_INTERVAL_S = 1.0
LIVE_MAX_INTERVAL_S = 3.0
LIVE_BUDGET = 0.10


def live_interval(cost_s: float | None) -> float:
    """Seconds between live 3D updates when one costs ``cost_s`` (None: not measured yet)."""
    return min(LIVE_MAX_INTERVAL_S, max(LIVE_MIN_INTERVAL_S, (cost_s or 0.0) / LIVE_BUDGET))


def preview_words(f: int, shape) -> str:
    """How a live preview of a ``shape`` volume binned by ``f`` is drawn, in words."""
    if f <= 1:
        return "live preview"
    times = " \u00d7 "
    fs = [f if n >= f else 1 for n in shape]
    shown = times.join(str(n // k) for n, k in zip(shape, fs))
    return (f"live preview: {times.join(map(str, fs))} voxels averaged into one ({shown} of "
            f"{times.join(map(str, shape))}); full resolution when paused or finished")


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


def voxel_scale_um(pixel_size_m: float, slice_thickness_m: float) -> tuple[float, float, float]:
    """(z, y, x) voxel size in micrometres."""
    return (slice_thickness_m * UM, pixel_size_m * UM, pixel_size_m * UM)


@dataclass
class LayerPlan:
    """One layer as it should be drawn: ``data`` (z, y, x), ``scale`` and ``translate`` in
    micrometres, ``levels`` the automatic contrast limits."""

    name: str
    data: np.ndarray
    scale: tuple
    translate: tuple
    levels: tuple[float, float] = (0.0, 1.0)


def plan_layers(volumes: dict, pixel_size_m: float, slice_thickness_m: float,
                truth: dict | None, truth_voxel_m, preview: bool,
                binned=bin_volume) -> tuple[int, dict[str, LayerPlan]]:
    """The binning factor and the layers of a volume set, by name (reconstruction first, then
    "truth NAME"). ``truth_voxel_m``: (slice thickness, pixel size) of the truth's grid, centred on
    the reconstruction; ``binned(a, f)``: binning (a caching one for the unchanged truth)."""
    vols = {k: a for k, a in volumes.items() if a is not None and np.ndim(a) == 3}
    f = preview_factor(next(iter(vols.values())).shape) if preview and vols else 1
    base = voxel_scale_um(pixel_size_m, slice_thickness_m)
    t_base = voxel_scale_um(truth_voxel_m[1], truth_voxel_m[0]) if truth_voxel_m else base
    scale, t_scale = (tuple(x * f for x in b) for b in (base, t_base))
    plans = {k: LayerPlan(k, bin_volume(a, f), scale, (0.0, 0.0, 0.0)) for k, a in vols.items()}
    shape = next(iter(plans.values())).data.shape if plans else None
    for k, a in (truth or {}).items():
        if np.ndim(a) != 3:
            continue
        a = binned(a, f)
        shift = tuple(((n * s - m * t) / 2 if shape else 0.0)
                      for n, s, m, t in zip(shape or a.shape, scale, a.shape, t_scale))
        plans[f"truth {k}"] = LayerPlan(f"truth {k}", a, t_scale, shift)
    for p in plans.values():
        p.levels = robust_levels(p.data, 0.1, 99.9)
    for p in plans.values():
        # a reconstruction and its ground truth share contrast and iso level (the truth's), so
        # that the comparison is fair and convergence shows as the surface filling in
        if f"truth {p.name}" in plans:
            p.levels = plans[f"truth {p.name}"].levels
    return f, plans


def setup_order(names) -> list[str]:
    """The order in which new layers are made: those drawn at first (and their truth) before
    the hidden ones, so that the view fills in while the rest is still being set up."""
    def rank(name: str) -> tuple[int, int]:
        base = name.removeprefix("truth ")
        visible = LAYER_STYLE.get(base, ("", False, ""))[1]
        return (0 if visible else 1, 1 if name.startswith("truth ") else 0)

    return sorted(names, key=rank)


def view_state(v) -> dict:
    """Everything needed to draw the same view of napari viewer ``v`` again: layers and their
    look, camera, grid (a rebuilt canvas, a pop-out window)."""
    layers = [dict(data=ly.data, name=ly.name, scale=tuple(ly.scale),
                   translate=tuple(ly.translate), colormap=ly.colormap.name,
                   contrast_limits=tuple(ly.contrast_limits), gamma=ly.gamma,
                   visible=ly.visible, rendering=str(ly.rendering),
                   blending=str(ly.blending), attenuation=ly.attenuation,
                   iso_threshold=ly.iso_threshold, units=ly.units,
                   axis_labels=ly.axis_labels, metadata=dict(ly.metadata))
              for ly in v.layers]
    cam = camera_of(v)
    return {"layers": layers, "grid": grid_of(v).enabled, "ndisplay": v.dims.ndisplay,
            "camera": (tuple(cam.center), cam.zoom, tuple(cam.angles))}


def camera_of(viewer):
    """The viewer's camera: napari 0.9 moved it to ``viewer.scene.camera`` (``viewer.camera``
    warns there); older versions have only ``viewer.camera``."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def grid_of(viewer):
    """The viewer's grid settings: ``viewer.canvas.grid`` from napari 0.9, else
    ``viewer.grid``."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid


def apply_view_state(viewer, state: dict) -> None:
    """Draw ``state`` (from :func:`view_state`) in ``viewer``."""
    viewer.dims.ndisplay = state["ndisplay"]
    for kw in state["layers"]:
        add_state_layer(viewer, kw)
    apply_view_settings(viewer, state)


def add_state_layer(viewer, kw: dict):
    """One layer of a :func:`view_state` added to ``viewer``."""
    kw = dict(kw)
    meta = kw.pop("metadata")
    layer = viewer.add_image(kw.pop("data"), **kw)
    layer.metadata.update(meta)
    return layer


def apply_view_settings(viewer, state: dict) -> None:
    """Grid and camera of a :func:`view_state`."""
    grid_of(viewer).enabled = state["grid"]
    center, zoom, angles = state["camera"]
    cam = camera_of(viewer)
    cam.center, cam.zoom, cam.angles = center, zoom, angles


def rotated_fit(size, view_direction, up_direction) -> float:
    """By how much a zoom that fits a box of ``size`` (z, y, x) seen face-on (napari's
    ``reset_view``) shrinks so that the box, seen along ``view_direction`` with
    ``up_direction`` up (world z, y, x), still fits: its corners project wider than its face."""
    view, up = np.asarray(view_direction, float), np.asarray(up_direction, float)
    right = np.cross(view, up)
    half = np.asarray(size, float) / 2
    corners = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]) * half
    width = 2 * np.abs(corners @ right).max()
    height = 2 * np.abs(corners @ up).max()
    fit_x = size[2] / width if width > 0 else 1.0
    fit_y = size[1] / height if height > 0 else 1.0
    return float(min(1.0, fit_x, fit_y))
