"""Problem set-up for measured data: cone-beam geometry, loss choice, detector mask, and the
near-field ptychography model with a probe guessed from the data.

* :func:`effective_dataset` -- the Fresnel scaling theorem: a point source (the focus) ``z1`` before
  the sample and a detector ``z2`` behind it is a plane wave with magnification
  ``M = (z1 + z2) / z1``, effective pixel ``p / M`` and effective distance ``z2 / M``; scan
  positions measured in detector pixels grow by ``M`` in effective pixels. Everything after this
  (model, results) lives on the effective grid.
* :func:`decide_loss` -- ``loss.kind = "auto"``: the amplitude loss, for integer (photon-counting)
  frames too (their Poisson noise sets the noise level), and float frames (flat-field corrected,
  simulated, ...).
* :func:`build_nfptycho` -- the model, the initial unknowns and the probe guess.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ...backend import to_host
from ...errors import ConfigError
from ...geometry import is_tomography
from ...io.counts import frames_are_counts
from ...io.datafile import Dataset
from ...models.nfptycho import (
    NearFieldPtychoModel,
    default_pad_px,
    probe_guess_from_frames,
)
from ...probes import probe_modes
from ..loop.positions import search_radius
from ..plan import Choice
from .orientation import orient_positions
from .setup_types import ModelSetup, ModelStart, SetupContext

log = logging.getLogger(__name__)

#: Fresnel number of one pixel above which a plane-wave near-field geometry is suspicious (a
#: detector pixel of tens of micrometres at a metre: the setup is almost surely a cone beam).
SUSPICIOUS_PIXEL_FRESNEL = 5.0

#: At most this many frames (spread over the scan) make the probe guess.
PROBE_GUESS_FRAMES = 256


#: The ``data.*`` geometry fields a configuration may state over the file's values.
STATED_GEOMETRY = ("energy_ev", "pixel_size_m", "slice_thickness_m", "distances_m")


def effective_dataset(cfg, ds: Dataset) -> Dataset:
    """``ds`` with the configuration's geometry: the one place where a ``data.*`` value the
    configuration sets (:data:`STATED_GEOMETRY`) overrides the file's; everything after this reads
    the returned data set. With ``data.source_to_sample_m`` the cone beam is converted to the
    effective plane-wave geometry; ``data.pixel_size_m`` / ``data.distances_m`` are then the
    physical (detector, lab) values. Without it: a warning when the geometry looks like an
    unconverted cone beam."""
    d = cfg.data
    stated = {k: getattr(d, k) for k in STATED_GEOMETRY if getattr(d, k) is not None}
    if "distances_m" in stated:
        if ds.modality != "nearfield":
            raise ConfigError("data.distances_m: far-field data take no propagation distances; "
                              "unset it")
        stated["distances_m"] = np.asarray(stated["distances_m"], float)
        if len(stated["distances_m"]) != ds.n_distances:
            raise ConfigError(f"data.distances_m lists {len(stated['distances_m'])} distances but "
                              f"the data file has {ds.n_distances}; give one distance per measured "
                              "plane or unset it")
    if d.source_to_sample_m is None:
        out = ds.with_geometry(**stated) if stated else ds
        _warn_if_cone_beam(out)
        return out
    if ds.modality != "nearfield":
        raise ConfigError("data.source_to_sample_m: the cone-beam (Fresnel scaling) conversion "
                          "applies to near-field data (holography, near-field ptychography); this "
                          "file holds far-field data. Unset it")
    z1 = d.source_to_sample_m
    z2 = np.asarray(stated.get("distances_m", ds.distances_m), float)
    detector_pixel = stated.get("pixel_size_m", ds.pixel_size_m)
    mags = (z1 + z2) / z1
    if np.ptp(mags) > 1e-6 * mags.max():
        raise ConfigError(f"data.source_to_sample_m: the distances {z2.tolist()} m give different "
                          f"magnifications {mags.round(3).tolist()}; frames at several "
                          "magnifications must first be rescaled to a common pixel (not done by "
                          "Slicewise). Reconstruct one distance at a time")
    m = float(mags[0])
    pixel = detector_pixel / m
    positions = None if ds.positions_px is None else ds.positions_px * m
    meta = {**ds.meta, "cone_beam": {"source_to_sample_m": z1, "magnification": m,
                                     "detector_pixel_m": detector_pixel,
                                     "detector_distances_m": z2.tolist()}}
    log.info("cone beam: z1 = %.4g mm, z2 = %s m, magnification %.4g, effective pixel %.4g nm, "
             "effective distance %s mm", z1 * 1e3, np.round(z2, 6).tolist(), m, pixel * 1e9,
             np.round(z2 / m * 1e3, 6).tolist())
    return ds.with_geometry(energy_ev=stated.get("energy_ev", ds.energy_ev), pixel_size_m=pixel,
                            distances_m=z2 / m, positions_px=positions,
                            slice_thickness_m=stated.get("slice_thickness_m", pixel),
                            object_shape_yx=None, meta=meta)


def _warn_if_cone_beam(ds: Dataset) -> None:
    """A plane-wave near-field geometry whose pixel has a large Fresnel number is most likely a
    cone beam whose focus distance was not given."""
    if ds.modality != "nearfield":
        return
    z = float(np.min(ds.distances_m))
    nf = ds.pixel_size_m ** 2 / (ds.wavelength_m * z)
    if nf > SUSPICIOUS_PIXEL_FRESNEL:
        log.warning("plane-wave geometry with a Fresnel number of %.3g per pixel (pixel %.3g um at "
                    "%.3g m): if the beam diverges from a focus, set data.source_to_sample_m", nf,
                    ds.pixel_size_m * 1e6, z)


def decide_loss(cfg, ds: Dataset) -> Choice | None:
    """``loss.kind = "auto"`` resolved from how the frames are stored (None when the
    configuration sets it; a mismatch with the data is logged)."""
    kind = cfg.loss.kind
    counts = bool(ds.meta.get("integer_counts"))
    if kind != "auto":
        if kind == "amplitude" and counts:
            log.info("loss: amplitude (as configured; the frames are integer counts, for which "
                     "loss.kind = poisson is the maximum-likelihood choice)")
        return None
    if counts:
        # the noise is Poisson (the noise level, the validation's floor), but the fit uses the
        # amplitude loss, which the held-out data's validation measures too: with the Poisson loss
        # the weight search and early stopping of a weak far-field scan at 1e4 photons per
        # pattern reached 0.43, with the amplitude loss 0.74 (benchmarks/README.md)
        return Choice("loss.kind", "amplitude", f"the frames are stored as "
                      f"{ds.meta.get('frames_dtype', 'integers')}, photon counts, whose noise is "
                      "Poisson; the amplitude loss fits them as well and is what the validation "
                      "loss measures (loss.kind = poisson is the maximum-likelihood choice)")
    float_counts, why = frames_are_counts(ds)
    if float_counts:
        # not switched to Poisson: from a wrong starting probe (100 um out of focus) the Poisson
        # fit of a noisy star stalled at correlation 0.2-0.3 where the amplitude fit reached 0.97
        return Choice("loss.kind", "amplitude", f"the frames are floating point holding photon "
                      f"counts ({why}); loss.kind = poisson is the maximum-likelihood choice once "
                      "the probe is right")
    return Choice("loss.kind", "amplitude", f"the frames are "
                  f"{ds.meta.get('frames_dtype', 'floating point')}, not raw counts; the amplitude "
                  "loss is robust to their unknown noise")


def nfptycho_grid(cfg, ds: Dataset, pad: int, tomo: bool):
    """Object grid ``(nz, ny, nx)`` and frame positions (object pixels) for near-field
    ptychography: the scan plus the padded windows plus room for position refinement."""
    fy, fx = ds.frame_shape
    room = 0
    if cfg.refine.positions is not False:   # unset: registration may be turned on
        room = int(math.ceil(max(search_radius(cfg, ds.frame_shape),
                                 cfg.refine.position_max_step_px * 20 if cfg.refine.positions
                                 else 0)))
    margin = pad + room + 1
    pos = np.asarray(ds.positions_px, float)
    pos = pos - pos.min(axis=0) + margin
    ny = int(math.ceil(pos[:, 0].max())) + fy + margin
    nx = int(math.ceil(pos[:, 1].max())) + fx + margin
    if cfg.model.object_shape is not None:
        nz, oy, ox = (int(n) for n in cfg.model.object_shape)
        if oy < ny - 2 * margin or ox < nx - 2 * margin:
            raise ConfigError(f"model.object_shape {cfg.model.object_shape}: the scan needs at least "
                              f"{ny - 2 * margin} x {nx - 2 * margin} object pixels; enlarge it or "
                              "unset it")
        pos += np.array([(oy - ny) / 2, (ox - nx) / 2])
        ny, nx = oy, ox
    else:
        nz = cfg.model.n_slices or (nx if tomo else 1)
    if tomo and nz != nx:
        raise ConfigError(f"model.object_shape ({nz}, {ny}, {nx}): tomography rotates about y, so "
                          "nz must equal nx; unset model.n_slices/object_shape")
    return (nz, ny, nx), pos


def _frames_for_guesses(ds: Dataset):
    """(indices, frames (k, fy, fx)) of up to PROBE_GUESS_FRAMES frames of the first angle."""
    idx = np.unique(np.linspace(0, ds.n_spots - 1, min(ds.n_spots, PROBE_GUESS_FRAMES)).astype(int))
    return idx, ds.frames([0], idx)[0]


def _check_scan_extent(cfg, ds: Dataset, pixel_m: float) -> None:
    """Refuse a scan that cannot be near-field ptychography on this pixel grid: positions that
    all fall within one pixel (a forgotten cone-beam conversion: sample steps of micrometres on
    detector pixels of tens of micrometres) or that span more than 100 frames (a unit error)."""
    span = float(np.ptp(ds.positions_px, axis=0).max())
    frame = max(ds.frame_shape)
    if span < 1.0:
        hint = ("set data.source_to_sample_m (the focus-sample distance) if the beam diverges "
                "from a focus" if cfg.data.source_to_sample_m is None
                else "check data.source_to_sample_m and the translations' units")
        raise ConfigError(f"the {ds.n_tiles} scan positions span only {span:.3g} pixel of "
                          f"{pixel_m * 1e9:.4g} nm: the sample must move by pixels between "
                          f"frames; {hint}")
    if span > 100 * frame:
        raise ConfigError(f"the scan spans {span:.3g} pixels of {pixel_m * 1e9:.4g} nm, more than "
                          f"100 frames of {frame} px: check the units of the translations (CXI: "
                          "metres) and data.source_to_sample_m")


def build_nfptycho(ctx: SetupContext) -> ModelStart:
    """Model and initial unknowns for near-field ptychography (registered as ``nfptycho``)."""
    cfg, ds, be, optics = ctx.config, ctx.dataset, ctx.backend, ctx.optics
    distance_m = float(ctx.distances_m[0])
    _check_scan_extent(cfg, ds, optics.pixel_size_m)
    pad = default_pad_px(ds.frame_shape, optics.pixel_size_m, distance_m, optics.wavelength_m)
    idx, frames = _frames_for_guesses(ds)
    bad = None if ds.mask is None else ds.mask == 0
    if cfg.data.scan_orientation == "auto" and ds.n_tiles == ds.n_spots:
        m, message = orient_positions(frames, ds.positions_px[idx], None if bad is None else ~bad)
        log.warning(message) if m is not None else log.info(message)
        if m is not None:
            turned = ds.positions_px @ m.T
            ds = ds.with_geometry(positions_px=turned - turned.min(axis=0))
    shape, pos = nfptycho_grid(cfg, ds, pad, is_tomography(ds.angles_rad))
    model = NearFieldPtychoModel(shape, ds.frame_shape, optics, be, distance_m=distance_m,
                                 pad_px=pad, angles_rad=ds.angles_rad, positions_px=pos,
                                 param=cfg.model.object_param, margin_px=2,
                                 checkpoint_slices=cfg.model.checkpoint_slices)
    mean = frames.mean(axis=0)
    if ds.probe is not None and cfg.init.probe in ("auto", "file"):
        probe = np.pad(ds.probe[0], pad, mode="edge")
        origin = "the data file's probe"
        known = True
    else:
        known = False
        probe = probe_guess_from_frames(mean, pad, optics, distance_m, bad)
        origin = "the mean frame propagated back to the sample (flat phase)"
    log.info("near-field ptychography: %d positions, frame %s padded by %d px, object %s, probe "
             "from %s", len(pos), ds.frame_shape, pad, shape, origin)
    probe = probe[None] if probe.ndim == 2 else probe
    if cfg.model.probe_modes > probe.shape[0]:
        probe = probe_modes(probe[0], cfg.model.probe_modes, seed=cfg.init.seed)
    # scale the probe so that the model with an empty object reproduces the mean frame's level
    good = np.ones(ds.frame_shape, bool) if bad is None else ~bad
    fy, fx = ds.frame_shape
    field = to_host(model.detector.fwd(be.to_complex(probe)))[..., pad:pad + fy, pad:pad + fx]
    modelled = (np.abs(field).astype(float) ** 2).sum(axis=0)
    probe = probe * math.sqrt(float(mean[good].mean()) / max(float(modelled[good].mean()), 1e-30))
    params = {**model.view.vacuum(), "probe": be.to_complex(probe), "positions": be.to_real(pos)}
    return ModelStart(model, params, float(np.sum(np.abs(probe) ** 2)), pos.copy(), known)


#: Near-field ptychography's set-up (registered by :mod:`.model_setup`).
NFPTYCHO = ModelSetup("nfptycho", lambda ds: (ds.modality == "nearfield" and ds.n_tiles > 1
                                               and ds.n_distances == 1),
                      True, build_nfptycho, "near-field data with scan positions at one distance "
                      "(near-field ptychography)")
