"""From a configuration and a data set to a differentiable problem: model, unknowns, loss.

:func:`build_problem` resolves geometry (file values, overridden by the configuration), decides the
object grid, builds the forward model, the initial parameters and the measured data in the form
the loss wants; :meth:`Problem.loss` is the function the solver differentiates.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import ops
from ..backend import Backend, to_host
from ..errors import ConfigError, DataFileError, SlicewiseError
from ..io.datafile import Dataset
from ..models.common import Optics
from ..models.holo import HoloModel
from ..models.ptycho import PtychoModel
from ..probes import gaussian_probe, probe_modes
from . import regularizers
from .config import ReconConfig
from .losses import amplitude_loss_from_field, poisson_nll_from_field

log = logging.getLogger(__name__)

#: Intensity floor of the Poisson likelihood, relative to the mean measured intensity per pixel.
#: Where the model predicts (almost) no photons but some were counted, the gradient of
#: ``I - y log(I + eps)`` with respect to the field grows like ``y / |psi|``: with a tiny absolute
#: ``eps`` the single-precision round-off of dark far-field pixels (|psi|^2 ~ 1e-10 of the photon
#: counts) produces gradients 1e4 times the physical ones and Adam stalls (phase correlation 0.2
#: instead of 0.999 on a noisy Siemens star). 1e-5 of the mean level (~0.01 photon in a 1e6-photon
#: 32x32 frame) bounds them and is far below one photon; results are flat for 1e-7..1e-4.
POISSON_EPS_REL = 1e-5

#: Preload every frame onto the device when the whole data set is smaller than this.
PRELOAD_LIMIT_BYTES = 2 * 1024 ** 3


@dataclass
class Problem:
    """Everything the solver loop needs; arrays live on ``backend``."""

    config: ReconConfig
    dataset: Dataset
    backend: Backend
    model: object
    kind: str                                   # "ptycho" | "holo"
    object_shape: tuple
    params: dict                                # current unknowns (all, refined or not)
    measured: object | None                     # preloaded (A, S, fy, fx) amplitudes/intensities
    mask: object | None
    probe_power: float | None = None            # photons per frame of the initial probe
    initial_positions: np.ndarray | None = None
    tomo: bool = False
    extra: dict = field(default_factory=dict)

    # ---- data ----------------------------------------------------------------------------
    def measured_batch(self, angle_idx, spot_idx):
        """Measured amplitudes (amplitude loss) or intensities (Poisson), ``(A, S, fy, fx)``."""
        if self.measured is not None:
            # gather only the batch's frames (m[a][:, s] would copy every frame of the angles first)
            a, sp = np.asarray(angle_idx), np.asarray(spot_idx)
            return self.measured[self.backend.asarray(a[:, None]), self.backend.asarray(sp[None, :])]
        frames = self.dataset.frames(angle_idx, spot_idx)
        if self.config.loss.kind == "amplitude":
            frames = np.sqrt(np.maximum(frames, 0))
        return self.backend.to_real(frames)

    # ---- model -----------------------------------------------------------------------------
    def fields(self, params: dict, angle_idx, spot_idx):
        """Detector fields: ptycho ``(A, S, m, fy, fx)``, holo ``(A, D, fy, fx)``."""
        if self.kind == "ptycho":
            return ops.stack(self.model.exit_fields(params, angle_idx, spot_idx), axis=0)
        return self.model.detector_fields(params, angle_idx, spot_idx)

    def predict_intensity(self, params: dict, angle_idx, spot_idx):
        f = self.fields(params, angle_idx, spot_idx)
        inten = ops.abs2(f)
        return ops.sum(inten, axis=2) if self.kind == "ptycho" else inten

    def loss(self, params: dict, angle_idx, spot_idx, measured) -> tuple:
        """``(total, {term: value})`` for one minibatch; ``total`` is recorded on the tape."""
        f = self.fields(params, angle_idx, spot_idx)
        mode_axis = 2 if self.kind == "ptycho" else None
        if self.config.loss.kind == "amplitude":
            data_term = amplitude_loss_from_field(f, measured, self.mask, mode_axis=mode_axis)
        else:
            data_term = poisson_nll_from_field(f, measured, self.mask, mode_axis=mode_axis,
                                               eps=self.extra.get("poisson_eps", 1e-9))
        terms = {"data": data_term}
        reg = self.config.regularization
        total = data_term
        if reg.l1_weight > 0 or reg.tv_weight > 0:  # no full-object work when unregularised
            norm = self._penalty_norm(params, data_term)
            if not norm:
                return total, terms
            obj_terms = self._object_terms(params)
            for name, weight, penalty in (("l1", reg.l1_weight, regularizers.l1),
                                          ("tv", reg.tv_weight,
                                           lambda t: regularizers.total_variation_3d(t, reg.tv_eps))):
                if weight > 0:
                    value = penalty(obj_terms[0])
                    for t in obj_terms[1:]:
                        value = ops.add(value, penalty(t))
                    terms[name] = ops.mul(value, weight * norm[name])
                    total = ops.add(total, terms[name])
        return total, terms

    def _penalty_norm(self, params, data_term) -> dict | None:
        """Factors that make regularisation weights relative to the data term: at the first
        evaluation with a non-empty object, each penalty times its factor equals the data loss, so
        a weight of 0.01 starts the penalty at 1 % of it. Before that (vacuum start, where every
        penalty and its gradient vanish) None: the penalties are skipped."""
        norm = self.extra.get("penalty_norm")
        if norm is not None:
            return norm
        from ..autodiff import data as _data  # noqa: PLC0415

        obj = {k: _data(params[k]) for k in ("delta", "beta", "object") if k in params}
        xp = self.backend.xp
        if "delta" in obj:
            unit = max(float(xp.abs(obj["delta"]).max()), float(xp.abs(obj["beta"]).max()))
        else:
            unit = float(xp.abs(obj["object"] - 1).max())
        if not unit > 0:
            return None
        # penalties see the object in units of its largest value (tv_eps is relative to it)
        self.extra["delta_scale"] = unit
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
        self.extra["penalty_norm"] = norm
        return norm

    def _object_terms(self, params):
        """Quantities the regularisers act on, scaled to order 1 (delta/beta are ~1e-6)."""
        if self.model.view.param == "delta_beta":
            return [ops.mul(params["delta"], 1.0 / self.extra["delta_scale"]),
                    ops.mul(params["beta"], 1.0 / self.extra["delta_scale"])]
        return [ops.sub(params["object"], 1.0)]


def _resolve_path(p: str | None, base_dir: Path) -> Path | None:
    if p is None:
        return None
    path = Path(p).expanduser()
    return path if path.is_absolute() else base_dir / path


def resolve_geometry(cfg: ReconConfig, ds: Dataset) -> dict:
    """Geometry from the file, each value overridden when the configuration sets it."""
    d = cfg.data
    geo = {
        "energy_ev": d.energy_ev or ds.energy_ev,
        "pixel_size_m": d.pixel_size_m or ds.pixel_size_m,
        "slice_thickness_m": d.slice_thickness_m or ds.slice_thickness_m,
        "distances_m": np.asarray(d.distances_m, float) if d.distances_m else ds.distances_m,
    }
    if ds.modality == "nearfield" and geo["distances_m"] is not None \
            and len(geo["distances_m"]) != ds.n_distances:
        raise ConfigError(f"data.distances_m lists {len(geo['distances_m'])} distances but the data file "
                          f"has {ds.n_distances}; give one distance per measured plane or unset it")
    return geo


def decide_kind(cfg: ReconConfig, ds: Dataset) -> str:
    kind = cfg.model.kind
    natural = "ptycho" if ds.modality == "farfield" else "holo"
    if kind == "auto":
        return natural
    if kind != natural:
        raise ConfigError(f"model.kind = {kind!r} does not fit {ds.modality} data; use "
                          f"model.kind = {natural!r} or 'auto'")
    return kind


def decide_object_shape(cfg: ReconConfig, ds: Dataset, kind: str, tomo: bool) -> tuple:
    if cfg.model.object_shape is not None:
        shape = tuple(int(n) for n in cfg.model.object_shape)
    else:
        ny, nx = ds.object_shape_yx if kind == "ptycho" else ds.frame_shape
        nz = cfg.model.n_slices or (nx if tomo else 1)
        shape = (nz, ny, nx)
    nz, ny, nx = shape
    if kind == "holo" and (ny, nx) != tuple(ds.frame_shape):
        raise ConfigError(f"model.object_shape {shape}: for holography (ny, nx) must equal the frame "
                          f"shape {ds.frame_shape}")
    if tomo and nz != nx:
        raise ConfigError(f"model.object_shape {shape}: tomography rotates about y, so nz must equal "
                          f"nx ({nx}); unset model.n_slices/object_shape to get cubic voxels")
    if kind == "ptycho" and ds.positions_px is not None:
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
    if nz > 4 * max(ny, nx) or nz > 4096:
        raise ConfigError(f"model.n_slices = {nz} is more than sensible for a {ny}x{nx} object "
                          "(at most 4 x its width); use fewer, thicker slices")
    return shape


def _initial_probe(cfg: ReconConfig, ds: Dataset, frame_shape, power: float, base_dir: Path):
    src = cfg.init.probe
    probe = None
    origin = "the data file's /probe"
    if cfg.init.probe_path:
        path = _resolve_path(cfg.init.probe_path, base_dir)
        try:
            if path.suffix == ".npy":
                probe = np.load(path)
            else:
                from ..io.results import read_result  # noqa: PLC0415

                probe = read_result(path)["probe"]
        except (OSError, KeyError, ValueError, SlicewiseError) as exc:
            raise ConfigError(f"init.probe_path: cannot read a probe from {path} ({exc})") from None
        origin = f"init.probe_path ({path})"
    elif src in ("auto", "file") and ds.probe is not None:
        probe = ds.probe
    elif src == "file":
        raise ConfigError("init.probe = 'file' but the data file holds no probe; use 'gaussian' "
                          "or set init.probe_path")
    if probe is None:
        fwhm_px = (cfg.init.probe_fwhm_m / ds.pixel_size_m) if cfg.init.probe_fwhm_m \
            else min(frame_shape) / 4
        probe = gaussian_probe(frame_shape, fwhm_px)
        origin = "the gaussian probe guess"
    probe = np.asarray(probe, np.complex128)
    if probe.ndim == 2:
        probe = probe[None]
    if probe.ndim != 3 or tuple(probe.shape[-2:]) != tuple(frame_shape):
        raise ConfigError(f"{origin}: the initial probe has shape {probe.shape} but the detector "
                          f"frames are {tuple(frame_shape)}; give a (n_modes, py, px) probe of the "
                          "frame size")
    if cfg.model.probe_modes > probe.shape[0]:
        probe = probe_modes(probe[0], cfg.model.probe_modes, seed=cfg.init.seed)
    # scale to the measured photons per frame so the loss starts near its optimum scale
    probe *= math.sqrt(power / float(np.sum(np.abs(probe) ** 2)))
    return probe


def build_problem(cfg: ReconConfig, ds: Dataset, backend: Backend, base_dir: Path) -> Problem:
    """Resolve geometry and shapes, build the model and the initial unknowns."""
    kind = decide_kind(cfg, ds)
    geo = resolve_geometry(cfg, ds)
    tomo = ds.n_angles > 1 or abs(float(ds.angles_rad[0])) > 0
    shape = decide_object_shape(cfg, ds, kind, tomo)
    if ds.modality == "nearfield" and ds.n_tiles != 1:
        raise DataFileError(f"{ds.source_path}: near-field data with {ds.n_tiles} tiles per distance "
                            "are not supported yet (one full-field frame per distance)")
    optics = Optics(geo["energy_ev"], geo["pixel_size_m"], geo["slice_thickness_m"], cfg.model.propagator)
    be = backend
    sample = ds.frames(np.arange(min(ds.n_angles, 4)), np.arange(min(ds.n_spots, 16)))
    mean_frame_photons = float(sample.sum(axis=(-2, -1)).mean())
    extra = {"poisson_eps": max(POISSON_EPS_REL * float(sample.mean()), 1e-30)}
    if kind == "ptycho":
        pos = np.asarray(ds.positions_px, float)
        model = PtychoModel(shape, ds.frame_shape, optics, be, angles_rad=ds.angles_rad, positions_px=pos,
                            param=cfg.model.object_param,
                            margin_px=int(math.ceil(4 + (cfg.refine.position_max_step_px * 50
                                                         if cfg.refine.positions else 0))),
                            checkpoint_slices=cfg.model.checkpoint_slices)
        probe = _initial_probe(cfg, ds, ds.frame_shape, mean_frame_photons, base_dir)
        params = {**model.view.vacuum(), "probe": be.to_complex(probe), "positions": be.to_real(pos)}
        initial_positions = pos.copy()
        probe_power = float(np.sum(np.abs(probe) ** 2))
    else:
        illum = None
        if ds.probe is not None and cfg.init.probe in ("auto", "file"):
            illum = ds.probe[0]
        model = HoloModel(shape, optics, be, angles_rad=ds.angles_rad, param=cfg.model.object_param,
                          checkpoint_slices=cfg.model.checkpoint_slices)
        params = {**model.view.vacuum(), "distances": be.to_real(geo["distances_m"])}
        if cfg.refine.probe or illum is not None:
            base = np.ones(ds.frame_shape, complex) if illum is None else np.asarray(illum)
            # plane-wave intensity so that the mean frame level is matched
            base = base * math.sqrt(max(sample.mean(), 1e-30) / max(np.mean(np.abs(base) ** 2), 1e-30))
            params["probe"] = be.to_complex(base)
        elif abs(sample.mean() - 1.0) > 0.05:
            params["probe"] = be.to_complex(np.full(ds.frame_shape, math.sqrt(max(sample.mean(), 1e-30))))
        initial_positions = None
        probe_power = None
    if cfg.model.object_param == "delta_beta":
        params["delta"] += be.real_dtype(cfg.init.delta)
        params["beta"] += be.real_dtype(cfg.init.beta)
    if cfg.init.object_path:
        _load_object(params, cfg, shape, be, base_dir)
    mask = _load_mask(cfg, ds, be, base_dir)
    total_bytes = ds.n_angles * ds.n_spots * int(np.prod(ds.frame_shape)) * 4
    measured = None
    if total_bytes <= PRELOAD_LIMIT_BYTES:
        frames = ds.frames(None, None)
        if cfg.loss.kind == "amplitude":
            frames = np.sqrt(np.maximum(frames, 0))
        measured = be.to_real(frames)
    return Problem(cfg, ds, be, model, kind, shape, params, measured, mask, probe_power,
                   initial_positions, tomo, extra)


def _load_mask(cfg, ds, be, base_dir):
    if not cfg.loss.mask_path:
        return None
    path = _resolve_path(cfg.loss.mask_path, base_dir)
    try:
        if path.suffix == ".npy":
            m = np.load(path)
        else:
            import h5py  # noqa: PLC0415

            with h5py.File(path, "r") as f:
                m = f["mask"][()]
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"loss.mask_path: cannot read a mask from {path} (a .npy array or an HDF5 "
                          f"file with a 'mask' dataset): {exc}") from None
    m = np.asarray(m, float)
    if m.shape != tuple(ds.frame_shape):
        raise ConfigError(f"loss.mask_path: mask shape {m.shape} differs from the frame shape "
                          f"{tuple(ds.frame_shape)}")
    if ds.modality == "farfield":  # masks are drawn on centred detector images
        m = np.fft.ifftshift(m)
    return be.to_real(m)


def _load_object(params, cfg, shape, be, base_dir):
    from ..io.results import read_result  # noqa: PLC0415

    path = _resolve_path(cfg.init.object_path, base_dir)
    try:
        res = read_result(path)
    except (OSError, KeyError, ValueError) as exc:
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
