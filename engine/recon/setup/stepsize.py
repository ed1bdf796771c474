"""Step sizes without units: per-parameter curvature along the gradient, measured on the data.

A learning rate in a parameter's own units (``lr_delta = 1e-7``) is right for one object and wrong
by orders of magnitude for another (delta spans 1e-7 .. 0.04 between hard X-rays through a cell and
soft X-rays through glass). Instead, at the start of a run, for each unknown ``p`` with gradient
``g`` the loss is sampled along the steepest-descent line ``phi(t) = L(p - t g)`` and the step
``t*`` that minimises the parabola through ``phi(0)``, ``phi'(0) = -<g, g>`` and ``phi(t)`` is
found by a few trial evaluations. ``t*`` is the inverse curvature of the loss along ``g`` (a
Rayleigh quotient of the Hessian), so ``t* * max|g|`` -- the largest change of one element in
that optimal step -- has the parameter's units and scales with the object: it is the unit in
which the optimisers' learning rates are expressed (see :func:`learning_rates`).

The procedure is scale-free by construction: the first trial step is the one for which the linear
model predicts a 10 % decrease of the loss, and every later trial is set from the fitted parabola.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...backend import array_module

log = logging.getLogger(__name__)

__all__ = ["LineScale", "curvature_step", "estimate_scales", "learning_rates", "ADAM_FRACTION",
           "ADAM_BOOST", "adam_boost", "safe_adam_floor"]

#: Adam moves an element by about its learning rate per step; a twentieth of the largest change of
#: the optimal steepest-descent step keeps late iterations from oscillating while reaching the
#: object's level in a few tens of steps (measured on the scale sweep, tests/test_defaults_sweep.py).
ADAM_FRACTION = 0.05

#: Adam's start-up boost (``optimizer.lr_boost``, :class:`.optimizers.Adam`) for an object built
#: from a start without structure (see :func:`adam_boost` for where it applies): its rates begin
#: at twice the measured one and decay to it over ~64 updates. The measured rate suits the end of
#: a run, where a larger step only adds noise (a thick 16-slice gold sphere sample, 2D model, 3e3
#: photons per frame, 40 epochs of minibatch 2D ptychography: illuminated-area correlation 0.86
#: at ADAM_FRACTION 0.05, 0.82 at 0.075; with this boost instead 0.858). At the start the object
#: must be built up from nothing, and a voxel's Adam step is smaller than its rate while the
#: minibatches disagree on its gradient -- in tomography each step is another angle's view
#: (ptychotomography of a PMMA foam cone, 32 angles: correlation 0.9 after 3 epochs at the
#: measured 0.021 of the true largest delta, after 2 at 0.03 or with the boost; an independent
#: 24-angle glass cone: 0.966 -> 0.982 after 12 epochs).
ADAM_BOOST = 2.0

#: Adam's fraction for the probe: every frame of every minibatch sees the whole probe, so its
#: gradient is far steadier than an object voxel's and it takes larger steps (a file probe 100 um
#: out of focus, noisy gold star, 60 epochs: 0.05 of the step left it at overlap 0.46 and
#: correlation 0.47; 0.5 reaches overlap 0.935 and correlation 0.935, the hand-tuned 0.03 0.94).
ADAM_PROBE_FRACTION = 0.5

#: Automatic rates of the probe and the distances are at least this fraction of the parameter's own
#: size (peak probe amplitude, mean distance): they start near their optimum (see
#: ``Solver._rate_floors``).
REFINE_FLOOR = 1e-3

#: Adam's rate is also at least this fraction of the parameter's present largest value: from a
#: good starting guess the optimal step is small, yet Adam must move the object on its own scale;
#: more than ~1 % per step and its early, sign-like steps wash a good guess out (measured: a 0.99
#: Paganin/FBP start of gold spheres fell to 0.85 in one epoch at 5 %).
ADAM_MAGNITUDE_FRACTION = 0.01

#: Factor on :data:`ADAM_FRACTION` for a run the validation loss watches (held-out data and
#: ``run.early_stop``). The measured rate is what a noisy fit can afford unwatched: larger steps
#: fit the noise sooner. It is slow where the object's lowest spatial frequencies must be built up
#: through the overlaps (a weak cell's smooth body in 2D ptychography), each element moving by at
#: most its rate per step. Watched, the plateau rule halves the rates once the fit turns to the
#: noise and the best estimate is the result, so the run can start at twice the rate (measured:
#: benchmarks/README.md, "Time to quality on clean data").
ADAM_WATCHED_FACTOR = 2.0

#: Momentum's learning rate multiplies gradients: a fraction of the inverse curvature t*.
MOMENTUM_FRACTION = 0.1


@dataclass(frozen=True)
class LineScale:
    """Result of :func:`curvature_step` for one parameter.

    ``t``: the optimal step along ``-g`` (parameter units per gradient unit); ``max_change``:
    ``t * max|g|`` (parameter units); ``decrease``: relative loss decrease at ``t``; ``evals``:
    loss evaluations spent.
    """

    t: float
    max_change: float
    decrease: float
    evals: int


def _norm2(g) -> float:
    xp = array_module(g)
    return float(xp.vdot(g, g).real)


def _peak(g) -> float:
    return float(array_module(g).abs(g).max())


def curvature_step(phi: Callable[[float], float], f0: float, gg: float, max_iter: int = 10) -> tuple[float, float, int]:
    """Minimise the parabola fitted to ``phi`` along a descent line; returns ``(t*, predicted
    phi(t*), evals)``.

    ``phi(t)``: loss at step ``t`` (``phi(0) = f0``, slope ``-gg`` at 0). Trials start where the
    linear model predicts a 10 % decrease, grow tenfold while the loss is flat (float round-off)
    or concave, shrink tenfold on non-finite losses, and otherwise jump to the parabola's minimum
    until it lies within a factor 3 of the trial (the parabola is then a fair local model).
    """
    if not (gg > 0 and math.isfinite(gg) and math.isfinite(f0)):
        return 0.0, f0, 0
    t = 0.1 * max(abs(f0), 1e-300) / gg
    best = (0.0, f0)
    evals = 0
    tried: list[float] = []
    for _ in range(max_iter):
        ft = float(phi(t))
        evals += 1
        tried.append(t)
        if not math.isfinite(ft):
            t *= 0.1
            continue
        if ft < best[1]:
            best = (t, ft)
        curv = (ft - f0 + gg * t) / (t * t)      # phi ~ f0 - gg t + curv t^2
        resolvable = abs(ft - f0) > 1e-5 * max(abs(f0), 1e-300)
        if curv <= 0 or not resolvable:
            t *= 10.0
            continue
        t_star = gg / (2.0 * curv)
        if t / 3.0 <= t_star <= 3.0 * t:
            # the parabola is a fair local model here: its minimum value is the prediction
            return t_star, f0 - 0.5 * gg * t_star, evals
        t = min(max(t_star, t / 100.0), t * 100.0)
        if best[0] > 0 and any(abs(t - u) <= 0.01 * u for u in tried):
            # back at a step already tried: along a line that is concave near 0 and rises past the
            # best trial, the parabolas through (0, a far trial) keep pointing back here
            break
    return best[0], best[1], evals


def estimate_scales(evaluate: Callable[[dict], tuple[float, dict]], params: dict,
                    names: list[str], loss: Callable[[dict], float] | None = None
                    ) -> tuple[dict[str, LineScale], float, dict]:
    """:class:`LineScale` of each parameter in ``names``, each along its own gradient block; also
    the loss and the gradients at ``params`` (``(scales, f0, grads)``).

    ``evaluate(trial) -> (loss, grads)`` evaluates the loss (and gradients) with ``trial``
    overriding ``params``; it is called once, with gradients. ``loss(trial) -> float`` (the loss
    alone, no gradient: the trials along each line) defaults to ``evaluate(trial)[0]``.
    """
    unknowns = {n: params[n] for n in names}
    f0, grads = evaluate(unknowns)
    f0 = float(f0)
    out = {}
    for n in names:
        p = params[n]
        g = grads[n]
        if np.iscomplexobj(g) and not np.iscomplexobj(p):
            g = g.real
        gg = _norm2(g)

        def phi(t, n=n, p=p, g=g):
            trial = {**unknowns, n: p - t * g}
            return loss(trial) if loss is not None else evaluate(trial)[0]

        t, ft, evals = curvature_step(phi, f0, gg)
        dec = (f0 - ft) / f0 if f0 else 0.0
        out[n] = LineScale(t, t * _peak(g), dec, evals)
        log.debug("curvature step of %s: t*=%.3e, largest change %.3e, loss -%.1f %% (%d evaluations)",
                  n, t, out[n].max_change, 100 * dec, evals)
    return out, f0, grads


def learning_rates(scales: dict[str, LineScale], kind: str,
                   magnitudes: dict[str, float] | None = None,
                   watched: bool = False) -> dict[str, float]:
    """Learning rates for optimiser ``kind`` from measured line scales, in the units the optimiser
    documents (see :mod:`..loop.optimizers`):

    * ``lbfgs`` -- the largest change of the first step: ``max_change`` (its preconditioner then
      equals ``t*``, the measured inverse curvature of each block);
    * ``adam`` -- about the change of an element per step: :data:`ADAM_FRACTION` of ``max_change``
      (times :data:`ADAM_WATCHED_FACTOR` for the object of a run the validation loss ``watched``),
      at least :data:`ADAM_MAGNITUDE_FRACTION` of the parameter's present largest value
      (``magnitudes``);
    * ``momentum`` -- multiplies gradients: :data:`MOMENTUM_FRACTION` of ``t*``.

    A parameter whose loss did not respond (zero gradient) gets 0: it is left alone.
    """
    out = {}
    for n, s in scales.items():
        if kind == "lbfgs":
            out[n] = s.max_change
        elif kind == "adam":
            frac = ADAM_PROBE_FRACTION if n == "probe" else ADAM_FRACTION
            if watched and n in ("delta", "beta", "object"):
                frac *= ADAM_WATCHED_FACTOR
            out[n] = max(frac * s.max_change,
                         ADAM_MAGNITUDE_FRACTION * (magnitudes or {}).get(n, 0.0))
        elif kind == "momentum":
            out[n] = MOMENTUM_FRACTION * s.t
        else:
            raise ValueError(f"unknown optimiser {kind!r}")
        if not (math.isfinite(out[n]) and out[n] >= 0):
            out[n] = 0.0
    return out


#: :func:`safe_adam_floor` divides a floor by this factor per trial, at most :data:`FLOOR_TRIALS`
#: times.
FLOOR_CUT = 10.0
FLOOR_TRIALS = 4


def safe_adam_floor(loss: Callable, p, g, f0: float, floor: float, measured: float,
                    eps: float) -> float:
    """The largest of ``floor``, ``floor / 10``, ... (:data:`FLOOR_TRIALS` of them; else, or when
    they reach it, ``measured``) at which Adam's first
    step -- every element moved by about the rate against its gradient's sign,
    ``p - lr g / (|g| + eps max|g|)`` -- does not raise ``loss`` above ``f0``.

    A floor relative to the parameter's own size (a probe from the file, near its optimum) is
    right while the frames carry a signal of that size; on a weak object (phase 1e-5 per pixel)
    the whole fit lives far below it and a thousandth of the probe's amplitude per step ruins it
    (measured: noise-free 2D and multislice ptychography of a PMMA foam rolled back 4 times when
    the probe's refinement started, and every rollback halved the object's rate too).
    ``loss(value) -> float``: the loss with this parameter replaced by ``value``.
    """
    xp = array_module(g)
    if np.iscomplexobj(g) and not np.iscomplexobj(p):
        g = g.real
    mag = xp.abs(g)
    peak = float(mag.max())
    if not (peak > 0 and math.isfinite(f0)):
        return floor
    direction = g / (mag + eps * peak)
    rate = floor
    for _ in range(FLOOR_TRIALS):
        if rate <= measured:
            return measured
        trial = float(loss(p - rate * direction))
        if math.isfinite(trial) and trial <= f0:
            return rate
        rate /= FLOOR_CUT
    return measured


def adam_boost(flat_start: bool, measured: bool, refines_experiment: bool) -> float:
    """``optimizer.lr_boost`` when unset: :data:`ADAM_BOOST` where the object's rates are
    ``measured`` and it has a ``flat_start`` (vacuum or a constant: it must be built from
    nothing) and the run does not refine the probe, positions or distances
    (``refines_experiment``), else 1. A start with structure -- a physics-based guess, an earlier
    result -- is near the object already: a boosted, sign-like first epoch washes it out
    (holotomography of gold from a Paganin/FBP start: correlation 0.97 -> 0.94 after one epoch
    with the boost). An object built fast under a wrong probe takes the probe's errors in, which
    the probe's refinement must then undo (gold star, probe 100 um out of focus, 6 minibatches
    per epoch, 60 epochs: probe overlap 0.905 -> 0.876 with the boost; the probe search ranks
    the wrong centring on the weak cone). A rate set by hand is used as given."""
    return ADAM_BOOST if flat_start and measured and not refines_experiment else 1.0
