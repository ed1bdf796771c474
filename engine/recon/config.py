"""The typed reconstruction configuration: nested dataclasses, field metadata, TOML/JSON.

A :class:`ReconConfig` holds one group per concern (``data``, ``model``, ``init``, ``refine``,
``loss``, ``optimizer``, ``regularization``, ``constraints``, ``run``). Every field has a default
and metadata that the GUI turns into a form and the TOML writer into comments::

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
their parameter per step (see :mod:`.optimizers`). Fields marked ``safe_while_paused`` may be changed
from the GUI while a run is paused; the run loop re-reads them at the next epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tomli_w

from ..errors import ConfigError
from ..io.atomic import atomic_write_text

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

__all__ = [
    "ConfigError", "FieldInfo", "ReconConfig", "DataConfig", "ModelConfig", "InitConfig",
    "RefineConfig", "LossConfig", "OptimizerConfig", "RegularizationConfig", "ConstraintsConfig",
    "RunConfig", "iter_fields", "get_value", "set_value", "validate", "to_dict", "from_dict",
    "to_toml", "from_toml", "to_json", "from_json", "preset", "example_config",
]


def _factory(group: str):
    """A ``field()`` maker that stamps every field of one group with its metadata."""

    def f(default, help: str, unit: str = "", *, choices: tuple | None = None, min=None, max=None,
          min_exclusive: bool = False, max_exclusive: bool = False,
          safe_while_paused: bool = False, path: str | None = None):
        meta = {"unit": unit, "help": help, "group": group, "choices": choices, "min": min,
                "max": max, "min_exclusive": min_exclusive, "max_exclusive": max_exclusive,
                "safe_while_paused": safe_while_paused, "path": path}
        return field(default=default, metadata=meta)

    return f


# ---- groups ------------------------------------------------------------------------------------

_f = _factory("data")


@dataclass
class DataConfig:
    """Measured data file and geometry overrides (unset = taken from the file)."""

    path: Optional[str] = _f(None, "measured data file (Adorym-style HDF5)", path="file")
    energy_ev: Optional[float] = _f(None, "photon energy; unset = from the data file", "eV",
                                    min=0, min_exclusive=True)
    pixel_size_m: Optional[float] = _f(None, "object pixel (voxel) size; unset = from the file", "m",
                                       min=0, min_exclusive=True)
    slice_thickness_m: Optional[float] = _f(None, "multislice slice thickness; unset = from the "
                                            "file or n_slices", "m", min=0, min_exclusive=True)
    distances_m: Optional[list[float]] = _f(None, "holography sample-detector distances, one per "
                                            "distance; unset = from the file", "m",
                                            min=0, min_exclusive=True)


_f = _factory("model")


@dataclass
class ModelConfig:
    """Forward model: geometry of the object and how light goes through it."""

    kind: str = _f("auto", "forward model; auto = decided by the data file",
                   choices=("auto", "ptycho", "holo"))
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


_f = _factory("init")


@dataclass
class InitConfig:
    """Starting point of the unknowns."""

    delta: float = _f(0.0, "initial delta of every voxel (real decrement of the refractive index)")
    beta: float = _f(0.0, "initial beta of every voxel (absorption index)", min=0)
    object_path: Optional[str] = _f(None, "start the object from this result/checkpoint file "
                                    "instead of constants", path="file")
    probe: str = _f("auto", "initial probe: auto = from the data file if it has one, else "
                    "gaussian", choices=("auto", "file", "gaussian"))
    probe_path: Optional[str] = _f(None, "read the initial probe from this .npy/.h5 file "
                                   "instead of the data file", path="file")
    probe_fwhm_m: Optional[float] = _f(None, "FWHM of the gaussian probe guess; unset = a quarter "
                                       "of the probe window", "m", min=0, min_exclusive=True)
    seed: int = _f(0, "random seed for the initial guesses (extra probe modes)", min=0)


_f = _factory("refine")


@dataclass
class RefineConfig:
    """Which experimental parameters are refined with the object, and from which epoch (0-based)."""

    probe: bool = _f(False, "refine the probe", safe_while_paused=True)
    probe_start_epoch: int = _f(0, "first epoch that updates the probe", "epoch", min=0,
                                safe_while_paused=True)
    positions: bool = _f(False, "refine the ptychographic scan positions", safe_while_paused=True)
    positions_start_epoch: int = _f(0, "first epoch that updates the positions", "epoch", min=0,
                                    safe_while_paused=True)
    position_max_step_px: float = _f(0.5, "largest move of one position in one update", "px", min=0,
                                     safe_while_paused=True)
    distances: bool = _f(False, "refine the holography propagation distances",
                         safe_while_paused=True)
    distances_start_epoch: int = _f(0, "first epoch that updates the distances", "epoch", min=0,
                                    safe_while_paused=True)


_f = _factory("loss")


@dataclass
class LossConfig:
    """Data-fidelity term comparing modelled and measured intensities."""

    kind: str = _f("amplitude", "amplitude = least squares on sqrt(intensity) (robust default); "
                   "poisson = negative log-likelihood for photon counting",
                   choices=("amplitude", "poisson"))
    mask_path: Optional[str] = _f(None, "detector mask .npy/.h5 (1 = use pixel, 0 = ignore); "
                                  "unset = use all pixels", path="file")


_f = _factory("optimizer")


@dataclass
class OptimizerConfig:
    """Optimiser and per-parameter learning rates; unset rates are measured from the data."""

    kind: str = _f("auto", "optimiser; auto = full-batch L-BFGS with a line search when the data "
                   "fit in memory and there is one view, else Adam on minibatches; lbfgs needs the "
                   "same data every step (full batches)", choices=("auto", "adam", "momentum", "lbfgs"))
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
    lr_positions: float = _f(0.1, "learning rate of the scan positions", "px/step", min=0,
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

    def lrs(self) -> dict[str, float | None]:
        """Learning rates keyed by the parameter names of the models (``delta``, ``probe``, ...);
        None where the rate is to be measured from the data."""
        return {name: getattr(self, "lr_" + name)
                for name in ("delta", "beta", "object", "probe", "positions", "distances")}


_f = _factory("regularization")


@dataclass
class RegularizationConfig:
    """Penalties added to the loss, weighted relative to the data term: a weight of 0.01 makes the
    penalty 1 % of the data loss at the start of the run (on the first object estimate)."""

    l1_weight: float = _f(0.0, "weight of the L1 (sparsity) penalty, relative to the data loss "
                          "(0.01 = 1 % of it at the start); 0 = off", min=0, safe_while_paused=True)
    tv_weight: float = _f(0.0, "weight of the 3D total-variation penalty, relative to the data loss "
                          "(0.01 = 1 % of it at the start); 0 = off", min=0, safe_while_paused=True)
    tv_eps: float = _f(1e-3, "TV smoothing: |grad| is replaced by sqrt(|grad|^2 + eps^2) - eps, "
                       "relative to the object's largest value", min=0, min_exclusive=True, safe_while_paused=True)


_f = _factory("constraints")


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


_f = _factory("run")


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
    save_tiff: bool = _f(True, "also write the final volumes as TIFF stacks",
                         safe_while_paused=True)
    snapshot_every_s: float = _f(2.0, "send a preview to the GUI at most this often; 0 = every "
                                 "step", "s", min=0, safe_while_paused=True)


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

    def resolved(self, base_dir: str | os.PathLike) -> "ReconConfig":
        """A copy with every relative path field made absolute against ``base_dir`` (the folder of
        the configuration file), so the run does not depend on the working directory."""
        out = self.copy()
        for info in iter_fields(out):
            v = info.value
            if info.path_kind and isinstance(v, str) and v and v != "none" and v != "auto":
                p = Path(v).expanduser()
                if not p.is_absolute():
                    set_value(out, info.path, str(Path(base_dir) / p))
        return out


# ---- types ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Type:
    """A field type reduced to what we support: scalar, list or fixed tuple, maybe optional."""

    base: type                  # bool | int | float | str | list | tuple
    optional: bool = False
    elem: type | None = None    # element type of list/tuple
    length: int | None = None   # tuple length

    @property
    def name(self) -> str:
        if self.base is list:
            s = f"list[{self.elem.__name__}]"
        elif self.base is tuple:
            s = f"tuple[{', '.join([self.elem.__name__] * self.length)}]"
        else:
            s = self.base.__name__
        return s + " | None" if self.optional else s


def _parse_type(tp) -> _Type:
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional, tp = True, args[0]
    origin = typing.get_origin(tp)
    if origin is list:
        return _Type(list, optional, typing.get_args(tp)[0])
    if origin is tuple:
        args = typing.get_args(tp)
        return _Type(tuple, optional, args[0], len(args))
    return _Type(tp, optional)


@dataclass(frozen=True)
class FieldInfo:
    """One leaf of the configuration, as the GUI needs it to build a form row."""

    path: str                   # "optimizer.lr_object"
    type: Any                   # the annotation, e.g. float, Optional[float], list[float]
    type_name: str              # "float | None"
    value: Any
    default: Any
    unit: str
    help: str
    group: str
    choices: tuple | None
    min: float | None
    max: float | None
    min_exclusive: bool
    max_exclusive: bool
    safe_while_paused: bool
    optional: bool
    path_kind: str | None       # "file" | "dir" for path fields (a file chooser), else None

    def range_text(self) -> str:
        """The allowed range, e.g. ``">= 0, < 1"``; empty when unbounded."""
        rng = []
        if self.min is not None:
            rng.append(f"{'>' if self.min_exclusive else '>='} {self.min}")
        if self.max is not None:
            rng.append(f"{'<' if self.max_exclusive else '<='} {self.max}")
        return ", ".join(rng)


@dataclass(frozen=True)
class _Leaf:
    path: str
    owner_cls: type
    name: str
    fld: dataclasses.Field
    ann: Any
    t: _Type


def _leaves(cls, prefix: str = "") -> list[_Leaf]:
    hints = typing.get_type_hints(cls)
    out = []
    for fld in dataclasses.fields(cls):
        path = prefix + fld.name
        tp = hints[fld.name]
        if dataclasses.is_dataclass(tp):
            out.extend(_leaves(tp, path + "."))
        else:
            out.append(_Leaf(path, cls, fld.name, fld, tp, _parse_type(tp)))
    return out


_LEAVES = {leaf.path: leaf for leaf in _leaves(ReconConfig)}


def _default(fld: dataclasses.Field):
    return fld.default_factory() if fld.default is dataclasses.MISSING else fld.default


# ---- validation and coercion --------------------------------------------------------------------

def _bad(path: str, t: _Type, value, why: str = "") -> ConfigError:
    got = f"{value!r} ({type(value).__name__})"
    return ConfigError(f"{path}: expected {t.name}, got {got}{'; ' + why if why else ''}")


def _scalar(path: str, t: _Type, kind: type, v, text: bool):
    """Check (and, for GUI text, parse) one scalar of type ``kind``."""
    if text and isinstance(v, str) and kind is not str:
        s = v.strip()
        try:
            if kind is bool:
                low = s.lower()
                if low in ("true", "yes", "on", "1"):
                    return True
                if low in ("false", "no", "off", "0"):
                    return False
                raise ValueError
            if kind is int:
                f = float(s)
                if not f.is_integer():
                    raise ValueError
                return int(f)
            v = float(s)
        except ValueError:
            raise _bad(path, t, v, "could not read it as a number" if kind is not bool else
                       "use true or false") from None
    if kind is bool:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
    elif kind is int:
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            return int(v)
    elif kind is float:
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            v = float(v)
            if not math.isfinite(v):
                raise _bad(path, t, v, "must be finite")
            return v
    elif kind is str:
        if isinstance(v, str):
            return v
    raise _bad(path, t, v)


def _check_range(path: str, meta: dict, v):
    lo, hi = meta.get("min"), meta.get("max")
    lo_x, hi_x = meta.get("min_exclusive"), meta.get("max_exclusive")
    if lo is not None and (v <= lo if lo_x else v < lo):
        raise ConfigError(f"{path}: must be {'>' if lo_x else '>='} {lo}, got {v!r}")
    if hi is not None and (v >= hi if hi_x else v > hi):
        raise ConfigError(f"{path}: must be {'<' if hi_x else '<='} {hi}, got {v!r}")


def _coerce(leaf: _Leaf, value, text: bool = False):
    """Validate ``value`` for ``leaf`` (parsing GUI text when ``text``); return the clean value."""
    t, path, meta = leaf.t, leaf.path, leaf.fld.metadata
    if text and isinstance(value, str) and t.optional and (
            value.strip() == "" or (t.base is not str and value.strip().lower() == "none")):
        value = None
    if value is None:
        if t.optional:
            return None
        raise _bad(path, t, value, "this field cannot be unset")
    if t.base in (list, tuple):
        if text and isinstance(value, str):
            s = value.strip().strip("[]()").replace("x", ",").replace(";", ",")
            value = [p for p in (q.strip() for q in s.split(",")) if p]
        if not isinstance(value, (list, tuple)) or isinstance(value, str):
            raise _bad(path, t, value)
        if t.length is not None and len(value) != t.length:
            raise _bad(path, t, value, f"needs exactly {t.length} values")
        if t.base is list and len(value) == 0:
            raise _bad(path, t, value, "needs at least one value (leave it unset instead)")
        items = [_scalar(f"{path}[{i}]", _Type(t.elem), t.elem, v, text) for i, v in enumerate(value)]
        for i, v in enumerate(items):
            _check_range(f"{path}[{i}]", meta, v)
        return t.base(items)
    v = _scalar(path, t, t.base, value, text)
    if meta.get("choices") and v not in meta["choices"]:
        raise ConfigError(f"{path}: must be one of {', '.join(map(str, meta['choices']))}; "
                          f"got {v!r}")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        _check_range(path, meta, v)
    return v


def _leaf(path: str) -> _Leaf:
    leaf = _LEAVES.get(path)
    if leaf is None:
        close = difflib.get_close_matches(path, list(_LEAVES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{path}: unknown configuration key{hint}")
    return leaf


def _owner(cfg: ReconConfig, path: str):
    obj = cfg
    for part in path.split(".")[:-1]:
        obj = getattr(obj, part)
    return obj


def get_value(cfg: ReconConfig, path: str):
    """The value at a dotted ``path`` such as ``"optimizer.lr_object"``."""
    return getattr(_owner(cfg, _leaf(path).path), path.rsplit(".", 1)[-1])


def set_value(cfg: ReconConfig, path: str, value):
    """Validate ``value`` (text from a GUI line edit is parsed) and store it; returns the stored
    value. Raises :class:`ConfigError` naming ``path`` when the value does not fit."""
    leaf = _leaf(path)
    v = _coerce(leaf, value, text=True)
    _check_special(leaf.path, v)
    setattr(_owner(cfg, path), leaf.name, v)
    return v


def _check_special(path: str, v) -> None:
    """Rules a type and a range cannot express."""
    if path == "constraints.support" and v not in ("none", "auto") and not _is_mask_file(v):
        raise ConfigError(f"{path}: must be none, auto or a path to a .npy/.h5 mask file; got {v!r}")
    if path == "loss.mask_path" and v is not None and not _is_mask_file(v):
        raise ConfigError(f"{path}: the detector mask must be a .npy or .h5/.hdf5 file; got {v!r}")


def _is_mask_file(s: str) -> bool:
    return s.lower().endswith((".npy", ".h5", ".hdf5", ".hdf"))


def iter_fields(cfg: ReconConfig) -> list[FieldInfo]:
    """Every leaf of ``cfg`` in declaration order, with value and metadata (for forms)."""
    out = []
    for path, leaf in _LEAVES.items():
        m = leaf.fld.metadata
        out.append(FieldInfo(path=path, type=leaf.ann, type_name=leaf.t.name,
                             value=get_value(cfg, path), default=_default(leaf.fld),
                             unit=m["unit"], help=m["help"], group=m["group"], choices=m["choices"],
                             min=m["min"], max=m["max"], min_exclusive=m["min_exclusive"],
                             max_exclusive=m["max_exclusive"],
                             safe_while_paused=m["safe_while_paused"], optional=leaf.t.optional,
                             path_kind=m["path"]))
    return out


def validate(cfg: ReconConfig) -> ReconConfig:
    """Check every field and the data-independent consistency rules; returns ``cfg``."""
    for path, leaf in _LEAVES.items():
        v = _coerce(leaf, get_value(cfg, path))
        _check_special(path, v)
    if cfg.model.kind == "holo" and cfg.refine.positions:
        raise ConfigError("refine.positions: scan positions exist only in ptychography, but "
                          "model.kind = holo")
    if cfg.model.kind == "ptycho" and cfg.refine.distances:
        raise ConfigError("refine.distances: propagation distances are refined in holography "
                          "only, but model.kind = ptycho")
    return cfg


# ---- dict / TOML / JSON -------------------------------------------------------------------------

def to_dict(cfg: ReconConfig, drop_none: bool = False) -> dict:
    """Nested plain dict (tuples become lists); ``drop_none`` leaves unset fields out (TOML)."""
    out: dict = {}
    for path, leaf in _LEAVES.items():
        v = get_value(cfg, path)
        if v is None and drop_none:
            continue
        group, key = path.rsplit(".", 1)
        out.setdefault(group, {})[key] = list(v) if isinstance(v, tuple) else v
    return out


def from_dict(d: dict, source: str = "") -> ReconConfig:
    """Build and validate a config from a nested dict; missing keys take their defaults."""
    pre = f"{source}: " if source else ""
    if not isinstance(d, dict):
        raise ConfigError(f"{pre}the configuration must be a table of groups, got "
                          f"{type(d).__name__}")
    cfg = ReconConfig()
    groups = [f.name for f in dataclasses.fields(ReconConfig)]
    for gname, table in d.items():
        if gname not in groups:
            close = difflib.get_close_matches(str(gname), groups, n=1)
            raise ConfigError(f"{pre}{gname}: unknown group"
                              + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f"; known groups: {', '.join(groups)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{pre}{gname}: expected a table [{gname}], got "
                              f"{type(table).__name__}")
        for key, value in table.items():
            try:
                leaf = _leaf(f"{gname}.{key}")
                v = _coerce(leaf, value)
                _check_special(leaf.path, v)
            except ConfigError as exc:
                raise ConfigError(pre + str(exc)) from None
            setattr(getattr(cfg, gname), key, v)
    try:
        return validate(cfg)
    except ConfigError as exc:
        raise ConfigError(pre + str(exc)) from None


def _toml_value(v) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return tomli_w.dumps({"k": v}).split("=", 1)[1].strip()


def _comment(info: FieldInfo) -> str:
    bits = [info.help]
    if info.unit:
        bits.append(f"[{info.unit}]")
    if info.choices:
        bits.append(f"({' | '.join(info.choices)})")
    if info.range_text():
        bits.append(f"({info.range_text()})")
    return "# " + " ".join(bits)


def to_toml(cfg: ReconConfig, path: str | os.PathLike | None = None, comments: bool = True,
            header: str = "") -> str:
    """TOML text of ``cfg`` (written atomically to ``path`` when given). With ``comments`` each key
    is preceded by its help, unit, choices and range; unset optional fields appear commented out."""
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    group = None
    for info in iter_fields(cfg):
        g = info.path.split(".")[0]
        if g != group:
            group = g
            if lines:
                lines.append("")
            if comments:
                lines.append(f"# {type(getattr(cfg, g)).__doc__.strip().splitlines()[0]}")
            lines.append(f"[{g}]")
        key = info.path.rsplit(".", 1)[1]
        if comments:
            lines.append(_comment(info))
        if info.value is None:
            if comments:
                lines.append(f"# {key} = <{info.type_name.removesuffix(' | None')}>   (unset)")
        else:
            lines.append(f"{key} = {_toml_value(info.value)}")
    text = "\n".join(lines) + "\n"
    if path is not None:
        atomic_write_text(path, text)
    return text


def _read_source(src, suffix: str) -> tuple[str, str]:
    """(text, name for messages) from a path or literal text: a one-line string that names an
    existing file or ends with ``suffix`` is a path, anything else is text."""
    is_path = isinstance(src, os.PathLike) or (
        isinstance(src, str) and "\n" not in src
        and (os.path.isfile(src) or src.strip().lower().endswith(suffix)))
    if is_path:
        p = Path(src)
        try:
            return p.read_text(encoding="utf-8"), str(p)
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read the configuration file ({exc.strerror})") from None
    return str(src), ""


def from_toml(src: str | os.PathLike) -> ReconConfig:
    """Read a configuration from a TOML file path or TOML text."""
    text, name = _read_source(src, ".toml")
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name or 'configuration'}: invalid TOML: {exc}") from None
    return from_dict(d, name)


def to_json(cfg: ReconConfig, path: str | os.PathLike | None = None) -> str:
    """JSON text (None written as null); written atomically to ``path`` when given."""
    text = json.dumps(to_dict(cfg), indent=2) + "\n"
    if path is not None:
        atomic_write_text(path, text)
    return text


def from_json(src: str | os.PathLike) -> ReconConfig:
    """Read a configuration from a JSON file path or JSON text."""
    text, name = _read_source(src, ".json")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name or 'configuration'}: invalid JSON: {exc}") from None
    return from_dict(d, name)


# ---- presets and examples ----------------------------------------------------------------------

def preset(kind: str) -> ReconConfig:
    """A sensible starting configuration for ``"ptycho"``, ``"holo"`` or ``"tomo"``."""
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
    elif kind == "tomo":
        cfg.data.path = "tomo.h5"
        cfg.model.kind = "auto"
        cfg.model.checkpoint_slices = 16
        cfg.constraints.support = "auto"
    else:
        raise ConfigError(f"example kind must be ptycho, holo or tomo; got {kind!r}")
    return validate(cfg)


def example_config(kind: str) -> str:
    """Commented TOML for a typical ``kind`` (``ptycho`` | ``holo`` | ``tomo``) reconstruction."""
    header = (f"Slicewise reconstruction configuration: {kind} example.\n"
              "Units are SI unless stated; unset (commented) values are read from the data file.\n"
              f"Run with: slicewise reconstruct this_file.toml")
    return to_toml(preset(kind), header=header)
