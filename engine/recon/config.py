"""The typed reconstruction configuration: nested dataclasses, field metadata, TOML/JSON.

A :class:`ReconConfig` holds one group per concern (``data``, ``model``, ``init``, ``refine``,
``loss``, ``optimizer``, ``regularization``, ``constraints``, ``run``). Every field has a default
and metadata (made by :func:`~..config_schema.field_factory`, which also holds the generic type
checking) that the GUI turns into a form and the TOML writer into comments::

    field(default=..., metadata={"unit": "eV", "help": "one line", "group": "data",
                                 "choices": (...), "min": 0, "max": 1, "min_exclusive": False,
                                 "max_exclusive": False,
                                 "safe_while_paused": False, "path": "file" | "dir" | None})

* ``iter_fields(cfg)`` lists every leaf as a :class:`FieldInfo` (dotted path, type, value, metadata).
* ``get_value(cfg, "optimizer.lr_object")`` / ``set_value(cfg, path, value)``: ``set_value``
  validates, coerces text typed into a GUI line edit (``"1e-3"``, ``"true"``, ``"0.1, 0.2"``,
  ``""`` for None) and raises :class:`ConfigError` naming the path.
* ``to_dict``/``from_dict``, ``to_toml``/``from_toml``, ``to_json``/``from_json``: unknown keys and
  wrong types are refused with the full key path and the expected type; loading is *strict*
  (no string coercion), a missing key takes its default. TOML cannot hold None, so an unset optional
  field is written as a commented-out line and read back as None.
* ``example_config("ptycho" | "holo" | "tomo")``: commented TOML for a typical run.

Units are SI (metres, eV, seconds); pixel quantities say ``px``. Learning rates are in the units of
their parameter per step (see :mod:`.loop.optimizers`). Fields marked ``safe_while_paused`` may be changed
from the GUI during a run (:meth:`~.run.Reconstruction.apply_changes`); they take effect from the
next optimiser step. Relative paths are relative to the configuration file's folder
(:func:`~..io.arrays.resolve_path`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional

from ..config_schema import FieldInfo, Schema, field_factory
from ..errors import ConfigError
from ..geometry import ENERGY_RANGE_EV, PIXEL_RANGE_M
from ..io.arrays import is_array_file
from ..io.field import statements_from_keys
from .loop.losses import LOSSES

__all__ = [
    "ConfigError", "FieldInfo", "ReconConfig", "DataConfig", "ModelConfig", "InitConfig",
    "RefineConfig", "LossConfig", "OptimizerConfig", "RegularizationConfig", "ConstraintsConfig",
    "RunConfig", "iter_fields", "get_value", "set_value", "validate", "to_dict", "from_dict",
    "to_toml", "from_toml", "to_json", "from_json", "preset", "example_config",
]


# ---- groups ------------------------------------------------------------------------------------

_f = field_factory("data")


@dataclass
class DataConfig:
    """Measured data file and geometry overrides (unset = taken from the file)."""

    path: Optional[str] = _f(None, "measured data file (Slicewise, CXI, DXchange or Adorym-style HDF5; "
                             "`slicewise info FILE` shows whether it is readable)", path="file")
    # the same accepted ranges as a data file's values (engine/geometry.py)
    energy_ev: Optional[float] = _f(None, "photon energy; unset = from the data file", "eV",
                                    min=ENERGY_RANGE_EV[0], max=ENERGY_RANGE_EV[1])
    pixel_size_m: Optional[float] = _f(None, "object pixel (voxel) size; unset = from the file", "m",
                                       min=PIXEL_RANGE_M[0], max=PIXEL_RANGE_M[1])
    slice_thickness_m: Optional[float] = _f(None, "multislice slice thickness; unset = from the "
                                            "file or n_slices", "m", min=PIXEL_RANGE_M[0],
                                            max=PIXEL_RANGE_M[1])
    distances_m: Optional[list[float]] = _f(None, "holography sample-detector distances, one per "
                                            "distance; unset = from the file", "m",
                                            min=0, min_exclusive=True)
    allow_external_links: bool = _f(False, "follow HDF5 external links, external raw storage and "
                                    "virtual datasets that point to other files, in every HDF5 "
                                    "file the run reads (data, init.object_path, init.probe_path, "
                                    "loss.mask_path, constraints.support, --resume); refused "
                                    "otherwise: such a file could make Slicewise read any local "
                                    "file")
    source_to_sample_m: Optional[float] = _f(None, "cone beam: distance from the focus (point "
                                             "source) to the sample; the near-field geometry is "
                                             "converted by the Fresnel scaling theorem (pixel / M, "
                                             "distance / M, M = (z1 + z2) / z1); pixel_size_m and "
                                             "distances_m are then the detector's. Unset = plane "
                                             "wave", "m", min=0, min_exclusive=True)
    field: str = _f("auto", "near or far field: auto = guessed from the frames and the geometry "
                    "(`slicewise info` says from what); near = holography or near-field "
                    "ptychography; far = far-field ptychography or CDI. A near-field model.kind or "
                    "source_to_sample_m states near, model.kind = ptycho states far",
                    choices=("auto", "near", "far"))
    farfield_order: str = _f("auto", "far-field frames in the file: centred (direct beam in the "
                             "middle, CXI's convention) or fft (direct beam in the corners); "
                             "auto = detected from the mean frame (CXI files)",
                             choices=("auto", "centred", "fft"))
    scan_orientation: str = _f("auto", "near-field ptychography: auto = check the sign and axes of "
                               "the scan positions against the frames (features move with the "
                               "sample) and fix them if clearly wrong; as_read = trust the file",
                               choices=("auto", "as_read"))
    photons_per_unit: Optional[float] = _f(None, "photons per unit of the stored frames (e.g. "
                                           "the scale the counts were divided by); the noise "
                                           "level follows from it. Unset = found from the data "
                                           "(integer counts; floats that are whole multiples of "
                                           "one quantum; else measured on the frames)",
                                           "photons", min=0, min_exclusive=True)


_f = field_factory("model")


@dataclass
class ModelConfig:
    """Forward model: geometry of the object and how light goes through it."""

    kind: str = _f("auto", "forward model; auto = decided by the data file (far field: ptycho; "
                   "near field: holo, or nfptycho when the frames have scan positions)",
                   choices=("auto", "ptycho", "holo", "nfptycho"))
    object_param: str = _f("delta_beta", "object unknowns: delta/beta volumes or free complex "
                           "transmission slices", choices=("delta_beta", "complex"))
    n_slices: int = _f(0, "number of multislice slices along the beam; 0 = from the file "
                       "(cubic voxels)", min=0)
    object_shape: Optional[tuple[int, int, int]] = _f(None, "object grid (nz, ny, nx) override; "
                                                      "unset = from the file", "px", min=1)
    probe_modes: int = _f(1, "number of incoherent probe modes (ptychography)", min=1)
    propagator: str = _f("fresnel", "free-space propagator between slices and to the detector "
                         "(near field)", choices=("fresnel", "angular_spectrum"))
    checkpoint_slices: int = _f(0, "recompute the forward pass in blocks of this many slices to "
                                "save memory; 0 = off", min=0)


_f = field_factory("init")


@dataclass
class InitConfig:
    """Starting point of the unknowns."""

    guess: str = _f("auto", "starting object: auto = the best (lowest data loss) of vacuum and the "
                    "physics-based guesses (the iterated one only where the closed-form guesses misfit the data "
                    "beyond 1.5x the noise level); paganin / ctf = near-field phase retrieval per angle "
                    "(then filtered back-projection for tomography); iterative = the CTF repeated "
                    "on the misfit of the exact hologram model (phase beyond the weak object, "
                    "about a radian); vacuum = constants below",
                    choices=("auto", "vacuum", "paganin", "ctf", "iterative"))
    absorption_ratio: Optional[float] = _f(None, "beta/delta of the sample for the paganin and "
                                           "homogeneous ctf / iterative guesses; unset = chosen "
                                           "by the data loss among 0.01, 0.1, 1 (ctf and "
                                           "iterative also try beta and delta independently; "
                                           "iterative alone: independently, from two distances)",
                                           min=0)
    material: Optional[str] = _f(None, "sample material whose beta/delta at the data's energy "
                                 "(xraylib) sets the ratio of the paganin and ctf guesses when "
                                 "absorption_ratio is unset: a named material ('SiO2 glass', "
                                 "'gold', 'water', ...) or a chemical formula ('C5H8O2'). With one "
                                 "distance, phase and absorption are not separable at low spatial "
                                 "frequencies and the level of delta follows this ratio")
    delta: float = _f(0.0, "initial delta of every voxel (real decrement of the refractive index)")
    beta: float = _f(0.0, "initial beta of every voxel (absorption index)", min=0)
    object_path: Optional[str] = _f(None, "start the object from this result/checkpoint file "
                                    "instead of constants", path="file")
    probe: str = _f("auto", "initial probe: auto = from the data file if it has one, else from the "
                    "data (far field: the focus the mean diffraction pattern implies, propagated "
                    "until it is about 45 % of the frame window wide); file; data; gaussian",
                    choices=("auto", "file", "data", "gaussian"))
    probe_search: str = _f("auto", "far field, probe derived from the data: try defoci of the "
                           "guess (up to one depth of focus either way) and both half-pixel "
                           "centrings, rank them by the data loss after a short fit (3-5 epochs "
                           "each, 11 candidates) and start from the best; auto = for weak objects (frames within 1 % "
                           "of their mean), where probe refinement cannot find them; on = always; "
                           "off = never", choices=("auto", "on", "off"))
    probe_path: Optional[str] = _f(None, "read the initial probe from this .npy/.h5 file "
                                   "instead of the data file", path="file")
    probe_fwhm_m: Optional[float] = _f(None, "FWHM of the gaussian probe guess; unset = a quarter "
                                       "of the probe window", "m", min=0, min_exclusive=True)
    seed: int = _f(0, "random seed for the initial guesses (extra probe modes)", min=0)


_f = field_factory("refine")


@dataclass
class RefineConfig:
    """Which experimental parameters are refined with the object, and from which epoch (0-based)."""

    probe: Optional[bool] = _f(None, "refine the probe; unset = when nothing gives it (neither the "
                               "data file nor init.probe_path holds a probe, so it starts from a "
                               "guess), for scanned-probe ptychography", safe_while_paused=True)
    probe_start_epoch: int = _f(0, "first epoch that updates the probe", "epoch", min=0,
                                safe_while_paused=True)
    positions: Optional[bool] = _f(None, "refine the ptychographic scan positions; unset = when "
                                   "the data show position errors (frames registered on the "
                                   "object after 5 epochs move; one view only)",
                                   safe_while_paused=True)
    positions_start_epoch: int = _f(0, "first epoch that updates the positions (registration: "
                                    "not before epoch 5, when there is an object to register on)",
                                    "epoch", min=0, safe_while_paused=True)
    position_max_step_px: float = _f(0.5, "gradient steps (position_search_px = 0): largest move "
                                     "of one position in one update", "px", min=0,
                                     safe_while_paused=True)
    position_search_px: Optional[float] = _f(None, "every few epochs each frame is searched for on "
                                             "the current object within this distance of where "
                                             "the scan's geometry puts it (registration: errors "
                                             "of several pixels, beyond gradient steps' reach); "
                                             "set it above the largest error expected; 0 = "
                                             "gradient steps of the optimiser instead; unset = "
                                             "10 px (at most a third of the frame)", "px", min=0,
                                             safe_while_paused=True)
    distances: bool = _f(False, "refine the holography propagation distances",
                         safe_while_paused=True)
    distances_start_epoch: int = _f(0, "first epoch that updates the distances", "epoch", min=0,
                                    safe_while_paused=True)


_f = field_factory("loss")


@dataclass
class LossConfig:
    """Data-fidelity term comparing modelled and measured intensities."""

    kind: str = _f("auto", "auto = amplitude, for integer (photon-counting) frames too (their "
                   "Poisson noise still sets the noise level); amplitude = least squares on "
                   "sqrt(intensity), what the validation loss measures; poisson = negative "
                   "log-likelihood for photon counting", choices=("auto",) + tuple(LOSSES))
    mask_path: Optional[str] = _f(None, "extra detector mask .npy/.h5 (1 = use pixel, 0 = ignore), "
                                  "combined with the data file's own mask; unset = the file's "
                                  "mask only", path="file")


_f = field_factory("optimizer")


@dataclass
class OptimizerConfig:
    """Optimiser and per-parameter learning rates; unset rates are measured from the data."""

    kind: str = _f("auto", "optimiser; auto = full-batch L-BFGS with a line search for one view "
                   "that fits in memory (holography, multislice or small 2D ptychography), else "
                   "Adam on minibatches (tomography, 2D ptychography with many positions); lbfgs "
                   "needs the same data every step (full batches)",
                   choices=("auto", "adam", "momentum", "lbfgs"))
    lr_delta: Optional[float] = _f(None, "learning rate of delta; unset = measured at the start of "
                                   "the run from the loss's curvature along its gradient (the value "
                                   "chosen is written to the run's config.toml)", "1/step", min=0,
                                   safe_while_paused=True)
    lr_beta: Optional[float] = _f(None, "learning rate of beta; unset = measured (as lr_delta)",
                                  "1/step", min=0, safe_while_paused=True)
    lr_object: Optional[float] = _f(None, "learning rate of the complex transmission (object_param "
                                    "= complex); unset = measured (as lr_delta)", "1/step", min=0,
                                    safe_while_paused=True)
    lr_probe: Optional[float] = _f(None, "learning rate of the probe, as a fraction of its initial "
                                   "peak amplitude; unset = measured when probe refinement starts",
                                   "1/step", min=0, safe_while_paused=True)
    lr_positions: float = _f(0.1, "learning rate of the scan positions (gradient steps: "
                             "refine.position_search_px = 0)", "px/step", min=0,
                             safe_while_paused=True)
    lr_distances: Optional[float] = _f(None, "learning rate of the propagation distances; unset = "
                                       "measured when distance refinement starts", "m/step", min=0,
                                       safe_while_paused=True)
    momentum: float = _f(0.9, "momentum coefficient (momentum optimiser)", min=0, max=1,
                         max_exclusive=True, safe_while_paused=True)
    beta1: float = _f(0.9, "Adam first-moment decay", min=0, max=1, max_exclusive=True,
                      safe_while_paused=True)
    beta2: float = _f(0.999, "Adam second-moment decay", min=0, max=1, max_exclusive=True,
                      safe_while_paused=True)
    lbfgs_history: int = _f(10, "number of L-BFGS correction pairs kept", min=1)
    lr_boost: Optional[float] = _f(None, "Adam: the object's learning rates (delta, beta, object) "
                                   "start this many times higher and decay to their set value "
                                   "with a time constant of 64 updates (fast start, quiet end); "
                                   "1 = constant rates; unset = 2 when the object's rates are "
                                   "measured, it starts without structure (vacuum or a constant) "
                                   "and neither probe, positions nor distances are refined, "
                                   "else 1", min=1)

    def lrs(self) -> dict[str, float | None]:
        """Learning rates keyed by the parameter names of the models (``delta``, ``probe``, ...);
        None where the rate is to be measured from the data."""
        return {name: getattr(self, "lr_" + name)
                for name in ("delta", "beta", "object", "probe", "positions", "distances")}


_f = field_factory("regularization")


@dataclass
class RegularizationConfig:
    """Penalties added to the loss, weighted relative to the data term: a weight of 0.01 makes the
    penalty 1 % of the data loss at the start of the run (on the first object estimate)."""

    l1_weight: float = _f(0.0, "weight of the L1 (sparsity) penalty, relative to the data loss "
                          "(0.01 = 1 % of it at the start); 0 = off", min=0, safe_while_paused=True)
    tv_weight: Optional[float] = _f(None, "weight of the 3D total-variation penalty, relative to "
                                    "the data loss (0.01 = 1 % of it at the start); unset = "
                                    "chosen by the data: 0 while the validation loss of an "
                                    "unpenalised fit keeps improving, else the weight whose trial "
                                    "fit reaches the lowest validation loss; 0 = off", min=0,
                                    safe_while_paused=True)
    tv_eps: float = _f(1e-3, "TV smoothing: |grad| is replaced by sqrt(|grad|^2 + eps^2) - eps, "
                       "relative to the object's largest value", min=0, min_exclusive=True, safe_while_paused=True)


_f = field_factory("constraints")


@dataclass
class ConstraintsConfig:
    """Projections applied after every optimiser step."""

    nonneg: bool = _f(True, "delta, beta >= 0 (for a complex object: |transmission| <= 1)",
                      safe_while_paused=True)
    support: str = _f("none", "object support: none, auto (threshold of the smoothed estimate) or a "
                      ".npy/.h5 mask path", path="file", safe_while_paused=True)
    support_threshold: float = _f(0.1, "auto support: keep voxels above this fraction of the "
                                  "smoothed maximum", min=0, max=1, safe_while_paused=True)
    support_sigma_px: float = _f(1.0, "auto support: gaussian smoothing before thresholding", "px",
                                 min=0, safe_while_paused=True)
    support_start_epoch: int = _f(5, "auto support: first epoch that applies it", "epoch", min=0,
                                  safe_while_paused=True)
    fix_probe_power: bool = _f(False, "rescale the probe after each update to keep its initial "
                               "total power", safe_while_paused=True)


_f = field_factory("run")


@dataclass
class RunConfig:
    """Iterations, batching, hardware and output."""

    epochs: int = _f(50, "number of passes over the data", "epoch", min=1, safe_while_paused=True)
    batch_angles: Optional[int] = _f(None, "rotation angles per optimiser step; 0 = all; unset = "
                                     "chosen for the number of updates per epoch", min=0)
    batch_spots: Optional[int] = _f(None, "scan positions per optimiser step (ptychography); 0 = "
                                    "all; unset = chosen for the number of updates per epoch", min=0)
    shuffle_seed: int = _f(0, "seed of the minibatch order", min=0)
    backend: str = _f("auto", "array backend; auto = GPU (CuPy) if one works, else NumPy",
                      choices=("auto", "numpy", "cupy"))
    precision: str = _f("single", "floating-point precision", choices=("single", "double"))
    checkpoint_every: int = _f(5, "write a checkpoint every this many epochs; 0 = only at the end",
                               "epoch", min=0, safe_while_paused=True)
    output_dir: str = _f("results", "folder for results and checkpoints (relative to the "
                         "configuration file)", path="dir")
    overwrite: bool = _f(False, "replace the results of an earlier run found in output_dir; "
                         "otherwise such a folder is refused")
    save_tiff: bool = _f(True, "also write the final volumes as TIFF stacks",
                         safe_while_paused=True)
    snapshot_every_s: float = _f(2.0, "send a preview to the GUI at most this often; 0 = every "
                                 "step", "s", min=0, safe_while_paused=True)
    validation_share: Optional[float] = _f(None, "share of the data held out of the fit; their "
                                           "loss after each epoch is the validation loss, which "
                                           "shows when the fit turns to the noise (scan "
                                           "positions, tomography angles, or for one full-field "
                                           "view islands of detector pixels); unset = 0.1, "
                                           "at least 25 frames or 4 angles where the data "
                                           "allow; 0 = off", min=0, max=0.5, max_exclusive=True)
    early_stop: bool = _f(True, "with a validation loss: the result is the estimate of its best "
                          "epoch, and the run stops when it has not improved by 1 % of its "
                          "excess over the noise floor for 4 epochs "
                          "(run.epochs stays the maximum); the final fit on every pixel of one "
                          "full-field view stops once its progress is below a known noise level's "
                          "(over 10 epochs, less than one noise degree of freedom per epoch); "
                          "false = "
                          "run every epoch and keep the last estimate", safe_while_paused=True)
    watch_from_epoch: Optional[int] = _f(None, "first epoch whose validation loss counts (best "
                                         "estimate, early stop); unset = from the first epoch "
                                         "whose data misfit is within 1.5x of the noise level, "
                                         "or has stopped falling (under 2 % in 4 epochs) from "
                                         "epoch 8 on (before it, a rising validation loss is "
                                         "the fit's own start, not noise)", "epoch", min=1)


@dataclass
class ReconConfig:
    """Everything a reconstruction run needs besides the data file itself."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    init: InitConfig = field(default_factory=InitConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    constraints: ConstraintsConfig = field(default_factory=ConstraintsConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def copy(self) -> "ReconConfig":
        return copy.deepcopy(self)


def _check_special(path: str, v) -> None:
    """Rules a type and a range cannot express."""
    if path == "constraints.support" and v not in ("none", "auto") and not is_array_file(v):
        raise ConfigError(f"{path}: must be none, auto or a path to a .npy/.h5 mask file; got {v!r}")
    if path == "loss.mask_path" and v is not None and not is_array_file(v):
        raise ConfigError(f"{path}: the detector mask must be a .npy or .h5/.hdf5 file; got {v!r}")


def _check_consistency(cfg: ReconConfig) -> None:
    """Data-independent rules between fields."""
    d = cfg.data  # statements about the field that contradict each other: one error naming both
    statements_from_keys(d.field, cfg.model.kind, d.source_to_sample_m, d.farfield_order)
    if cfg.model.kind == "holo" and cfg.refine.positions:
        raise ConfigError("refine.positions: scan positions exist only in ptychography, but "
                          "model.kind = holo")
    if cfg.model.kind in ("ptycho", "nfptycho") and cfg.refine.distances:
        raise ConfigError("refine.distances: propagation distances are refined in holography "
                          f"only, but model.kind = {cfg.model.kind}")


SCHEMA = Schema(ReconConfig, _check_special, _check_consistency)

# the configuration's operations by dotted path (engine/config_schema.py does the work)
get_value = SCHEMA.get            # get_value(cfg, "optimizer.lr_object")
set_value = SCHEMA.set            # set_value(cfg, path, value): validated; GUI text parsed
iter_fields = SCHEMA.fields       # iter_fields(cfg) -> [FieldInfo, ...] in declaration order
validate = SCHEMA.validate        # every field and the rules between fields; returns cfg
to_dict = SCHEMA.to_dict          # to_dict(cfg, drop_none=False) -> nested plain dict
from_dict = SCHEMA.from_dict      # from_dict(d, source="") -> ReconConfig, validated
to_toml = SCHEMA.to_toml          # to_toml(cfg, path=None, comments=True, header="") -> text
from_toml = SCHEMA.from_toml      # from_toml(path or text) -> ReconConfig
to_json = SCHEMA.to_json          # to_json(cfg, path=None) -> text
from_json = SCHEMA.from_json      # from_json(path or text) -> ReconConfig


# ---- presets and examples ----------------------------------------------------------------------

def preset(kind: str) -> ReconConfig:
    """A sensible starting configuration for ``"ptycho"``, ``"holo"``, ``"tomo"`` or
    ``"nearfield-ptycho"``."""
    cfg = ReconConfig()
    if kind == "ptycho":
        cfg.data.path = "ptycho.h5"
        cfg.model.kind = "ptycho"
        cfg.refine.probe, cfg.refine.probe_start_epoch = True, 2
    elif kind == "holo":
        cfg.data.path = "holo.h5"
        cfg.model.kind = "holo"
        cfg.model.propagator = "fresnel"
        cfg.run.epochs = 100
        # one view: full-batch L-BFGS, whose late steps on a weak object (phase ~1e-5 per voxel)
        # are below single precision's resolution of a field ~1; the level of delta from one
        # distance then drifts (tests/test_defaults_sweep.py, holo1-weak). The problem is small.
        cfg.run.precision = "double"
    elif kind == "tomo":
        cfg.data.path = "tomo.h5"
        cfg.model.kind = "auto"
        cfg.model.checkpoint_slices = 16
        cfg.constraints.support = "auto"
    elif kind == "nearfield-ptycho":
        # a measured near-field ptychography scan (CXI); tuned on the simulated twin of a
        # synchrotron Siemens-star scan (engine/twin.py, benchmarks/bench_nearfield_ptycho.py)
        cfg.data.path = "scan.cxi"
        cfg.model.kind = "nfptycho"
        cfg.model.object_param = "complex"   # phase of any size and sign, no material needed
        cfg.refine.probe = True              # the instrument's probe is never known
        cfg.refine.positions, cfg.refine.positions_start_epoch = True, 4
        # an encoder's sub-pixel errors: gradient steps place them to 0.03 px where registration
        # (for errors of pixels, refine.position_search_px) stops at ~0.2 px
        cfg.refine.position_search_px = 0.0
        # Adam on minibatches of 20 positions: on the full-size twin (200 frames of 100^2) it
        # reaches phase correlation 0.95 in 25 epochs where full-batch L-BFGS needs > 60
        # (benchmarks/bench_nearfield_ptycho.py). Rates: 0.03 rad-sized object steps; the probe
        # guess is consistent with the empty starting object, so a rate measured there is ~0 --
        # a fixed 1 % of its peak amplitude instead; 0.1 px position steps jitter, 0.03 settle
        cfg.optimizer.kind = "adam"
        cfg.optimizer.lr_object = 0.03
        cfg.optimizer.lr_probe = 0.01
        cfg.optimizer.lr_positions = 0.03
        cfg.run.batch_spots = 20
        cfg.run.epochs = 60
        cfg.run.checkpoint_every = 10
    else:
        raise ConfigError("example kind must be ptycho, holo, tomo or nearfield-ptycho; got "
                          f"{kind!r}")
    return validate(cfg)


def example_config(kind: str) -> str:
    """Commented TOML for a typical ``kind`` (``ptycho`` | ``holo`` | ``tomo`` |
    ``nearfield-ptycho``) reconstruction."""
    extra = ("Set data.path to the scan (CXI) and, for a beam diverging from a focus, "
             "data.source_to_sample_m.\n") if kind == "nearfield-ptycho" else ""
    header = (f"Slicewise reconstruction configuration: {kind} example.\n{extra}"
              "Units are SI unless stated; unset (commented) values are read from the data file.\n"
              f"Run with: slicewise reconstruct this_file.toml")
    return to_toml(preset(kind), header=header)
