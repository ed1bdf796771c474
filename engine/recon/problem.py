"""From a configuration and a data set to a differentiable problem: model, unknowns, loss.

:func:`build_problem` takes the geometry (the file's, overridden by the configuration:
:func:`.setup.measured.effective_dataset`), decides the
object grid, lets the chosen model set-up (:mod:`.setup.model_setup`) build the forward model and the
initial unknowns, and prepares the measured data in the form the loss wants; :meth:`Problem.loss`
is the function the solver differentiates. Nothing here depends on which model it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import ops
from ..autodiff import data as _data
from ..backend import Backend, to_host
from ..errors import ConfigError, SlicewiseError
from ..geometry import is_tomography
from ..io.arrays import load_array, resolve_path
from ..io.datafile import Dataset
from ..io.object_grid import object_grid_note
from ..io.results import read_result
from ..models.base import MODE_AXIS, ForwardModel, intensity
from ..models.common import Optics
from .config import ReconConfig
from .loop import regularizers
from .loop.losses import LossSpec, get_loss
from .plan import Choice, RunPlan
from .setup.measured import decide_loss, effective_dataset
from .setup.memory import PRELOAD_LIMIT_BYTES, check_object_memory  # noqa: F401 - re-exported
from .setup.model_setup import ModelSetup, SetupContext, choose_model

log = logging.getLogger(__name__)

#: The validation metric's loss (:meth:`Problem.amplitude_misfit`).
AMPLITUDE = get_loss("amplitude")



@dataclass
class Problem:
    """Everything the solver loop needs; arrays live on ``backend``."""

    config: ReconConfig
    dataset: Dataset
    backend: Backend
    model: ForwardModel
    object_shape: tuple
    params: dict                                # current unknowns (all, refined or not)
    measured: object | None                     # preloaded frames (A', S', fy, fx), prepared
    mask: object | None
    loss_spec: LossSpec
    mean_intensity: float                       # measured, per pixel (scales loss floors)
    probe_power: float | None = None            # photons per frame of the initial probe
    initial_positions: np.ndarray | None = None
    probe_known: bool = False                   # the starting probe is the file's or init.probe_path's
    # detector weights of the validation loss when islands of pixels are held out (else None);
    # ``mask`` then excludes them from the fit
    validation_mask: object | None = None
    # angles whose frames the fit may use (None: all); held-out angles are left out of the
    # starting guess too
    fit_angles: np.ndarray | None = None
    # regularisation, fixed at the first evaluation with a non-empty object (_penalty_norm):
    object_unit: float = 1.0                    # the object's largest value; penalties see obj/unit
    penalty_norm: dict | None = None            # penalty name -> factor relative to the data term
    # rows/columns of ``measured`` for each angle/spot of the data set (-1: not preloaded here)
    measured_index: tuple | None = None
    # (id of the unknowns' dict, per scan spot ``(n_spots,)`` host weights of the frames in the
    # data term) or None (all 1): set by position correction (loop/positions.py) while some frames
    # are not yet placed, for the unknowns of the fit that set them (set_frame_weights)
    frame_weights: tuple | None = None

    @property
    def kind(self) -> str:
        """The model's name (``model.kind`` after ``auto`` was resolved)."""
        return self.model.name

    @property
    def tomo(self) -> bool:
        return self.model.view.tomo

    @property
    def probe_is_guess(self) -> bool:
        """Whether the run starts from a guessed probe (its own guess, a gaussian, a flat
        illumination) rather than one it was given (the data file's or ``init.probe_path``'s)."""
        return "probe" in self.params and not self.probe_known

    # ---- data ----------------------------------------------------------------------------
    def measured_batch(self, angle_idx, spot_idx):
        """Measured frames prepared for the loss (amplitudes or intensities), ``(A, S, fy, fx)``."""
        if self.measured is not None:
            rows = self.measured_index[0][np.asarray(angle_idx)]
            cols = self.measured_index[1][np.asarray(spot_idx)]
            if rows.min(initial=0) >= 0 and cols.min(initial=0) >= 0:
                # gather only the batch's frames (m[a][:, s] would copy every frame of the angles)
                return self.measured[self.backend.asarray(rows[:, None]),
                                     self.backend.asarray(cols[None, :])]
        return self.backend.to_real(self.loss_spec.prepare(self.dataset.frames(angle_idx, spot_idx)))

    # ---- model -----------------------------------------------------------------------------
    def fields(self, params: dict, angle_idx, spot_idx):
        """Detector fields ``(A, S, m, fy, fx)`` (see :class:`~..models.base.ForwardModel`)."""
        return self.model.fields(params, angle_idx, spot_idx)

    def predict_intensity(self, params: dict, angle_idx, spot_idx):
        """Modelled intensities ``(A, S, fy, fx)`` in model convention."""
        return intensity(self.fields(params, angle_idx, spot_idx))

    def loss(self, params: dict, angle_idx, spot_idx, measured, weights=None) -> tuple:
        """``(total, {term: value})`` for one minibatch; ``total`` is recorded on the tape.
        ``weights``: ``(A, S)`` host weights of the batch's frames (held-out frames 0), or None;
        :attr:`frame_weights` multiply them where set."""
        weights = self._with_frame_weights(weights, angle_idx, spot_idx)
        data_term = self.data_loss(params, angle_idx, spot_idx, measured,
                                   self.weighted_mask(self.mask, weights))
        terms = {"data": data_term}
        reg = self.config.regularization
        total = data_term
        if reg.l1_weight > 0 or (reg.tv_weight or 0) > 0:  # no full-object work unregularised
            norm = self._penalty_norm(params, data_term)
            if not norm:
                return total, terms
            obj_terms = self._object_terms(params)
            for name, weight, penalty in (("l1", reg.l1_weight, regularizers.l1),
                                          ("tv", reg.tv_weight or 0.0,
                                           lambda t: regularizers.total_variation_3d(t, reg.tv_eps))):
                if weight > 0:
                    value = penalty(obj_terms[0])
                    for t in obj_terms[1:]:
                        value = ops.add(value, penalty(t))
                    terms[name] = ops.mul(value, weight * norm[name])
                    total = ops.add(total, terms[name])
        return total, terms

    def data_loss(self, params: dict, angle_idx, spot_idx, measured, mask):
        """The data term alone, with detector weights ``mask`` (broadcast against
        ``(A, S, fy, fx)``; None = every pixel)."""
        f = self.fields(params, angle_idx, spot_idx)
        return self.loss_spec.field_loss(f, measured, mask, MODE_AXIS, self.mean_intensity)

    def amplitude_misfit(self, params: dict, angle_idx, spot_idx, mask):
        """``(loss, fields)``: the amplitude loss of the minibatch whatever loss the fit uses
        (the validation metric), and the model's fields it compared. (The Poisson deviance of sparse far-field counts is least near the empty
        object's prediction, so it would rank the earliest, vacuum-like estimates best.)"""
        measured = self.measured_batch(angle_idx, spot_idx)
        if self.loss_spec.name != "amplitude":   # prepared as intensities
            measured = self.backend.xp.sqrt(self.backend.xp.maximum(measured, 0))
        f = self.fields(params, angle_idx, spot_idx)
        return AMPLITUDE.field_loss(f, measured, mask, MODE_AXIS, self.mean_intensity), f

    def weighted_mask(self, mask, weights):
        """``mask`` times per-frame ``weights`` ``(A, S)`` (None: ``mask`` itself)."""
        if weights is None:
            return mask
        w = self.backend.to_real(np.asarray(weights, np.float32)[:, :, None, None])
        return w if mask is None else w * mask

    def set_frame_weights(self, weights) -> None:
        """Per scan spot weights ``(n_spots,)`` of the frames in the data term (None: all 1), for
        the unknowns held now: a weight search's trial fit (its own unknowns) starts without."""
        self.frame_weights = None if weights is None else \
            (id(self.params), np.asarray(weights, np.float32))

    def _with_frame_weights(self, weights, angle_idx, spot_idx):
        """``weights`` ``(A, S)`` (None: all 1) times the frame weights of the spots, or
        ``weights`` itself while none are set for the unknowns held now."""
        if self.frame_weights is None or self.frame_weights[0] != id(self.params):
            return weights
        fw = self.frame_weights[1][np.asarray(spot_idx)][None, :]
        if weights is None:
            return np.broadcast_to(fw, (len(np.atleast_1d(angle_idx)), fw.shape[1]))
        return np.asarray(weights, np.float32) * fw

    def _penalty_norm(self, params, data_term) -> dict | None:
        """Factors that make regularisation weights relative to the data term: at the first
        evaluation with a non-empty object, each penalty times its factor equals the data loss, so
        a weight of 0.01 starts the penalty at 1 % of it. Before that (vacuum start, where every
        penalty and its gradient vanish) None: the penalties are skipped."""
        norm = self.penalty_norm
        if norm is not None:
            return norm

        obj = {k: _data(params[k]) for k in ("delta", "beta", "object") if k in params}
        xp = self.backend.xp
        if "delta" in obj:
            unit = max(float(xp.abs(obj["delta"]).max()), float(xp.abs(obj["beta"]).max()))
        else:
            unit = float(xp.abs(obj["object"] - 1).max())
        if not unit > 0:
            return None
        # penalties see the object in units of its largest value (tv_eps is relative to it)
        self.object_unit = unit
        plain = self._object_terms(obj)
        reg = self.config.regularization
        f0 = float(to_host(_data(data_term)))
        norm = {}
        for name, penalty in (("l1", regularizers.l1),
                              ("tv", lambda t: regularizers.total_variation_3d(t, reg.tv_eps))):
            p0 = sum(float(to_host(_data(penalty(t)))) for t in plain)
            norm[name] = f0 / p0 if p0 > 0 else 0.0
        log.info("regularisation weights are relative to the data loss %.4g: l1 x %.4g, tv x %.4g "
                 "in absolute terms", f0, norm["l1"], norm["tv"])
        self.penalty_norm = norm
        return norm

    def hold_out_pixels(self, pixels: np.ndarray) -> None:
        """Leave the detector pixels where ``pixels`` (``(fy, fx)``, 1 = held out) is 1 out of
        the fit; the validation loss uses only them."""
        base = np.ones(self.dataset.frame_shape, np.float32) if self.mask is None \
            else np.asarray(to_host(self.mask), np.float32)
        pix = np.fft.ifftshift(pixels) if self.model.unshifted_frames else pixels
        self.mask = self.backend.to_real(base * (1 - pix))
        self.validation_mask = self.backend.to_real(base * pix)

    def n_measurements(self) -> int:
        """How many measured values the data term averages over: every frame's detector pixels
        that the ``(fy, fx)`` mask (and any held-out pixels) leaves in the fit."""
        ds = self.dataset
        per = int(np.prod(ds.frame_shape)) if self.mask is None else \
            int(np.count_nonzero(to_host(self.mask)))
        return ds.n_angles * ds.n_spots * per

    def restore_held_out_pixels(self) -> None:
        """Fit every pixel again (after :meth:`hold_out_pixels`)."""
        if self.validation_mask is not None:
            self.mask = self.mask + self.validation_mask
            self.validation_mask = None

    def state_dict(self) -> dict:
        """What a checkpoint needs beyond the unknowns: the regularisation scale fixed at the
        first evaluation (a resumed run must not fix it again on a different estimate)."""
        if self.penalty_norm is None:
            return {}
        return {"penalty_norm": dict(self.penalty_norm), "object_unit": float(self.object_unit)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("penalty_norm"):
            self.penalty_norm = {k: float(v) for k, v in state["penalty_norm"].items()}
            self.object_unit = float(state["object_unit"])

    def _object_terms(self, params):
        """Quantities the regularisers act on, scaled to order 1 (delta/beta are ~1e-6)."""
        if self.model.view.param == "delta_beta":
            return [ops.mul(params["delta"], 1.0 / self.object_unit),
                    ops.mul(params["beta"], 1.0 / self.object_unit)]
        return [ops.sub(params["object"], 1.0)]


def decide_object_shape(cfg: ReconConfig, ds: Dataset, setup: ModelSetup, tomo: bool) -> tuple:
    """The object grid ``(nz, ny, nx)``: the configuration's, else the scanned area (scanning
    models) or the frame (full-field models), with ``nz`` from ``model.n_slices`` or cubic for
    tomography."""
    if cfg.model.object_shape is not None:
        shape = tuple(int(n) for n in cfg.model.object_shape)
    else:
        note = object_grid_note(ds) if setup.scanned else None
        if note:
            log.warning(note)
        ny, nx = ds.object_shape_yx if setup.scanned else ds.frame_shape
        nz = cfg.model.n_slices or (nx if tomo else 1)
        shape = (nz, ny, nx)
    nz, ny, nx = shape
    if not setup.scanned and (ny, nx) != tuple(ds.frame_shape):
        raise ConfigError(f"model.object_shape {shape}: for {setup.name} (a full-field model) (ny, nx) "
                          f"must equal the frame shape {ds.frame_shape}")
    if tomo and nz != nx:
        raise ConfigError(f"model.object_shape {shape}: tomography rotates about y, so nz must equal "
                          f"nx ({nx}); unset model.n_slices/object_shape to get cubic voxels")
    if setup.scanned and ds.positions_px is not None:
        _check_windows_overlap(cfg, ds, shape)
    if nz > 4 * max(ny, nx) or nz > 4096:
        raise ConfigError(f"model.n_slices = {nz} is more than sensible for a {ny}x{nx} object "
                          "(at most 4 x its width); use fewer, thicker slices")
    return shape


def _check_windows_overlap(cfg: ReconConfig, ds: Dataset, shape: tuple) -> None:
    """Refuse an object grid that some probe window misses entirely."""
    _, ny, nx = shape
    pos, (py, px) = np.asarray(ds.positions_px, float), ds.frame_shape
    off = (pos[:, 0] >= ny) | (pos[:, 1] >= nx) | (pos[:, 0] + py <= 0) | (pos[:, 1] + px <= 0)
    if np.any(off):
        i = int(np.flatnonzero(off)[0])
        src = ("model.object_shape" if cfg.model.object_shape is not None
               else "the data file's object grid")
        raise ConfigError(f"{src} {shape}: scan position {i} (y, x) = "
                          f"{tuple(pos[i].round(2).tolist())} puts its {py}x{px} probe window "
                          f"entirely outside the {ny}x{nx} object ({int(off.sum())} of {len(pos)} "
                          "positions do); enlarge model.object_shape or unset it to use the "
                          "scanned area")


def build_problem(plan: RunPlan, ds: Dataset, backend: Backend, base_dir: Path,
                  distributed=None) -> Problem:
    """Resolve geometry and shapes, build the model and the initial unknowns, and preload the
    measured frames this process evaluates (under MPI, ``distributed``: only its own). The model
    and loss chosen for ``auto`` are adopted into ``plan``."""
    cfg = plan.config
    ds = effective_dataset(cfg, ds)   # the configuration's geometry over the file's; cone beam
    setup = choose_model(cfg, ds)
    if cfg.model.kind == "auto":
        plan.adopt(Choice("model.kind", setup.name, f"the file holds {setup.data_words}"))
    shape = decide_object_shape(cfg, ds, setup, is_tomography(ds.angles_rad))
    check_object_memory(cfg, ds, shape, backend)  # before anything object-sized is allocated
    optics = Optics(ds.energy_ev, ds.pixel_size_m, ds.slice_thickness_m, cfg.model.propagator)
    be = backend
    sample = ds.frames(np.arange(min(ds.n_angles, 4)), np.arange(min(ds.n_spots, 16)))
    start = setup.build(SetupContext(cfg, ds, be, Path(base_dir), optics, shape, ds.distances_m,
                                     sample))
    params = start.params
    shape = tuple(start.model.object_shape)  # a model may grow the grid (near-field windows)
    if cfg.model.object_param == "delta_beta":
        params["delta"] += be.real_dtype(cfg.init.delta)
        params["beta"] += be.real_dtype(cfg.init.beta)
    if cfg.init.object_path:
        _load_object(params, cfg, shape, be, base_dir)
    mask = _load_mask(cfg, ds, start.model, be, base_dir)
    plan.adopt(decide_loss(cfg, ds))
    spec = get_loss(cfg.loss.kind)
    measured, index = _preload(ds, spec, be, start.model, distributed)
    return Problem(cfg, ds, be, start.model, shape, params, measured, mask, spec,
                   float(sample.mean()), start.probe_power, start.initial_positions,
                   start.probe_known, measured_index=index)


def _preload(ds: Dataset, spec: LossSpec, be: Backend, model, distributed):
    """The frames this process owns on the device, prepared for the loss, when they are fewer
    than :data:`PRELOAD_LIMIT_BYTES`; else ``(None, None)`` and frames are read per minibatch."""
    if distributed is None:
        angles, spots = np.arange(ds.n_angles), np.arange(ds.n_spots)
    else:
        angles, spots = distributed.owned(ds.n_angles, ds.n_spots, model.splits_spots)
        if len(angles) == 0 or len(spots) == 0:  # more ranks than frames to share
            return None, None
    if len(angles) * len(spots) * int(np.prod(ds.frame_shape)) * 4 > PRELOAD_LIMIT_BYTES:
        return None, None
    index = (np.full(ds.n_angles, -1), np.full(ds.n_spots, -1))
    index[0][angles], index[1][spots] = np.arange(len(angles)), np.arange(len(spots))
    return be.to_real(spec.prepare(ds.frames(angles, spots))), index


def _load_mask(cfg, ds, model, be, base_dir):
    """Detector weights (1 = use, 0 = bad): the data file's mask times ``loss.mask_path``'s."""
    if not cfg.loss.mask_path:
        if ds.mask is None:
            return None
        log.info("detector mask from the data file: %d bad pixel(s) excluded from the loss",
                 int((ds.mask == 0).sum()))
        return be.to_real(ds.mask)
    m = load_array(resolve_path(cfg.loss.mask_path, base_dir), "loss.mask_path", ("mask",),
                   allow_external=cfg.data.allow_external_links)
    m = np.asarray(m, float)
    if m.shape != tuple(ds.frame_shape):
        raise ConfigError(f"loss.mask_path: mask shape {m.shape} differs from the frame shape "
                          f"{tuple(ds.frame_shape)}")
    if model.unshifted_frames:  # masks are drawn on centred detector images
        m = np.fft.ifftshift(m)
    if ds.mask is not None:
        m = m * ds.mask
    return be.to_real(m)


def _load_object(params, cfg, shape, be, base_dir):
    path = resolve_path(cfg.init.object_path, base_dir)
    try:
        res = read_result(path, allow_external=cfg.data.allow_external_links)
    except (OSError, KeyError, ValueError, SlicewiseError) as exc:
        raise ConfigError(f"init.object_path: cannot read {path}: {exc}") from None
    for key in ("delta", "beta", "object"):
        if key in params and res.get(key) is not None:
            arr = np.asarray(res[key])
            if arr.shape != shape:
                raise ConfigError(f"init.object_path: {key} has shape {arr.shape}, the object grid is "
                                  f"{shape}")
            params[key] = be.asarray(arr, dtype=params[key].dtype)


def host_copy(a):
    return None if a is None else np.array(to_host(a))
