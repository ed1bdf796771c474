"""The guessed far-field probe's missing Fourier phase, chosen by the data (``init.probe_search``).

The mean diffraction pattern fixes the probe's Fourier amplitude but not its Fourier phase
(:mod:`.probe_guess`). Two parts of that phase matter and are cheap to search:

- a defocus: the sample sits some distance from the focus, which puts a phase ``alpha k^2`` on the
  probe's Fourier transform. The scale-free unit is the depth of focus of the probe's numerical
  aperture: with the Fourier support reaching ``k_max`` cycles/px, a defocus of one depth of focus
  (``lambda / NA^2``, ``NA = lambda k_max / pixel``) is ``alpha = pi / k_max^2`` in the units of
  :func:`.probe_guess.defocus` -- a phase of pi at the support's edge, whatever the pixel size and
  wavelength;
- the centring of an even window: at ``(p - 1) / 2`` (Adorym's probes) or at ``p / 2`` (a probe
  built on ``p // 2``). In tomography a lateral shift of the probe shifts every view, i.e. moves the
  rotation axis, which no 3D object fits.

A weak object hardly reveals either to probe refinement (its signal is smaller than the error of
the guess), but the data loss after a short fit from each candidate does. The centring is chosen
first, by :data:`CENTRING_EPOCHS` epochs refining object and probe (the run's own fit): with the
probe held, its amplitude errors hide the shift. Then the defocus, on the ladder
:data:`DEFOCUS_LADDER` (in depths of focus, either sign), by :data:`FIT_EPOCHS` object-only
epochs: a refined probe partly absorbs a defocus and blurs the ranking. The measurements behind
both rules, and what did not work, are in benchmarks/README.md ("Blind probe, weak object").
"""

from __future__ import annotations

import logging
import math
import threading

import numpy as np

from ...backend import to_host
from ...io.datafile import spread_indices
from .. import config as cfgmod
from ..loop.projections import Projections
from ..loop.solver import Solver
from ..plan import Choice, RunPlan
from .probe_guess import WEAK_CONTRAST, defocus, frame_contrast

log = logging.getLogger(__name__)

__all__ = ["DEFOCUS_LADDER", "FIT_EPOCHS", "focus_depth_alpha", "fit_solvers",
           "run_probe_search", "search_probe", "shift", "wants_search"]

#: Defoci tried on either side of the guess, in depths of focus (:func:`focus_depth_alpha`).
DEFOCUS_LADDER = (0.125, 0.25, 0.5, 1.0)
#: Object-only epochs fitted per candidate defocus before its data loss is compared.
FIT_EPOCHS = 3
#: Epochs fitting object and probe per candidate centring (see the module docstring).
CENTRING_EPOCHS = 5
#: Angles (evenly spread) of the defocus fits; the centring's use all (a moved rotation axis shows
#: in the consistency of all views). Measured on both cones: the same defocus chosen from 8 of
#: 16-24 angles as from all, the search in 55-65 % of the time.
DEFOCUS_ANGLES = 8
#: Fraction of the probe's Fourier power inside the support radius ``k_max``.
SUPPORT_POWER = 0.95


def focus_depth_alpha(probe: np.ndarray) -> float:
    """One depth of focus of ``probe`` ``(py, px)`` in the units of :func:`.probe_guess.defocus`:
    ``pi / k_max^2``, ``k_max`` (cycles/px) the radius holding :data:`SUPPORT_POWER` of its
    Fourier power."""
    power = np.abs(np.fft.fft2(probe)) ** 2
    ky, kx = np.fft.fftfreq(probe.shape[0]), np.fft.fftfreq(probe.shape[1])
    k = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2).ravel()
    order = np.argsort(k)
    cum = np.cumsum(power.ravel()[order])
    k_max = float(k[order][np.searchsorted(cum, SUPPORT_POWER * cum[-1])])
    k_max = max(k_max, 1.0 / max(probe.shape))   # a single-pixel pattern: the grid's finest step
    return math.pi / k_max ** 2


def shift(probe: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``probe`` ``(..., py, px)`` moved by ``(dy, dx)`` px (Fourier shift, periodic)."""
    ky, kx = np.fft.fftfreq(probe.shape[-2]), np.fft.fftfreq(probe.shape[-1])
    ramp = np.exp(-2j * np.pi * (ky[:, None] * dy + kx[None, :] * dx))
    return np.fft.ifft2(np.fft.fft2(probe) * ramp)


def wants_search(config, dataset, probe_is_guess: bool) -> bool:
    """Whether ``init.probe_search`` applies: a probe derived from the data, and for ``auto`` a
    weak object (:func:`.probe_guess.frame_contrast` below :data:`.probe_guess.WEAK_CONTRAST`),
    where refinement cannot recover the probe's Fourier phase."""
    mode = config.init.probe_search
    if mode == "off" or not probe_is_guess or config.init.probe not in ("auto", "data"):
        return False
    return mode == "on" or frame_contrast(dataset) < WEAK_CONTRAST


def _candidate(base: np.ndarray, alpha: float, centred_at_half: bool) -> np.ndarray:
    p = np.stack([defocus(m, alpha) for m in base]) if alpha else base
    return shift(p, 0.5, 0.5) if centred_at_half else p


def _fit_loss(problem, solver_factory, start: dict, probe, epochs: int,
              angles: np.ndarray | None = None) -> float:
    """Data loss over the last of ``epochs`` epochs of the solver ``solver_factory()`` started
    from ``probe`` and the object ``start``, on the angles ``angles`` (None: all)."""
    be = problem.backend
    problem.params.update({k: v.copy() for k, v in start.items()})
    problem.params["probe"] = be.to_complex(probe)
    solver = solver_factory()
    names = solver.refined(0)
    losses = []
    for epoch in range(epochs):
        losses = []
        for a_idx, s_idx in solver.batches(epoch):
            if angles is not None:
                a_idx = np.intersect1d(a_idx, angles)
                if not len(a_idx):
                    continue
            loss, terms = solver.step(a_idx, s_idx, names)
            if not math.isfinite(loss):
                return math.inf
            losses.append(terms.get("data", loss))
    return float(np.mean(losses))


def search_probe(problem, solvers) -> str:
    """Replace the guessed probe in ``problem.params`` by the candidate with the lowest data loss
    after a short fit (module docstring); the object (and the probe's other parts) return to their
    start. Returns a description of the choice (also logged). ``solvers(refine_probe)`` builds a
    solver that refines the object, and the probe too if ``refine_probe``, at learning rates
    fixed across candidates (:func:`fit_solvers`)."""
    be = problem.backend
    base = np.asarray(to_host(problem.params["probe"]), np.complex128)
    start = {k: v.copy() for k, v in problem.params.items() if k in ("delta", "beta", "object")}
    unit = focus_depth_alpha(base[0])
    tried: dict[tuple, float] = {}
    n_angles = problem.dataset.n_angles
    subset = spread_indices(n_angles, DEFOCUS_ANGLES) if n_angles > DEFOCUS_ANGLES else None

    def loss_of(alpha_units: float, half: bool) -> float:
        key = (alpha_units, half)
        if key not in tried:
            tried[key] = _fit_loss(problem, lambda: solvers(False), start,
                                   _candidate(base, alpha_units * unit, half), FIT_EPOCHS, subset)
        return tried[key]

    centring = {}
    if all(n % 2 == 0 for n in base.shape[-2:]):
        centring = {h: _fit_loss(problem, lambda: solvers(True), start, _candidate(base, 0.0, h),
                                 CENTRING_EPOCHS) for h in (False, True)}
    half = bool(centring) and centring[True] < centring[False]
    best = 0.0
    for step in DEFOCUS_LADDER:
        for a in (step, -step):
            if loss_of(a, half) < loss_of(best, half):
                best = a
    problem.params.update(start)
    problem.params["probe"] = be.to_complex(_candidate(base, best * unit, half))
    choice = (f"defocus {best:+g} depth of focus (alpha {best * unit:.3g}), centred at "
              f"{'p / 2' if half else '(p - 1) / 2'}")
    log.info("init.probe_search: %s; data loss after %d epochs fitting object and probe: %s; "
             "after %d object-only epochs on %d angles per defocus (in depths of focus): %s",
             choice, CENTRING_EPOCHS, ", ".join(f"{'p / 2' if h else '(p - 1) / 2'} {v:.4g}"
                                        for h, v in centring.items()) or "odd window, not tried",
             FIT_EPOCHS, n_angles if subset is None else len(subset),
             ", ".join(f"{a:+g} {v:.4g}" for (a, _), v in sorted(tried.items())))
    return choice


def fit_solvers(config, dataset, problem, schedule, base_dir, distributed=None):
    """``solvers(refine_probe) -> Solver`` for :func:`search_probe`: solvers that refine the
    object (and the probe if asked; never positions or distances), at learning rates measured by
    the first of each kind and shared by the rest."""
    configs = {}
    for refine_probe in (False, True):
        c = configs[refine_probe] = config.copy()
        for name in ("probe", "positions", "distances"):
            cfgmod.set_value(c, f"refine.{name}", refine_probe and name == "probe")
        # the candidates are ranked after a few epochs at constant rates (the ladder and its
        # margins were measured so); Adam's start-up boost would change what a short fit shows
        cfgmod.set_value(c, "optimizer.lr_boost", 1.0)
    lock = threading.RLock()
    plans = {k: RunPlan(c, log_choices=False) for k, c in configs.items()}

    def solvers(refine_probe: bool):
        plan = plans[refine_probe]
        solver = Solver(plan, dataset, problem, Projections(plan.config, problem, base_dir),
                        schedule, lock, distributed)
        solver.resolve_learning_rates(solver.refined(0))
        return solver

    return solvers


def run_probe_search(config, dataset, problem, schedule, base_dir,
                     distributed=None) -> Choice | None:
    """:func:`search_probe` where ``init.probe_search`` asks for it (:func:`wants_search`);
    for ``auto`` the choice to search, with what it found; None where it does not run (a
    far-field scanned probe only: a near-field illumination is not guessed from a mean
    pattern)."""
    far_field_scan = problem.model.unshifted_frames and problem.model.splits_spots
    if not far_field_scan or not wants_search(config, dataset, problem.probe_is_guess):
        return None
    found = search_probe(problem, fit_solvers(config, dataset, problem, schedule, base_dir,
                                              distributed))
    if config.init.probe_search != "auto":
        return None
    return Choice("init.probe_search", "on", f"a weak object (frames within "
                  f"{100 * WEAK_CONTRAST:g} % of their mean), whose probe guess refinement cannot "
                  f"correct; found {found}")
