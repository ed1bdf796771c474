"""Which forward model a data set gets, and how it starts: the registry of model set-ups.

Each :class:`ModelSetup` says which data it fits (``fits(dataset)``), whether its object grid
comes from scan positions, and builds the model with its initial unknowns from a
:class:`SetupContext`. ``model.kind = "auto"`` picks the first registered set-up that fits the data.
To add a model: write the :class:`~..models.base.ForwardModel`, a ``build`` function here or in
its own module (which imports the types from :mod:`.setup_types`, not this registry) and register
it at the end of this module; add its name to the configuration's ``model.kind`` choices (a test
keeps them in step). Nothing in :mod:`.problem` changes.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from ...io.arrays import load_array, resolve_path
from ...io.datafile import Dataset
from ...models.holo import HoloModel
from ...models.ptycho import PtychoModel
from ...probes import gaussian_probe, probe_modes
from ..config import ReconConfig
from ..loop.positions import search_radius
from .measured import NFPTYCHO
from .probe_guess import (
    PROBE_DIAMETER_FRACTION,
    WEAK_CONTRAST,
    frame_contrast,
    probe_from_mean_pattern,
    rms_radius,
    spread_to_window,
)
from .setup_types import ModelSetup, ModelStart, SetupContext

__all__ = ["MODEL_SETUPS", "ModelSetup", "ModelStart", "SetupContext", "choose_model",
           "register_model", "initial_probe", "position_room_px", "probe_from_mean_pattern"]

log = logging.getLogger(__name__)

#: Vacuum margin around the scanned area when positions are refined, in maximal position steps.
#: A probe window that leaves the padded object grid cannot be evaluated; positions move at most
#: ``refine.position_max_step_px`` per update and their common drift is removed after each one,
#: so a single position walking 50 maximal steps outward in one direction is what this allows
#: (25 px at the default 0.5 px step: far more than a calibrated scan's errors).
POSITION_DRIFT_STEPS = 50
#: Vacuum margin always kept around the scanned area, px (sub-pixel shifts wrap at the edges).
BASE_MARGIN_PX = 4


MODEL_SETUPS: dict[str, ModelSetup] = {}


def position_room_px(cfg: ReconConfig, frame_shape) -> float:
    """How far (px) refined positions may leave the scanned area: the gradient steps' drift
    (:data:`POSITION_DRIFT_STEPS`) or the registration's search radius, whichever is larger;
    with ``refine.positions`` unset, the search radius (registration may be turned on after a
    few epochs, loop/positions.py); 0 when positions stay."""
    if cfg.refine.positions is False:
        return 0.0
    room = search_radius(cfg, frame_shape)
    if cfg.refine.positions:
        room = max(room, cfg.refine.position_max_step_px * POSITION_DRIFT_STEPS)
    return room


def register_model(setup: ModelSetup) -> ModelSetup:
    MODEL_SETUPS[setup.name] = setup
    return setup


def choose_model(cfg: ReconConfig, ds: Dataset) -> ModelSetup:
    """The set-up named by ``model.kind``, or for ``auto`` the first that fits the data."""
    kind = cfg.model.kind
    fitting = [s for s in MODEL_SETUPS.values() if s.fits(ds)]
    if kind == "auto":
        if not fitting:
            raise ConfigError(f"{ds.source_path or 'the data'}: no forward model fits "
                              f"{_data_words(ds)}; models: "
                              + "; ".join(f"{s.name} for {s.data_words}" for s in MODEL_SETUPS.values()))
        return fitting[0]
    setup = MODEL_SETUPS.get(kind)
    if setup is None:
        raise ConfigError(f"model.kind = {kind!r}: no such model; choose one of "
                          f"auto, {', '.join(MODEL_SETUPS)}")
    if not setup.fits(ds):
        hint = f"model.kind = {fitting[0].name!r} or 'auto'" if fitting else "other data"
        raise ConfigError(f"model.kind = {kind!r} does not fit {_data_words(ds)} (it takes "
                          f"{setup.data_words}); use {hint}")
    return setup


def _data_words(ds: Dataset) -> str:
    if ds.modality == "farfield":
        return "far-field data"
    return f"near-field data with {ds.n_tiles} tile(s) per distance"


# ---- far-field ptychography ---------------------------------------------------------------------

def initial_probe(cfg: ReconConfig, ds: Dataset, power: float,
                  base_dir: Path) -> tuple[np.ndarray, bool]:
    """The starting probe ``(n_modes, py, px)`` complex128, scaled to ``power`` photons per frame,
    and whether it is known (from ``init.probe_path`` or the data file) rather than a guess."""
    frame_shape = ds.frame_shape
    probe, origin = None, "the data file's /probe"
    if cfg.init.probe_path:
        path = resolve_path(cfg.init.probe_path, base_dir)
        probe = load_array(path, "init.probe_path", ("params/probe", "probe"),
                           allow_external=cfg.data.allow_external_links)
        origin = f"init.probe_path ({path})"
    elif cfg.init.probe in ("auto", "file") and ds.probe is not None:
        probe = ds.probe
    elif cfg.init.probe == "file":
        raise ConfigError("init.probe = 'file' but the data file holds no probe; use 'gaussian' "
                          "or set init.probe_path")
    known = probe is not None
    if probe is None and cfg.init.probe in ("auto", "data"):
        probe, origin = _probe_from_data(cfg, ds), "the probe derived from the mean pattern"
    if probe is None:
        fwhm_px = (cfg.init.probe_fwhm_m / ds.pixel_size_m) if cfg.init.probe_fwhm_m \
            else min(frame_shape) / 4
        probe, origin = gaussian_probe(frame_shape, fwhm_px), "the gaussian probe guess"
    probe = np.asarray(probe, np.complex128)
    if probe.ndim == 2:
        probe = probe[None]
    if probe.ndim != 3 or tuple(probe.shape[-2:]) != tuple(frame_shape):
        raise ConfigError(f"{origin}: the initial probe has shape {probe.shape} but the detector "
                          f"frames are {tuple(frame_shape)}; give a (n_modes, py, px) probe of the "
                          "frame size")
    if cfg.model.probe_modes > probe.shape[0]:
        probe = probe_modes(probe[0], cfg.model.probe_modes, seed=cfg.init.seed)
    probe_power = float(np.sum(np.abs(probe) ** 2))
    if not (math.isfinite(probe_power) and probe_power > 0):
        what = "zero everywhere" if probe_power == 0 else "not finite"
        raise ConfigError(f"{origin}: the initial probe is {what}; give a probe with some "
                          "intensity, or set init.probe = 'gaussian'")
    # scale to the measured photons per frame so the loss starts near its optimum scale
    probe *= math.sqrt(power / probe_power)
    return probe, known


def _probe_from_data(cfg: ReconConfig, ds: Dataset) -> np.ndarray:
    """The mean pattern's focus, widened to the window's probe size (:mod:`.probe_guess`)."""
    focus = probe_from_mean_pattern(ds)
    probe, alpha = spread_to_window(focus)
    if alpha > 0:
        z = alpha * ds.pixel_size_m ** 2 / (math.pi * ds.wavelength_m)
        log.info("init.probe: no probe in the file; the mean diffraction pattern's focus (rms radius "
                 "%.1f px) propagated by %.3g m to an rms radius of %.1f px, a probe %.0f %% of the "
                 "%dx%d window wide (far-field oversampling ~2.2), then refined", rms_radius(focus),
                 z, rms_radius(probe), 100 * PROBE_DIAMETER_FRACTION, *ds.frame_shape)
    contrast = frame_contrast(ds)
    if contrast < WEAK_CONTRAST:
        log.warning("init.probe: the frames differ from their mean by only %.2g %% (a weak object), "
                    "so a probe guessed from the data limits the result (its Fourier phase is not "
                    "in the mean pattern: benchmarks/README.md, 'Blind probe, weak object'); if "
                    "the probe is known, give it with init.probe_path", 100 * contrast)
    return probe


def build_ptycho(ctx: SetupContext) -> ModelStart:
    cfg, ds, be = ctx.config, ctx.dataset, ctx.backend
    pos = np.asarray(ds.positions_px, float)
    drift = position_room_px(cfg, ds.frame_shape)
    model = PtychoModel(ctx.object_shape, ds.frame_shape, ctx.optics, be, angles_rad=ds.angles_rad,
                        positions_px=pos, param=cfg.model.object_param,
                        margin_px=int(math.ceil(BASE_MARGIN_PX + drift)),
                        checkpoint_slices=cfg.model.checkpoint_slices)
    probe, known = initial_probe(cfg, ds, ctx.mean_frame_photons, ctx.base_dir)
    params = {**model.view.vacuum(), "probe": be.to_complex(probe), "positions": be.to_real(pos)}
    return ModelStart(model, params, float(np.sum(np.abs(probe) ** 2)), pos.copy(), known)


register_model(ModelSetup("ptycho", lambda ds: ds.modality == "farfield", True, build_ptycho,
                          "far-field data"))


# ---- near-field holography ----------------------------------------------------------------------

def build_holo(ctx: SetupContext) -> ModelStart:
    cfg, ds, be = ctx.config, ctx.dataset, ctx.backend
    model = HoloModel(ctx.object_shape, ctx.optics, be, angles_rad=ds.angles_rad,
                      param=cfg.model.object_param, checkpoint_slices=cfg.model.checkpoint_slices)
    params = {**model.view.vacuum(), "distances": be.to_real(ctx.distances_m)}
    illum = ds.probe[0] if ds.probe is not None and cfg.init.probe in ("auto", "file") else None
    level = max(float(ctx.sample.mean()), 1e-30)
    if cfg.refine.probe or illum is not None:
        base = np.ones(ds.frame_shape, complex) if illum is None else np.asarray(illum)
        # scaled so that the mean frame level is matched
        base = base * math.sqrt(level / max(np.mean(np.abs(base) ** 2), 1e-30))
        params["probe"] = be.to_complex(base)
    elif abs(level - 1.0) > 0.05:  # flat illumination of the measured level (not flat-fielded)
        params["probe"] = be.to_complex(np.full(ds.frame_shape, math.sqrt(level)))
    return ModelStart(model, params, probe_known=illum is not None)


register_model(ModelSetup("holo", lambda ds: ds.modality == "nearfield" and ds.n_tiles == 1,
                          False, build_holo, "near-field data with one full-field frame per distance"))


# near-field ptychography lives with the other measured-data set-up (cone beam, loss choice)
register_model(NFPTYCHO)
