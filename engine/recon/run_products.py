"""What a run shows and writes: snapshots for live views, checkpoints, the result file and, at the
end, the fit's misfit against the noise level (a mixin of :class:`.run.Reconstruction`, which
provides the problem, data set, solver, guard, projections, positions, plan, validation watch,
progress, noise estimate, lock and paths these read)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from ..autodiff import no_grad
from ..backend import to_host
from ..errors import DivergenceError, OutputError
from .events import Snapshot
from .loop.checkpoint import host_params, write_state
from .problem import host_copy

log = logging.getLogger(__name__)

__all__ = ["RunProducts", "NOISE_FIT_WARNING"]

#: A data misfit below this fraction of the noise level's is reported as fitting the noise.
NOISE_FIT_WARNING = 0.8


class RunProducts:
    """Snapshots, checkpoints, results and the end-of-run report of a
    :class:`~.run.Reconstruction`."""

    def noise_level_ratio(self) -> float:
        """The last epoch's data loss over the loss expected at the noise level (1 = the fit
        explains the data as far as the noise allows; well below 1 = it fits the noise): from
        the model's intensities of the held-out data where there are any, else from the
        measured frames (rougher where counts are sparse)."""
        if not self.history:
            return float("nan")
        last = self.history[-1]
        if math.isfinite(last.get("noise_ratio", float("nan"))):
            return float(last["noise_ratio"])
        if not self.expected_misfit > 0:
            return float("nan")
        return float(last["terms"].get("data", last["loss"]) / self.expected_misfit)

    def _report_noise_level(self) -> None:
        ratio = self.noise_level_ratio()
        if not math.isfinite(ratio):
            return
        low = ratio < NOISE_FIT_WARNING
        weight = self.config.regularization.tv_weight or 0.0
        watch = self.watch
        if low and not self.noise.known:
            # an upper bound (the object's finest detail counts as noise): below it proves nothing
            log.info("the fit's data misfit is %.2fx the noise level estimated from the frames, "
                     "an upper bound (state data.photons_per_unit for a level to compare with)",
                     ratio)
            return
        if low and watch.active and watch.best.epoch == self.epoch and watch.best.epoch > 0:
            # the held-out data say otherwise: with about as many unknowns as measurements a fit
            # can go below the noise level on its own data and still predict unseen data better
            log.info("the fit's data misfit is %.2fx the noise level (%s), but the held-out "
                     "data's validation loss was still falling at the last epoch: the fit "
                     "predicts data it never saw better and better (its many unknowns let the "
                     "misfit of its own data go below the noise level)", ratio, self.noise.kind)
            return
        # under a penalty (stated or chosen by the weight search) holding data out is done
        advice = ("; it fits the noise: hold out data (run.validation_share) or regularise"
                  if weight <= 0 else f"; it fits some noise with regularization.tv_weight = "
                  f"{weight:g}: a larger weight or fewer run.epochs fit less of it")
        (log.warning if low else log.info)("the fit's data misfit is %.2fx the noise level (%s)%s",
                                           ratio, self.noise.kind, advice if low else "")

    def snapshot(self, frame: tuple[int, int] | None = (0, 0)) -> Snapshot:
        """Host copies of the estimate; with ``frame=(angle, spot)`` also measured vs modelled."""
        prob = self.problem
        with self._lock:
            p = {k: host_copy(v) for k, v in prob.params.items()}
            params_dev = dict(prob.params)
        measured = modelled = None
        if frame is not None:
            a, s = int(frame[0]), int(frame[1])
            with no_grad():
                model_i = to_host(prob.predict_intensity(params_dev, [a], [s]))[0, 0]
            meas = self.dataset.frames([a], [s])[0, 0]
            if prob.model.unshifted_frames:  # centred for display
                model_i, meas = np.fft.fftshift(model_i), np.fft.fftshift(meas)
            measured, modelled = meas, model_i
        return Snapshot(self.epoch, p.get("delta"), p.get("beta"), p.get("object"), p.get("probe"),
                        p.get("positions"), prob.initial_positions, p.get("distances"),
                        list(self.history), list(self.batch_losses), measured, modelled,
                        prob.model.optics.pixel_size_m, prob.model.optics.slice_thickness_m,
                        dict(self.dataset.truth) if self.dataset.truth is not None else {})

    @property
    def _writes_files(self) -> bool:
        """Only MPI rank 0 (or a single process) writes results and checkpoints."""
        return self.distributed is None or self.distributed.is_root

    def _checkpoint_after_failure(self, exc: Exception) -> None:
        """After a failure, the checkpoint of the last consistent state (the end of the last
        minibatch or epoch) where the failure left one: not within an optimiser update, nor
        between an epoch's last minibatch and its end. Under MPI the failing rank writes it (rank
        0 may be waiting in a collective call; every rank holds the whole state)."""
        if isinstance(exc, (DivergenceError, OutputError)) or not self._consistent \
                or self.solver.in_update:
            return  # already written / cannot be written / no consistent state to write
        try:
            self._write(self.checkpoint_path, "checkpoint", any_rank=True)
        except Exception as err:  # best effort: the failure itself is what gets reported
            log.warning("no checkpoint after the failure (%s)", " ".join(str(err).split()))
            return
        where = f", minibatch {self._partial['batch']} of epoch {self.epoch + 1}" \
            if self._partial else ""
        log.warning("the run failed; its state after %d epoch(s)%s is in %s: continue with "
                    "--resume %s", self.epoch, where, self.checkpoint_path, self.checkpoint_path)

    def _write(self, path: Path, kind: str, any_rank: bool = False) -> None:
        if not (self._writes_files or any_rank):
            return
        with self._lock:
            params = host_params(self.problem)
            opt_state = self.solver.state_dict()
            run_state = {"guard": self._guard.state_dict(), **self.projections.state_dict(),
                         **self.positions.state_dict(),
                         **self.problem.state_dict(), "plan": self.plan.state_dict(),
                         "validation": self.watch.state_dict()}
            if self.noise_stop is not None:
                run_state["noise_stop"] = self.noise_stop.state_dict()
            if self._partial:  # stopped within an epoch: where to continue it
                run_state["partial"] = dict(self._partial)
        try:
            write_state(path, kind, self.problem, params, opt_state, self.progress, self.plan,
                        run_state, best_epoch=getattr(self, "_result_epoch", 0)
                        if kind == "result" else 0)
        except BaseException:
            self._consistent = False  # a write that failed is not tried again after the failure
            raise
