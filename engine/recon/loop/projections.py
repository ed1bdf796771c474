"""Constraints of a run: the projections after every optimiser step, and the support they use.

:class:`Projections` reads ``config.constraints`` (and ``refine.position_max_step_px``) live, so
changes made during a run (:meth:`~.run.Reconstruction.apply_changes`) apply from the next step.
The array operations themselves are in :mod:`.constraints`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...backend import to_host
from ...errors import ConfigError
from ...io.arrays import load_array, resolve_path
from . import constraints
from ..config import ReconConfig


class Projections:
    """Applies the configured constraints to the unknowns, in place on a dict of backend arrays.

    ``support``: boolean ``(nz, ny, nx)`` backend array or None: voxels outside are set to 0 in
    delta and beta. A mask file (``constraints.support = "path.npy"``) is read on construction, so
    a wrong file is refused before anything is written; ``"auto"`` computes it after each epoch
    from ``constraints.support_start_epoch`` on (:meth:`after_epoch`).
    """

    def __init__(self, config: ReconConfig, problem, base_dir: Path):
        self.config, self.problem, self.base_dir = config, problem, Path(base_dir)
        self.support = None
        if config.constraints.support not in ("none", "auto"):
            self.support = self.load_support(config.constraints.support)

    def apply(self, params: dict, old_positions=None) -> None:
        """Project ``params`` after an update; ``old_positions``: the positions before it (when
        they were refined), for the step bound and the common-shift removal."""
        c, p = self.config.constraints, params
        if c.nonneg:
            for n in ("delta", "beta"):
                if n in p:
                    p[n] = constraints.nonnegative(p[n])
            if "object" in p:  # a passive object cannot amplify: |T| <= 1
                p["object"] = constraints.amplitude_at_most(p["object"], 1.0)
        if self.support is not None:
            for n in ("delta", "beta"):
                if n in p:
                    p[n] = constraints.apply_support(p[n], self.support)
        if c.fix_probe_power and "probe" in p and self.problem.probe_power:
            p["probe"] = constraints.fix_probe_power(p["probe"], self.problem.probe_power)
        if old_positions is not None:
            p["positions"] = constraints.bound_position_step(p["positions"], old_positions,
                                                             self.config.refine.position_max_step_px)
            # a common translation of all spots is a null direction of (object, positions): let it
            # drift and the object only moves off the nominal scan frame (and off any ground truth)
            p["positions"] = constraints.remove_global_shift(p["positions"], old_positions)
            bounds = getattr(self.problem.model, "position_bounds", None)
            if bounds is not None:  # a window off the padded grid could not be evaluated
                lo, hi = bounds()
                xp = self.problem.backend.xp
                p["positions"] = xp.clip(p["positions"], xp.asarray(lo, dtype=p["positions"].dtype),
                                         xp.asarray(hi, dtype=p["positions"].dtype))

    def after_epoch(self, epoch: int, params: dict) -> None:
        """Update the support after ``epoch`` epochs: ``auto`` recomputes it from delta; a mask
        path set during the run is read now."""
        c = self.config.constraints
        if c.support == "auto":
            if epoch >= c.support_start_epoch and "delta" in params:
                self.support = constraints.support_mask_auto(params["delta"], c.support_threshold,
                                                             c.support_sigma_px)
        elif c.support == "none":
            self.support = None
        elif self.support is None:
            self.support = self.load_support(c.support)

    def state_dict(self) -> dict:
        """What a checkpoint needs: the support an ``auto`` run computed (a file is re-read)."""
        if self.config.constraints.support != "auto" or self.support is None:
            return {}
        return {"support": np.asarray(to_host(self.support), np.uint8)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`: an ``auto`` support applies from the resumed first step,
        as it did in the run that wrote the checkpoint."""
        mask = state.get("support")
        if self.config.constraints.support == "auto" and mask is not None:
            if tuple(np.shape(mask)) != tuple(self.problem.object_shape):
                raise ConfigError(f"--resume: the checkpoint's support has shape {np.shape(mask)}, "
                                  f"the object grid is {self.problem.object_shape}")
            self.support = self.problem.backend.asarray(np.asarray(mask).astype(bool))

    def load_support(self, path_str: str):
        """A support mask file (``.npy`` or HDF5 ``params/support``, ``support`` or ``mask``)
        checked against the object grid, as a boolean backend array."""
        m = load_array(resolve_path(path_str, self.base_dir), "constraints.support",
                       ("params/support", "support", "mask"),
                       allow_external=self.config.data.allow_external_links)
        if m.shape != self.problem.object_shape:
            raise ConfigError(f"constraints.support: mask shape {m.shape} differs from the object grid "
                              f"{self.problem.object_shape}")
        return self.problem.backend.asarray(m.astype(bool))
