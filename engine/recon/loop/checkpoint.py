"""Checkpoint and result files of a run: what is written, and reading it back to resume.

A checkpoint holds everything a run needs to continue: the unknowns, the optimiser state (moments,
L-BFGS pairs, learning rates), the progress (:class:`Progress`: epochs done, per-epoch history,
per-step losses), the configuration as TOML and the optics. The file layout is
:mod:`..io.results`'. Results are checkpoints of kind ``"result"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...backend import to_host
from ...errors import ConfigError, SlicewiseError
from ...io.results import read_result, write_result, write_tiff_stack
from .. import config as cfgmod
from ..problem import Problem, host_copy

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """What the loop has done so far; a checkpoint holds all of it.

    ``history``: one dict per finished epoch (``epoch``, ``loss``, ``terms``, ``time_s``);
    ``batch_losses``: the loss of every optimiser step; ``peak_memory_bytes``: the largest use seen.
    """

    epoch: int = 0
    history: list = field(default_factory=list)
    batch_losses: list = field(default_factory=list)
    peak_memory_bytes: int = 0

    def loss_history(self) -> dict:
        """``{"total": [...], term: [...], "validation": [...]}`` per epoch, the result file's
        ``/loss`` (validation NaN where it was not measured)."""
        out = {"total": [h["loss"] for h in self.history]}
        for h in self.history:
            for k, v in h["terms"].items():
                out.setdefault(k, []).append(v)
        if any("validation" in h for h in self.history):
            out["validation"] = [h.get("validation", float("nan")) for h in self.history]
        return out


def write_state(path: Path, kind: str, problem: Problem, params: dict, optimizer_state: dict,
                progress: Progress, plan, run_state: dict | None = None,
                best_epoch: int = 0) -> None:
    """Write a checkpoint/result: ``params`` are host copies taken under the run's lock;
    ``plan``: the run's :class:`~..plan.RunPlan` (its configuration as ``/config``, its choices
    with their reasons as ``/extra/plan/<path>/{value, reason, when}``); ``run_state``: the rest of
    the solver's state (support mask, divergence guard), host values, stored under
    ``/extra/run_state`` and given back by :func:`read_state`; ``best_epoch``: the epoch whose
    estimate ``params`` are when it is not the last (0: the last). The data file's absolute path
    goes to ``/extra/data_path_absolute``, so that a result opened from another folder still
    finds its data."""
    initial = {}
    if problem.initial_positions is not None:
        initial["positions"] = problem.initial_positions
    optics = problem.model.optics
    extra = {"batch_losses": np.asarray(progress.batch_losses, float),
             # wall time of each epoch (s; NaN for epochs of a run this one resumed)
             "epoch_time_s": np.asarray([h.get("time_s", np.nan) for h in progress.history], float),
             "pixel_size_m": optics.pixel_size_m, "slice_thickness_m": optics.slice_thickness_m,
             "energy_ev": optics.energy_ev, "peak_memory_bytes": int(progress.peak_memory_bytes),
             "run_state": run_state or {}, "plan": plan.to_dict()}
    source = problem.dataset.source_path
    if source:  # beside the configuration's data.path, which may be relative to its folder
        extra["data_path_absolute"] = str(Path(source).resolve())
    write_result(path, params, loss_history=progress.loss_history(),
                 config_toml=cfgmod.to_toml(plan.config, header=plan.toml_header()),
                 epoch=progress.epoch, initial=initial,
                 optimizer_state=optimizer_state, extra=extra, kind=kind, best_epoch=best_epoch)


def host_params(problem: Problem) -> dict:
    return {k: host_copy(v) for k, v in problem.params.items()}


#: Choices a resumed run takes from the run it continues when its configuration leaves them open:
#: they decide what the fit is (the weight, whether data are held out), so they cannot be made
#: again halfway (the weight search ran before the checkpoint).
CONTINUED_CHOICES = ("run.validation_share", "regularization.tv_weight")


def continued_choices(path: Path, allow_external: bool) -> dict:
    """``{path: (value, reason)}`` of :data:`CONTINUED_CHOICES` the checkpoint's run made."""
    try:
        res = read_result(path, allow_external=allow_external)
    except (OSError, SlicewiseError) as exc:
        raise ConfigError(f"--resume {path}: cannot read the checkpoint ({exc})") from None
    plan = res["extra"].get("run_state", {}).get("plan", {})
    return {p: plan[p]["value"] for p in CONTINUED_CHOICES if "value" in plan.get(p, {})}


def read_state(path: Path, problem: Problem) -> tuple[Progress, dict, dict]:
    """Load a checkpoint's unknowns into ``problem.params`` (checked against its shapes); returns
    the progress, the optimiser state and the run state (both possibly empty). Errors name
    ``--resume``."""
    try:
        res = read_result(path, allow_external=problem.config.data.allow_external_links)
    except (OSError, SlicewiseError) as exc:
        raise ConfigError(f"--resume {path}: cannot read the checkpoint ({exc})") from None
    params = problem.params
    for k, v in res["params"].items():
        if k in params:
            if tuple(np.shape(v)) != tuple(params[k].shape):
                raise ConfigError(f"--resume {path}: {k} has shape {np.shape(v)} but this configuration "
                                  f"needs {tuple(params[k].shape)}")
            params[k] = problem.backend.asarray(v, dtype=params[k].dtype)
    loss = res["loss"]
    terms = [k for k in loss if k not in ("total", "validation")]
    times = np.asarray(res["extra"].get("epoch_time_s", []), float)
    history = [{"epoch": i + 1, "loss": float(loss["total"][i]),
                "terms": {k: float(loss[k][i]) for k in terms},
                "time_s": float(times[i]) if i < len(times) else float("nan")}
               for i in range(len(loss.get("total", [])))]
    if "validation" in loss:
        for h, v in zip(history, loss["validation"]):
            if np.isfinite(v):
                h["validation"] = float(v)
    progress = Progress(res["epoch"], history,
                        list(np.asarray(res["extra"].get("batch_losses", [])).tolist()),
                        int(res["extra"].get("peak_memory_bytes", 0)))
    log.info("resumed from %s at epoch %d", path, progress.epoch)
    return progress, res["optimizer"], res["extra"].get("run_state", {})


def write_tiffs(output_dir: Path, problem: Problem) -> None:
    """delta and beta, or the amplitude and phase of a complex object, as TIFF stacks with the
    voxel size (``output_dir/delta.tif`` ...)."""
    p, pix = problem.params, problem.model.optics.pixel_size_m
    if "delta" in p:
        stacks = {name: to_host(p[name]) for name in ("delta", "beta")}
    else:
        obj = to_host(p["object"])
        stacks = {"object_amplitude": np.abs(obj), "object_phase": np.angle(obj)}
    for name, vol in stacks.items():
        write_tiff_stack(output_dir / f"{name}.tif", vol, pix)
