"""The set-up of a run, in order: every decision made before the first step, adopted into the
run's :class:`~..plan.RunPlan`.

1. the problem (:func:`..problem.build_problem`: the model that fits the data, its object grid and
   starting unknowns, the loss) and the data held out of the fit for the validation loss
   (:func:`decide_holdout`);
2. whether a guessed probe is refined (:func:`decide_probe_refinement`);
3. the optimiser and its minibatches (:func:`.schedule.decide_schedule`);
4. for a new run (not a resume): a physics-based starting object (:mod:`.initial_guess`) and the
   guessed far-field probe's missing defocus and centring (:mod:`.probe_search`);
5. the memory check (:mod:`.memory`).

Learning rates are decided later, when the refinement of each unknown starts (they depend on the
estimate at that moment: :meth:`..loop.solver.Solver.resolve_learning_rates`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...backend import Backend
from ...io.datafile import Dataset, spread_indices
from ...io.noise import NoiseEstimate, estimate_noise
from ..loop.distributed import agreed_memory_bytes
from ..loop.validation import (MIN_TOTAL_ANGLES, MIN_TOTAL_FRAMES, SMALL_SCAN_FRAMES, Holdout,
                               choose_holdout, small_scan, watches_fit)
from ..plan import Choice, RunPlan
from ..problem import Problem, build_problem
from . import initial_guess, probe_search
from .memory import check_memory
from .schedule import Schedule, decide_schedule, estimation_batch

__all__ = ["Prepared", "decide_probe_refinement", "prepare_run"]


@dataclass
class Prepared:
    """What the set-up hands to the loop."""

    problem: Problem
    schedule: Schedule
    memory_estimate_bytes: int
    holdout: Holdout
    search_weight: bool    # regularization.tv_weight is chosen by trial fits (weight_search.py)
    noise: NoiseEstimate
    expected_misfit: float  # the data loss per pixel at the noise level (the discrepancy level)
    #: held-out pixels and a weight to choose: the start of the final fit on every pixel (the
    #: start a rerun of config.toml builds; initial_guess.start_on_every_pixel), else None
    every_pixel_start: dict | None = None


def decide_probe_refinement(cfg, problem: Problem) -> Choice | None:
    """``refine.probe`` unset: refine a scanned probe that starts from a guess (None when the
    configuration sets it). A weak object barely changes the frames, so a probe guessed from
    their mean is wrong by more than the object's own signal: fixed, it leaves a correlation with
    the truth of 0.6 on a 1 nm SiO2 cone (tests/test_adorym_stranger.py); a holography
    illumination stays flat unless asked for."""
    if cfg.refine.probe is not None:
        return None
    if not problem.model.splits_spots:
        return Choice("refine.probe", False, "a full-field illumination is refined only when asked")
    if problem.probe_is_guess:
        return Choice("refine.probe", True, "the probe starts from a guess (init.probe = "
                      f"{cfg.init.probe!r}; neither used from the data file nor init.probe_path), "
                      "so it is refined")
    return Choice("refine.probe", False, "the probe is given (the data file's or init.probe_path's)")


#: Share of the data held out for the validation loss when ``run.validation_share`` is unset.
VALIDATION_SHARE = 0.1


def decide_holdout(cfg, dataset: Dataset, problem: Problem) -> tuple[Holdout, Choice | None]:
    """What is held out of the fit (:func:`..loop.validation.choose_holdout`), and for an unset
    ``run.validation_share`` the choice with what it holds out."""
    share = cfg.run.validation_share
    asked = share is not None
    share = VALIDATION_SHARE if share is None else share
    held = choose_holdout(share, dataset.n_angles, dataset.n_spots, dataset.frame_shape,
                          problem.model.splits_spots, cfg.run.shuffle_seed, automatic=not asked)
    if asked:
        return held, None
    if small_scan(held.unit, dataset.n_angles, dataset.n_spots) and \
            cfg.regularization.tv_weight is not None:
        none = choose_holdout(0.0, dataset.n_angles, dataset.n_spots, dataset.frame_shape,
                              problem.model.splits_spots, cfg.run.shuffle_seed)
        frames = dataset.n_angles * dataset.n_spots
        return none, Choice("run.validation_share", 0.0, f"a scan of {frames} frames with the "
                            "weight stated: every frame is fitted (a scan under "
                            f"{SMALL_SCAN_FRAMES} frames holds some out only to choose the "
                            "weight, then fits them all)")
    if not held.active:
        return held, Choice("run.validation_share", 0.0, "too little data to hold any out (at "
                            f"least {MIN_TOTAL_FRAMES} frames or {MIN_TOTAL_ANGLES} angles: "
                            "every frame of a smaller scan still shapes the fit)")
    return held, Choice("run.validation_share", share, f"held out of the fit: {held.describe()}; "
                        "their loss is the validation loss")


def decide_noise(cfg, dataset: Dataset) -> tuple[NoiseEstimate, Choice | None]:
    """What the noise of the data is (:func:`...io.noise.estimate_noise`); an unset
    ``data.photons_per_unit`` found from the data becomes a choice (so ``config.toml`` states the
    noise level the run assumed)."""
    noise = estimate_noise(dataset, cfg.data.photons_per_unit)
    if cfg.data.photons_per_unit is not None or noise.photons_per_unit is None:
        return noise, None
    return noise, Choice("data.photons_per_unit", float(noise.photons_per_unit),
                         f"{noise.kind}: {noise.reason}")


def decide_weight(cfg, holdout: Holdout, resume: bool) -> tuple[Choice | None, bool]:
    """``regularization.tv_weight`` unset: 0 to start with, and whether trial fits choose it
    (only with held-out data to rank them, and not when resuming a run that chose it)."""
    if cfg.regularization.tv_weight is not None:
        return None, False
    if resume:
        return Choice("regularization.tv_weight", 0.0, "resumed: set it as in the checkpoint's "
                      "config.toml to continue with the weight that run chose"), False
    if not holdout.active:
        return Choice("regularization.tv_weight", 0.0, "no held-out data to choose a weight "
                      "with (run.validation_share = 0)"), False
    return Choice("regularization.tv_weight", 0.0, "to start with; trial fits choose it from the "
                  "validation loss"), True


def prepare_run(plan: RunPlan, dataset: Dataset, backend: Backend, base_dir: Path,
                distributed=None, resume: bool = False) -> Prepared:
    """Steps 1-5 of the module docstring; every choice goes into ``plan``."""
    problem = build_problem(plan, dataset, backend, base_dir, distributed)
    cfg = plan.config
    noise, choice = decide_noise(cfg, dataset)
    plan.adopt(choice)
    # the measured frames stand in for the noise-free intensities the expectation wants
    sample = dataset.frames(spread_indices(dataset.n_angles, 2), spread_indices(dataset.n_spots, 32))
    misfit = noise.model.expected_misfit(sample, problem.loss_spec.name)
    holdout, choice = decide_holdout(cfg, dataset, problem)
    plan.adopt(choice)
    choice, search_weight = decide_weight(cfg, holdout, resume)
    plan.adopt(choice, quiet=search_weight)
    if holdout.unit == "pixels":
        problem.hold_out_pixels(holdout.pixels)
    if holdout.unit == "angles":
        problem.fit_angles = holdout.train_angles
    plan.adopt(decide_probe_refinement(cfg, problem))
    # under MPI the smallest free memory of any rank: every rank must choose the same minibatches
    schedule, choices = decide_schedule(cfg, dataset, problem,
                                        agreed_memory_bytes(backend, distributed),
                                        np.dtype(backend.complex_dtype).name,
                                        watched=watches_fit(holdout, cfg, problem.params))
    for choice in choices:
        plan.adopt(choice)
    every_pixel_start = None
    if not resume:  # a physics-based start instead of vacuum where the data prefer it
        batch = estimation_batch(dataset, problem.model.splits_spots, schedule,
                                 angles=problem.fit_angles)
        for choice in initial_guess.apply_initial_guess(problem, *batch, misfit):
            plan.adopt(choice)
        if holdout.unit == "pixels" and search_weight:
            every_pixel_start = initial_guess.start_on_every_pixel(problem, holdout.pixels,
                                                                   *batch, misfit)
        plan.adopt(probe_search.run_probe_search(cfg, dataset, problem, schedule, base_dir,
                                                 distributed))
        # the penalties' scale is fixed on the fit's own start, not on whichever candidate the
        # steps above judged first (a CTF guess at a wrong ratio set it 4.5x off on a
        # holotomography scan, so a hand-set weight meant half what the weight search's did)
        problem.penalty_norm = None
    memory = check_memory(cfg, dataset, problem, backend)
    return Prepared(problem, schedule, memory, holdout, search_weight, noise, misfit,
                    every_pixel_start)
