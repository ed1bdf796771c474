"""Near-field phase retrieval from part of the detector: the CTF and Paganin solved on weighted pixels.

The closed-form retrievals (:mod:`.ctf`) use every detector pixel, which is wrong twice over:
a bad pixel (a detector mask's 0) pulls its Fresnel zone's phase, and a pixel held out of the fit
to watch it (the validation loss, ``run.validation_share``) must not shape the start, or the
start predicts it from its own noise and every fit seems to get worse from its first epoch
(four-distance holography of a weak cell at 1e5 photons: no weight was ever chosen; with the
start from the seen pixels, 0.88 -> 1.04 of the best hand-set weight; benchmarks/README.md,
"Counting noise: the defaults"). Which pixels a run's start leaves out is decided in
:func:`..recon.setup.initial_guess.fitted_pixels`.

Here the same least-squares problems are solved with a weight per pixel ``w`` (0 = not seen)::

    CTF:      min_x  sum_d || w^1/2 (A_d x - (I_d - 1)) ||^2 + reg ||x||^2
    Paganin:  min_f  || w^1/2 (K f - I) ||^2 + eps ||grad f||^2,   K = 1 + chi / ratio

by conjugate gradients on the normal equations, preconditioned by the unweighted solution (the
per-frequency inverse, exact when every ``w`` is 1): with a few % of the pixels out it
converges in tens of iterations. A pixel of weight 0 has no influence on the result, to the
solver's tolerance. Paganin's small gradient term (``eps``, relative to ``K``'s least value 1) fills
an unseen pixel from its neighbours where ``K`` couples it to nothing.

Arrays: intensities ``(D, ny, nx)`` normalised so that vacuum gives 1; ``weights`` ``(ny, nx)``
(the same on every distance) or ``(D, ny, nx)``; results ``(ny, nx)`` float64 radians.
"""

from __future__ import annotations

import logging

import numpy as np

from .ctf import CTFInverse, fresnel_phase

log = logging.getLogger(__name__)

__all__ = ["conjugate_gradients", "gradient_transfer", "weighted_ctf_solve",
           "weighted_ctf_retrieve", "weighted_paganin_retrieve"]

#: Relative residual of the normal equations at which the iterations stop.
TOL = 1e-6
#: Iterations at most (a mask of a few % converges in 10-40).
MAX_ITER = 300
#: Paganin's gradient penalty, relative to the least transfer (1, at zero frequency).
PAGANIN_SMOOTH = 0.1
#: The CTF's gradient penalty, relative to its Tikhonov weight: what fills the object behind an
#: unseen pixel (one distance: nothing else measures it).
CTF_SMOOTH = 10.0


def conjugate_gradients(apply_n, rhs, precondition, x0, tol: float = TOL,
                        max_iter: int = MAX_ITER, xp=np):
    """Solve ``N x = rhs`` for a symmetric positive definite ``N`` (``apply_n``), preconditioned
    by ``precondition`` (an approximate ``N^-1``), from ``x0``; arrays of any one shape.
    Returns ``(x, iterations, relative residual)``."""
    x = x0
    r = rhs - apply_n(x)
    norm_b = float(xp.sqrt((rhs * rhs).sum())) or 1.0
    z = precondition(r)
    p = z
    rz = float((r * z).sum())
    for it in range(max_iter):
        res = float(xp.sqrt((r * r).sum())) / norm_b
        if res <= tol:
            return x, it, res
        q = apply_n(p)
        step = rz / float((p * q).sum())
        x = x + step * p
        r = r - step * q
        z = precondition(r)
        rz_new = float((r * z).sum())
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, max_iter, float(xp.sqrt((r * r).sum())) / norm_b


def _as_weights(weights, shape, xp):
    w = xp.asarray(weights, dtype=xp.float64)
    return xp.broadcast_to(w, shape)


def gradient_transfer(shape, xp=np):
    """Per-frequency ``|grad|^2`` of the discrete gradient, ``(ny, nx)``, between 0 and 8."""
    v = xp.fft.fftfreq(shape[0])
    u = xp.fft.fftfreq(shape[1])
    return 4 * xp.sin(np.pi * v[:, None]) ** 2 + 4 * xp.sin(np.pi * u[None, :]) ** 2


def weighted_ctf_solve(inverse: CTFInverse, intensities, weights, smooth: float = CTF_SMOOTH,
                       tol: float = TOL, max_iter: int = MAX_ITER):
    """``(phi, B)`` of the CTF least squares on the pixels weighted by ``weights``, with the
    distances, ratio and Tikhonov weight of ``inverse`` and a gradient penalty ``smooth`` times
    that weight (the module docstring)."""
    xp = inverse.xp
    inten = xp.asarray(intensities, dtype=xp.float64)
    if inten.ndim == 2:
        inten = inten[None]
    w = _as_weights(weights, inten.shape, xp)
    fft2, ifft2 = xp.fft.fft2, xp.fft.ifft2
    extra = smooth * inverse.reg * gradient_transfer(inten.shape[-2:], xp)

    def a_t_w(g):  # A^T w g, real (K, ny, nx)
        return ifft2(inverse.adjoint(fft2(w * g))).real

    def apply_n(x):
        x_f = fft2(x)
        predicted = ifft2(inverse.forward(x_f)).real
        return a_t_w(predicted) + ifft2((inverse.reg + extra) * x_f).real

    def precondition(r):
        return ifft2(inverse.solve(fft2(r), extra)).real

    rhs = a_t_w(inten - 1.0)
    x, iterations, res = conjugate_gradients(apply_n, rhs, precondition, precondition(rhs),
                                             tol, max_iter, xp)
    if res > tol:
        log.debug("weighted CTF: residual %.2g after %d iterations", res, iterations)
    phi = x[0]
    return (phi, -inverse.ratio * phi) if inverse.ratio is not None else (phi, x[1])


def weighted_ctf_retrieve(intensities, weights, distances_m, wavelength_m: float,
                          pixel_m: float, *, ratio: float | None = None, alpha: float = 1e-2,
                          smooth: float = CTF_SMOOTH, xp=np):
    """:func:`.ctf.ctf_retrieve` on the pixels weighted by ``weights`` (0 = not used)."""
    inten = xp.asarray(intensities, dtype=xp.float64)
    inverse = CTFInverse(inten.shape, distances_m, wavelength_m, pixel_m, ratio=ratio,
                         alpha=alpha, xp=xp)
    return weighted_ctf_solve(inverse, inten, weights, smooth)


def weighted_paganin_retrieve(intensity, weights, distance_m: float, wavelength_m: float,
                              pixel_m: float, ratio: float, xp=np):
    """:func:`.ctf.paganin_retrieve` on the pixels weighted by ``weights`` (``(ny, nx)``)."""
    if not ratio > 0:
        raise ValueError(f"Paganin retrieval needs beta/delta > 0, got {ratio}")
    inten = xp.asarray(intensity, dtype=xp.float64)
    w = _as_weights(weights, inten.shape, xp)
    shape = inten.shape[-2:]
    kernel = 1.0 + fresnel_phase(shape, pixel_m, wavelength_m, distance_m, xp) / ratio
    # an unseen pixel coupled to nothing takes its neighbours' mean
    smooth = PAGANIN_SMOOTH * gradient_transfer(shape, xp)
    fft2, ifft2 = xp.fft.fft2, xp.fft.ifft2

    def apply_n(f):
        kf = ifft2(kernel * fft2(f)).real
        return ifft2(kernel * fft2(w * kf) + smooth * fft2(f)).real

    def precondition(r):
        return ifft2(fft2(r) / (kernel * kernel + smooth)).real

    rhs = ifft2(kernel * fft2(w * inten)).real
    filtered, _, _ = conjugate_gradients(apply_n, rhs, precondition, precondition(rhs),
                                         TOL, MAX_ITER, xp)
    b = -0.5 * xp.log(xp.maximum(filtered, 1e-6))
    return -b / ratio, b
