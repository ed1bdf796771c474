"""Starting objects from physics instead of vacuum (``init.guess``).

Near-field holography (2D, multislice, tomography) with a delta/beta object: per angle, the
projected phase and absorption are retrieved -- in closed form (:mod:`..retrieval.ctf`: Paganin
for one distance, CTF for several), or by the CTF repeated on the misfit of the exact hologram
model, which holds beyond the weak object (:mod:`..retrieval.iterative`) -- and turned into delta
and beta: spread evenly over the slices for a single view, by filtered back-projection through
the engine's rotation operator for tomography (:mod:`..retrieval.fbp`).

``init.guess = "auto"`` evaluates the data loss of every candidate on a few angles and starts
from the lowest, with its level (a common factor on delta and beta) fitted to the data too: a
guess is used only where the data prefer it. The candidates: vacuum; CTF with beta and delta
independent; CTF and Paganin for beta/delta ratios 0.01, 0.1, 1, or the one set in
``init.absorption_ratio`` (the best ratio refined between the decades); then the iterated CTF
with beta and delta independent and with the best closed-form guess's ratio -- only where the
best closed-form guess misfits the data by more than their noise explains (above
:data:`ITERATE_ABOVE` times the misfit expected at the noise level): where the linear guess already
fits to the noise, iterating lowers the data loss by fitting the noise (a weak cell in 4-distance
holography at 1e5 photons: CTF 0.90x the noise level, correlation 0.33; iterated 0.83x, 0.22;
benchmarks/README.md). The choice is
logged and written back into the configuration (``init.guess``, ``init.absorption_ratio``), so a
saved configuration rebuilds the same start.

Only the pixels the fit sees make the start (:mod:`..retrieval.masked`): not a detector mask's bad
pixels, and with several distances not the pixels held out for the validation loss either (a
start that has fitted their noise predicts them best, so every fit seemed to get worse from its
first epoch and no weight was ever chosen). The final fit on every pixel then starts from the
retrieval of every pixel (:func:`start_on_every_pixel`), the start a rerun of the saved
configuration builds.
"""

from __future__ import annotations

import logging

import numpy as np

from ...autodiff import no_grad
from ...backend import to_host
from ...errors import ConfigError
from ...materials import absorption_ratio
from ...retrieval.ctf import ctf_retrieve, paganin_retrieve
from ...retrieval.fbp import filtered_back_projection
from ...retrieval.iterative import iterative_ctf
from ...retrieval.masked import weighted_ctf_retrieve, weighted_paganin_retrieve
from ..loop.validation import NOISE_GATE
from ..plan import Choice

log = logging.getLogger(__name__)

__all__ = ["apply_initial_guess", "candidates", "fitted_pixels", "hides_held_out_pixels",
           "iterative_candidates", "start_on_every_pixel", "RATIOS"]

#: beta/delta ratios tried when ``init.absorption_ratio`` is unset (phase objects .. strong absorbers).
RATIOS = (0.01, 0.1, 1.0)
#: ``init.guess = "auto"`` iterates the CTF only where the best closed-form guess's data loss is
#: above this multiple of the loss expected at the noise level: the gate past which the
#: validation loss watches a fit for noise (:data:`..loop.validation.NOISE_GATE`).
ITERATE_ABOVE = NOISE_GATE


def candidates(method: str, n_distances: int, ratio: float | None) -> list[tuple[str, float | None]]:
    """Closed-form ``(method, ratio)`` pairs to try; ratio None = CTF with beta and delta
    independent. ``"iterative"`` uses them (those of ``"auto"``) only to find its ratio."""
    ratios = (ratio,) if ratio is not None else RATIOS
    out: list[tuple[str, float | None]] = []
    if method in ("auto", "ctf", "iterative"):
        if n_distances >= 2 and ratio is None:
            out.append(("ctf", None))
        out += [("ctf", r) for r in ratios]
    if method in ("auto", "paganin", "iterative"):
        out += [("paganin", r) for r in ratios if r > 0]
    return out


def iterative_candidates(method: str, n_distances: int, ratio: float | None,
                         closed_form_ratio: float | None) -> list[tuple[str, float | None]]:
    """``("iterative", ratio)`` pairs tried after the closed-form guesses: the ratio set (by
    ``init.absorption_ratio`` or ``init.material``), else beta and delta independent (two
    distances or more: from one the low frequencies of the phase are not measured, and the
    iteration would fit them to whatever the data's noise and round-off say) and, for
    ``"auto"`` or one distance, the ratio of the best closed-form guess (``closed_form_ratio``;
    each iterated candidate costs tens of closed-form retrievals, so the ratio is not searched
    again)."""
    if method not in ("auto", "iterative"):
        return []
    if ratio is not None:
        return [("iterative", ratio)]
    out: list[tuple[str, float | None]] = [("iterative", None)] if n_distances >= 2 else []
    if closed_form_ratio is not None and (method == "auto" or n_distances < 2):
        out.append(("iterative", closed_form_ratio))
    return out


def _retrieve(inten, distances, optics, method: str, ratio, nonneg: bool, weights=None):
    """``(phi, B)`` ``(ny, nx)`` of one angle from its ``(D, ny, nx)`` normalised intensities;
    ``nonneg``: the iterated retrieval keeps delta and beta >= 0 as the run will; ``weights``
    ``(ny, nx)``: the pixels the fit sees (0 = masked or held out), None = all."""
    lam, pix = optics.wavelength_m, optics.pixel_size_m
    if method == "ctf":
        if weights is not None:
            return weighted_ctf_retrieve(inten, weights, distances, lam, pix, ratio=ratio)
        return ctf_retrieve(inten, distances, lam, pix, ratio=ratio)
    if method == "iterative":
        res = iterative_ctf(inten, distances, lam, pix, ratio=ratio, nonneg=nonneg,
                            method=optics.method, weights=weights)
        return res.phi, res.b
    # Paganin per distance, averaged (each is a full estimate)
    res = [paganin_retrieve(inten[d], distances[d], lam, pix, ratio) if weights is None else
           weighted_paganin_retrieve(inten[d], weights, distances[d], lam, pix, ratio)
           for d in range(len(distances))]
    return sum(r[0] for r in res) / len(res), sum(r[1] for r in res) / len(res)


def hides_held_out_pixels(problem) -> bool:
    """Whether the start is retrieved without the held-out pixels: with two distances or more.
    From one, an object pixel is measured by its own detector pixel alone, so the object behind
    a held-out pixel is only guessed from neighbours whose retrieval has fitted their noise (as
    many unknowns as data): every such guess predicted the held-out pixels worse than vacuum
    (benchmarks/README.md, "Counting noise: the defaults")."""
    return problem.validation_mask is not None and problem.dataset.n_distances >= 2


def fitted_pixels(problem) -> np.ndarray | None:
    """The weight of each detector pixel in the start's retrieval, ``(fy, fx)`` in the frames'
    own order: a detector mask's 0 (a bad pixel would pull its Fresnel zone's phase), and
    held-out pixels' 0 where :func:`hides_held_out_pixels`; None where every pixel counts."""
    if problem.mask is None:
        return None
    w = np.asarray(to_host(problem.mask), np.float64)
    if problem.validation_mask is not None and not hides_held_out_pixels(problem):
        w = w + np.asarray(to_host(problem.validation_mask), np.float64)
    if problem.model.unshifted_frames:
        w = np.fft.fftshift(w)
    return None if w.min() >= 1.0 else w


def guess_object(problem, method: str, ratio) -> dict:
    """``{"delta", "beta"}`` backend arrays ``object_shape`` from the retrieval ``method``."""
    ds, be, model = problem.dataset, problem.backend, problem.model
    optics = model.optics
    nz = problem.object_shape[0]
    dz = optics.slice_thickness_m
    # the object's centre lies (nz - 1)/2 slices upstream of the exit plane
    distances = np.asarray(to_host(problem.params["distances"]), float) + 0.5 * (nz - 1) * dz
    level = 1.0
    if "probe" in problem.params:
        level = float(to_host((abs(problem.params["probe"]) ** 2).mean()))
    nonneg = problem.config.constraints.nonneg
    phis, bs = [], []
    # only the views the fit sees: held-out angles stay unseen (a start made from them would
    # predict them best, and every fit would seem to get worse)
    angles = np.arange(ds.n_angles) if problem.fit_angles is None else problem.fit_angles
    weights = fitted_pixels(problem)   # not bad pixels, nor (several distances) held-out ones
    for a in angles:
        inten = np.asarray(ds.frames([int(a)], None)[0], np.float64) / level
        phi, b = _retrieve(inten, distances, optics, method, ratio, nonneg, weights)
        phis.append(phi)
        bs.append(b)
    kdz = optics.k * dz
    # phi = -k dz sum_z delta, B = k dz sum_z beta
    proj_d = -np.stack(phis) / kdz
    proj_b = np.stack(bs) / kdz
    if problem.tomo:
        theta = np.asarray(ds.angles_rad)[angles]
        delta = filtered_back_projection(be.asarray(proj_d), theta, problem.object_shape, be)
        if ratio is not None:  # a homogeneous object's beta: FBP is linear, so no second one
            beta = delta * be.real_dtype(ratio)
        else:
            beta = filtered_back_projection(be.asarray(proj_b), theta, problem.object_shape, be)
    else:
        delta = be.xp.broadcast_to(be.asarray(proj_d[0] / nz), problem.object_shape)
        beta = be.xp.broadcast_to(be.asarray(proj_b[0] / nz), problem.object_shape)
    if problem.config.constraints.nonneg:
        delta, beta = be.xp.maximum(delta, 0), be.xp.maximum(beta, 0)
    return {"delta": be.xp.ascontiguousarray(delta, dtype=be.real_dtype),
            "beta": be.xp.ascontiguousarray(beta, dtype=be.real_dtype)}


def _data_loss(problem, params, a_idx, s_idx, measured) -> float:
    with no_grad():
        total, terms = problem.loss({**problem.params, **params}, a_idx, s_idx, measured)
    return float(to_host(terms["data"]))


#: Levels tried for a guess (factors on delta and beta together): the linearised retrievals get the
#: shape of a strong object right before its level (measured: Paganin of gold at 1.5 keV correlates
#: 0.99 with the truth at an eighth of its level).
LEVELS = tuple(2.0 ** k for k in range(-3, 5))


def _fit_level(problem, obj: dict, loss1: float, a_idx, s_idx, measured) -> dict:
    """``obj`` scaled by the factor of :data:`LEVELS` with the lowest data loss."""
    best_f, best_loss = 1.0, loss1
    for f in LEVELS:
        if f == 1.0:
            continue
        loss = _data_loss(problem, {k: v * f for k, v in obj.items()}, a_idx, s_idx, measured)
        if np.isfinite(loss) and loss < best_loss:
            best_f, best_loss = f, loss
    if best_f != 1.0:
        log.info("initial guess scaled by %g (data loss %.4g -> %.4g)", best_f, loss1, best_loss)
    return {k: v * problem.backend.real_dtype(best_f) for k, v in obj.items()}


def _refine_ratio(problem, best: tuple, a_idx, s_idx, measured) -> tuple:
    """``best = (method, ratio, loss, obj)`` with the ratio refined between the decades of
    :data:`RATIOS` (not beyond them: the scale sweep's holo4-mid went to 0.0013 and 0.90) by
    halving steps in log(ratio) (factors 10^(1/2), 10^(1/4), 10^(1/8)): the
    retrieved low frequencies scale with the ratio, and the iterations barely move them
    (4-distance holography of a 1-rad object with beta/delta = 1/30, independent Adorym-layout
    file: started at 0.01, correlation 0.966 and delta 1.5x too large after 10 epochs; at the
    true ratio 0.9997). Only with several distances: from one, phase and absorption are not
    separable and the loss's minimum over the ratio misleads (single-distance holotomography of
    a beta/delta = 0.2 phantom: refined to 0.056, correlation 0.978 -> 0.948)."""
    m, r, loss, obj = best
    step = 10 ** 0.5
    for _ in range(3):
        for trial in (r * step, r / step):
            if not min(RATIOS) <= trial <= max(RATIOS):  # beyond the grid the loss misleads
                continue
            try:
                o = guess_object(problem, m, trial)
            except (FloatingPointError, ValueError):
                continue
            t_loss = _data_loss(problem, o, a_idx, s_idx, measured)
            if np.isfinite(t_loss) and t_loss < loss:
                m, r, loss, obj = m, trial, t_loss, o
                break
        step = step ** 0.5
    return (m, r, loss, obj)


def _known_ratio(problem) -> float | None:
    """beta/delta from ``init.absorption_ratio``, else from ``init.material`` at the data's
    energy (logged), else None (the data choose)."""
    init = problem.config.init
    if init.absorption_ratio is not None or not init.material:
        return init.absorption_ratio
    energy = problem.model.optics.energy_ev
    try:
        ratio = absorption_ratio(init.material, energy)
    except ConfigError as exc:
        raise ConfigError(f"init.material = {init.material!r}: {exc}") from None
    log.info("init.material = %s: beta/delta = %.4g at %.0f eV", init.material, ratio, energy)
    return ratio


def _closed_form_stage(problem, method: str, ratio, judge) -> tuple:
    """The best of vacuum and the closed-form guesses (``candidates``), its ratio refined between
    the decades with several distances: ``(method, ratio, loss, obj)``."""
    n_dist = problem.dataset.n_distances
    best = judge("vacuum", None)
    if method == "iterative" and (ratio is not None or n_dist >= 2):
        return best  # nothing to choose: the iteration's ratio is known
    for m, r in candidates(method, n_dist, ratio):
        trial = judge(m, r)
        if trial is not None and (trial[2] < best[2] or method != "auto" and best[0] == "vacuum"):
            best = trial
    if best[1] is not None and ratio is None and n_dist >= 2:
        best = _refine_ratio(problem, best, *judge.frames)
    return best


class _Judge:
    """Builds a candidate and measures its data loss on ``frames`` (angle and spot indices and
    their measured data); keeps the list of what was tried, for the choice's reason."""

    def __init__(self, problem, a_idx, s_idx):
        self.problem = problem
        self.frames = (a_idx, s_idx, problem.measured_batch(a_idx, s_idx))
        self.tried: list[str] = []

    def __call__(self, method: str, ratio) -> tuple | None:
        """``(method, ratio, loss, obj)``, or None where a guess failed or its loss is not
        finite (vacuum, ``obj`` None, is always returned)."""
        obj = None
        if method != "vacuum":
            try:
                obj = guess_object(self.problem, method, ratio)
            except (FloatingPointError, ValueError) as exc:
                log.debug("initial guess %s (ratio %s) failed: %s", method, ratio, exc)
                return None
        loss = _data_loss(self.problem, obj or {}, *self.frames)
        self.tried.append(f"{method}{'' if ratio is None else f'(beta/delta={ratio:g})'} {loss:.4g}")
        return (method, ratio, loss, obj) if np.isfinite(loss) or obj is None else None


def apply_initial_guess(problem, a_idx, s_idx, noise_misfit: float) -> list[Choice]:
    """Replace the vacuum start of ``problem`` by the guess ``init.guess`` asks for (judged on
    the frames ``a_idx`` x ``s_idx``); returns the choices made for ``init.guess`` (``"vacuum"``,
    ``"ctf"``, ``"paganin"``, ``"iterative"``) and ``init.absorption_ratio``.
    ``noise_misfit``: the data loss per pixel expected at the noise level (NaN: unknown), which
    decides whether ``"auto"`` tries the iterated guesses."""
    cfg = problem.config
    method = cfg.init.guess
    retrievable = problem.model.whole_object_images
    usable = (retrievable and "delta" in problem.params and cfg.init.object_path is None
              and cfg.init.delta == 0 and cfg.init.beta == 0)
    if method == "vacuum" or not usable:
        if method not in ("vacuum", "auto"):
            log.warning("init.guess = %s applies to near-field holography with a delta/beta object "
                        "started from constants; starting from %s instead", method,
                        "init.object_path" if cfg.init.object_path else "vacuum")
        if method == "auto" and retrievable:
            start = "init.object_path" if cfg.init.object_path else "init.delta/init.beta"
            return [Choice("init.guess", "vacuum", f"the object starts from {start}")]
        return []
    ratio = _known_ratio(problem)
    n_dist = problem.dataset.n_distances
    judge = _Judge(problem, a_idx, s_idx)
    best = _closed_form_stage(problem, method, ratio, judge)
    fits_to_noise = method == "auto" and best[2] <= ITERATE_ABOVE * noise_misfit
    if fits_to_noise:
        judge.tried.append(f"(not iterated: {best[0]} fits the data to "
                           f"{best[2] / noise_misfit:.2f}x the noise level)")
    for m, r in [] if fits_to_noise else iterative_candidates(method, n_dist, ratio, best[1]):
        trial = judge(m, r)
        if trial is not None and (trial[2] < best[2] or method == "iterative"
                                  and best[0] != "iterative"):
            best = trial
    if best[1] is not None and ratio is None and n_dist < 2:
        log.warning("one propagation distance: phase and absorption are not separable at low "
                    "spatial frequencies, so the level of delta follows the beta/delta ratio of "
                    "the starting guess (%g, the best of %s by the data loss). For quantitative "
                    "delta set init.material (e.g. 'SiO2 glass' or a formula) or "
                    "init.absorption_ratio", best[1], ", ".join(f"{r:g}" for r in RATIOS))
    if best[3] is not None:
        problem.params.update(_fit_level(problem, best[3], best[2], *judge.frames))
    why = f"lowest data loss of the candidates: {', '.join(judge.tried)}"
    choices = [] if method != "auto" else [Choice("init.guess", best[0], why)]
    if best[1] is not None and cfg.init.absorption_ratio is None:
        source = (f"init.material = {cfg.init.material!r}" if ratio is not None else
                  "refined by the data loss between the candidates"
                  if n_dist >= 2 else "the candidate with the lowest data loss")
        choices.append(Choice("init.absorption_ratio", float(best[1]), source))
    if method != "auto":
        log.info("initial guess: %s (%s)", best[0] if best[1] is None else
                 f"{best[0]} with beta/delta = {best[1]:g}", why)
    return choices


def start_on_every_pixel(problem, pixels: np.ndarray, a_idx, s_idx,
                         noise_misfit: float) -> dict | None:
    """The start a rerun of the run's saved configuration builds: it holds no pixel out, so its
    guess (the method and ratio this run chose, now in ``problem.config``) is retrieved from
    every pixel and its level fitted on them. The final fit on every pixel starts from it, so
    that the rerun repeats that fit. ``pixels``: the held-out pixels ``(fy, fx)``, held out
    again afterwards; returns ``{"delta", "beta"}``, or None where the start is vacuum or was
    retrieved from every pixel already."""
    if problem.config.init.guess == "vacuum" or not hides_held_out_pixels(problem):
        return None
    held_start = dict(problem.params)
    problem.restore_held_out_pixels()
    try:
        apply_initial_guess(problem, a_idx, s_idx, noise_misfit)
        return {k: problem.params[k] for k in ("delta", "beta") if k in problem.params}
    finally:
        problem.params = held_start
        problem.hold_out_pixels(pixels)
