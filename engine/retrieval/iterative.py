"""Near-field phase retrieval beyond the weak object: the CTF applied to the misfit of the exact
hologram model, repeated (a Gauss-Newton iteration whose Jacobian is the vacuum's, the CTF).

The CTF (:mod:`.ctf`) linearises the holograms of ``T = exp(i phi - B)`` about vacuum, which holds
for phases well below a radian. Here the holograms of the current estimate are computed exactly,
``I_n = |P_d T_n|^2`` (``P_d``: the engine's propagation kernel, :mod:`..physics.propagation`),
and the CTF solution of the misfit ``I - I_n`` is added::

    (phi, B)_{n+1} = (phi, B)_n + s CTF^+(I - I_n)

From vacuum the first step is the CTF retrieval itself; on an estimate that explains the data the
misfit is zero and nothing moves. The fixed point fits the data whatever the Tikhonov weight of
the CTF (it sets the speed, not the answer: iterated Tikhonov), and the phase is a real array
that is never wrapped, so it may exceed pi where the steps stay small. A step that does not lower
the misfit is halved (``s = 1, 1/2, 1/4, 1/8``, then the iteration stops). A step that lowers the
misfit by less than ``tol`` (relative) divides the weight by 10, down to ``min_alpha``, then the
iteration stops. The weight starts small: the lowest spatial frequencies, which every distance
sees faintly, otherwise take hundreds of steps; on noisy data the misfit soon stops falling at
the noise, and the iteration with it, instead of fitting the noise for long.

Alternating projections between the measured amplitudes at the distances (averaged or in
sequence) were tried first and converge far more slowly on the same objects: they leave the low
spatial frequencies, which no distance measures well, where the start put them
(benchmarks/README.md, "Time to quality on clean data").

Arrays: intensities ``(D, ny, nx)`` normalised so that vacuum gives 1; ``phi`` and ``B`` ``(ny,
nx)`` float64 radians (``phi = -k sum(delta dz)``, ``B = k sum(beta dz)``). ``xp``: NumPy or CuPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..physics.propagation import transfer_function
from .ctf import CTFInverse
from .masked import weighted_ctf_solve

__all__ = ["IterativeResult", "holograms", "iterative_ctf"]

#: Step factors tried in turn when a step does not lower the misfit.
STEPS = (1.0, 0.5, 0.25, 0.125)

#: Relative misfit of holograms that agree to double-precision round-off: nothing left to fit.
ROUND_OFF = 1e-24


@dataclass(frozen=True)
class IterativeResult:
    """``phi``, ``b``: the retrieved maps; ``misfits``: the relative intensity misfit
    ``||I_n - I||^2 / ||I||^2`` of the start and after every accepted step (one more entry
    than ``iterations``)."""

    phi: object
    b: object
    iterations: int
    misfits: tuple


def _kernels(shape, distances_m, wavelength_m: float, pixel_m: float, method: str, xp):
    return xp.asarray(np.stack([transfer_function(shape, pixel_m, d, wavelength_m, method)
                                for d in distances_m]))


def holograms(phi, b, kernels, xp=np):
    """Intensities ``(D, ny, nx)`` of ``T = exp(i phi - b)`` propagated with ``kernels``
    ``(D, ny, nx)`` (the thin-object model of the engine's near-field holography)."""
    spec = xp.fft.fft2(xp.exp(1j * phi - b))
    return xp.abs(xp.fft.ifft2(spec[None] * kernels)) ** 2


def _project(phi, b, nonneg: bool, xp):
    """delta >= 0 and beta >= 0: phi <= 0 and B >= 0."""
    if not nonneg:
        return phi, b
    return xp.minimum(phi, 0.0), xp.maximum(b, 0.0)


def _descend(point, direction, err, misfit, nonneg: bool, xp):
    """The first step of :data:`STEPS` along ``direction`` that lowers the misfit ``err``:
    ``(point, err, residual)`` there, or None."""
    for s in STEPS:
        trial = _project(point[0] + s * direction[0], point[1] + s * direction[1], nonneg, xp)
        t_err, t_resid = misfit(*trial)
        if t_err < err:
            return trial, t_err, t_resid
    return None


def iterative_ctf(intensities, distances_m, wavelength_m: float, pixel_m: float, *,
                  ratio: float | None = None, start=None, max_iter: int = 20,
                  alpha: float = 1e-4, min_alpha: float = 1e-6, tol: float = 0.01,
                  nonneg: bool = True, method: str = "fresnel", weights=None,
                  xp=np) -> IterativeResult:
    """``(phi, B)`` from near-field intensities by the iterated CTF (module docstring).

    ``ratio``: ``beta / delta`` of a homogeneous object (every step keeps ``B = -ratio phi``), or
    None for phase and absorption independent (as :func:`.ctf.ctf_retrieve`). ``start``:
    ``(phi, B)`` to start from, None = vacuum (the first step is the CTF retrieval). ``alpha``:
    the CTF's Tikhonov weight at the start, divided by 10 (down to ``min_alpha``) whenever a step
    lowers the misfit by less than the fraction ``tol``. ``nonneg``: keep ``delta, beta >= 0``
    (``phi <= 0, B >= 0``). ``method``: the propagation kernel (``"fresnel"`` or
    ``"angular_spectrum"``). ``weights``: ``(ny, nx)`` per detector pixel (0 = not used: a
    detector mask, held-out pixels), None = every pixel; the misfit and every CTF step
    (:func:`.masked.weighted_ctf_solve`) see only the weighted pixels.
    """
    inten = xp.asarray(intensities, dtype=xp.float64)
    if inten.ndim == 2:
        inten = inten[None]
    dist = [float(d) for d in np.atleast_1d(distances_m)]
    if len(dist) != inten.shape[0]:
        raise ValueError(f"{inten.shape[0]} intensity planes for {len(dist)} distances")
    kernels = _kernels(inten.shape[-2:], dist, wavelength_m, pixel_m, method, xp)
    w = 1.0 if weights is None else xp.asarray(weights, dtype=xp.float64)
    norm = float((w * inten * inten).sum()) or 1.0

    def misfit(p, q):
        r = holograms(p, q, kernels, xp) - inten
        return float((w * r * r).sum()) / norm, r

    if start is None:
        point = (xp.zeros(inten.shape[-2:]), xp.zeros(inten.shape[-2:]))
    else:
        point = _project(*(xp.asarray(a, dtype=xp.float64) for a in start), nonneg, xp)
    err, resid = misfit(*point)
    misfits = [err]
    inverse = CTFInverse(inten.shape, dist, wavelength_m, pixel_m, ratio=ratio, alpha=alpha, xp=xp)
    while len(misfits) <= max_iter and err > ROUND_OFF:
        direction = (inverse(1.0 - resid) if weights is None
                     else weighted_ctf_solve(inverse, 1.0 - resid, weights))
        step = _descend(point, direction, err, misfit, nonneg, xp)
        if step is None:
            break  # no step lowers the misfit: at (or stuck near) a fit
        gain = (err - step[1]) / err
        point, err, resid = step
        misfits.append(err)
        if gain < tol:
            if alpha / 10 < min_alpha:
                break
            alpha /= 10
            inverse = CTFInverse(inten.shape, dist, wavelength_m, pixel_m, ratio=ratio,
                                 alpha=alpha, xp=xp)
    return IterativeResult(point[0], point[1], len(misfits) - 1, tuple(misfits))
