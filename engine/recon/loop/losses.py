"""Data-fidelity losses: modelled versus measured far-/near-field intensities.

Shapes: predictions and measurements are ``(A, S, fy, fx)`` (angles, scan spots, detector rows,
columns) or any shape with the detector in the last two axes; a ``mask`` broadcasts against them
(typically ``(fy, fx)``; 1 = use the pixel, 0 = ignore it, fractional values weight it).

Every loss is the *mean over used pixels* (sum of weights), so its scale and the learning rates do
not depend on the batch or detector size. Each is ONE primitive with a hand-written VJP: on the hot
path of ptychography this keeps one node and one real array per call on the tape instead of a chain
of elementwise temporaries.

* :func:`amplitude_loss_from_field` -- ``mean (|psi| - a)^2`` from the exit/detector field; the
  preferred form: its gradient ``(|psi| - a) psi/|psi|`` is bounded, where the gradient of
  ``sqrt(I)`` blows up at ``I = 0``.
* :func:`amplitude_loss` -- the same from intensities, ``mean (sqrt(I + eps) - sqrt(I_meas))^2``.
* :func:`poisson_nll` / :func:`poisson_nll_from_field` -- ``mean (I - I_meas log(I + eps))``.

With several incoherent probe modes the field carries a mode axis (``mode_axis``) and the modelled
intensity is ``sum_modes |psi|^2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...autodiff import data, primitive, record
from ...backend import array_module

__all__ = ["amplitude_loss", "amplitude_loss_from_field", "poisson_nll", "poisson_nll_from_field",
           "LossSpec", "LOSSES", "get_loss", "POISSON_EPS_REL"]


def _weights(mask, shape: tuple, dtype, xp):
    """(weights or None, number of used pixels) for a mask broadcast to ``shape``."""
    if mask is None:
        return None, float(np.prod(shape))
    w = xp.asarray(data(mask)).astype(dtype, copy=False)
    n = float(xp.broadcast_to(w, shape).sum())
    if n <= 0:
        raise ValueError("the detector mask excludes every pixel; nothing to compare")
    return w, n


def _intensity(field, mode_axis):
    """sum over modes of |psi|^2 (real) from a complex field."""
    i = field.real ** 2 + field.imag ** 2
    return i if mode_axis is None else i.sum(axis=mode_axis)


def _amplitude(field, mode_axis):
    """``sqrt(sum over modes |psi|^2)``: one ``abs`` pass when there is a single mode."""
    xp = array_module(field)
    if np.iscomplexobj(field) and (mode_axis is None or field.shape[mode_axis] == 1):
        amp = xp.abs(field)
        return amp if mode_axis is None else xp.squeeze(amp, axis=mode_axis)
    return xp.sqrt(_intensity(field, mode_axis))


def _times_field(g, scale, field):
    """``g * scale * field`` for a real per-pixel ``scale``; a single complex-size pass when the
    incoming cotangent is the scalar 1 (the loss is normally the last node of the tape)."""
    if array_module(field) is np and np.size(g) == 1:
        c = float(np.real(np.asarray(g)).reshape(-1)[0])
        out = field * scale
        if c != 1.0:
            out *= c
        return out
    return g * scale * field


def _expand(a, mode_axis):
    """Re-insert the summed mode axis so a per-pixel factor multiplies every mode."""
    return a if mode_axis is None else array_module(a).expand_dims(a, mode_axis)


@primitive
def amplitude_loss_from_field(field, measured_amplitude, mask=None, mode_axis: int | None = None):
    """``sum(w (A - a)^2) / sum(w)`` with ``A = sqrt(sum_modes |field|^2)``.

    field: complex, ``(A, S, [modes,] fy, fx)`` (Tensor or array); ``mode_axis`` names the mode axis
    if present. measured_amplitude: real ``sqrt(I_meas)``, the field's shape without the mode axis
    (precompute it once per data set). Returns a real scalar. The gradient with respect to the field
    is ``2 w (A - a) psi / A / sum(w)``, taken as 0 where ``A = 0``.
    """
    f = data(field)
    xp = array_module(f)
    amp = _amplitude(f, mode_axis)
    a = xp.asarray(data(measured_amplitude))
    w, n = _weights(mask, amp.shape, amp.dtype, xp)
    r = amp - a
    wr = r if w is None else w * r
    out = xp.asarray((wr * r).sum() / n, dtype=amp.dtype)
    # the residual is computed once; backward needs only this real per-pixel factor
    # 2 w r / A, in place (few full-size temporaries: this is the ptychography hot path); where
    # A = 0 the field is 0 too, so any finite factor gives the documented zero gradient
    amp[amp == 0] = 1
    wr *= 2.0 / n
    wr /= amp
    scale = wr
    del r, a, amp

    def vjp(g):
        return (_times_field(g, _expand(scale, mode_axis), f), None)

    return record(out, (field, measured_amplitude), vjp, "amplitude_loss_from_field")


@primitive
def amplitude_loss(pred_intensity, measured_intensity, mask=None, eps: float = 1e-12):
    """``sum(w (sqrt(I + eps) - sqrt(I_meas))^2) / sum(w)`` from intensities (Tensor or array).

    Negative measured values (background subtraction noise) are clipped to 0. ``eps`` is in
    intensity units and only keeps ``sqrt`` differentiable at 0; prefer
    :func:`amplitude_loss_from_field`, whose gradient stays bounded there.
    """
    ip = data(pred_intensity)
    xp = array_module(ip)
    root = xp.sqrt(xp.maximum(ip, 0) + eps)
    a = xp.sqrt(xp.maximum(xp.asarray(data(measured_intensity)), 0))
    w, n = _weights(mask, root.shape, root.dtype, xp)
    r = root - a
    wr = r if w is None else w * r
    out = xp.asarray((wr * r).sum() / n, dtype=root.dtype)
    scale = (1.0 / n) * wr / root  # d/dI (sqrt(I+eps) - a)^2 = (sqrt(I+eps) - a) / sqrt(I+eps)

    def vjp(g):
        return (g * scale, None)

    return record(out, (pred_intensity, measured_intensity), vjp, "amplitude_loss")


def _poisson(ip, measured_intensity, mask, eps):
    """(mean weighted NLL, w * dNLL/dI per pixel, sum of weights) for intensities ``ip``."""
    xp = array_module(ip)
    y = xp.asarray(data(measured_intensity))
    w, n = _weights(mask, ip.shape, ip.dtype, xp)
    ipe = ip + eps
    # the deviance: the log-likelihood minus that of a perfect fit, so 0 at I = I_meas. The
    # plain I - y log I carries a large constant (~ photons per pixel) whose single-precision sum
    # swallows the changes an object makes (a weak star: 7e-7 of it, below round-off), and a
    # negative loss breaks every relative rule (curvature steps, divergence, penalty scale)
    term = ip - y - y * xp.log(ipe / (y + eps))
    out = xp.asarray((term if w is None else w * term).sum() / n, dtype=ip.dtype)
    d = 1 - y / ipe
    return out, (d if w is None else w * d), n


@primitive
def poisson_nll(pred_intensity, measured_intensity, mask=None, eps: float = 1e-9):
    """``sum(w (I - y - y log((I + eps) / (y + eps)))) / sum(w)`` with ``y = I_meas``: the Poisson
    negative log-likelihood per pixel relative to a perfect fit (the deviance / 2).

    Minimal, 0, at ``I = I_meas``; never negative. ``eps`` is in intensity units and keeps the
    logarithm finite where the model predicts no photons.
    """
    ip = data(pred_intensity)
    out, wd, n = _poisson(ip, measured_intensity, mask, eps)
    scale = (1.0 / n) * wd

    def vjp(g):
        return (g * scale, None)

    return record(out, (pred_intensity, measured_intensity), vjp, "poisson_nll")


@primitive
def poisson_nll_from_field(field, measured_intensity, mask=None, mode_axis: int | None = None,
                           eps: float = 1e-9):
    """:func:`poisson_nll` of ``I = sum_modes |field|^2`` as one primitive (gradient
    ``2 w (1 - I_meas/(I + eps)) psi / sum(w)``)."""
    f = data(field)
    out, wd, n = _poisson(_intensity(f, mode_axis), measured_intensity, mask, eps)
    scale = (2.0 / n) * wd

    def vjp(g):
        return (_times_field(g, _expand(scale, mode_axis), f), None)

    return record(out, (field, measured_intensity), vjp, "poisson_nll_from_field")


#: Intensity floor of the Poisson likelihood, relative to the mean measured intensity per pixel.
#: Where the model predicts (almost) no photons but some were counted, the gradient of
#: ``I - y log(I + eps)`` with respect to the field grows like ``y / |psi|``: with a tiny absolute
#: ``eps`` the single-precision round-off of dark far-field pixels (|psi|^2 ~ 1e-10 of the photon
#: counts) produces gradients 1e4 times the physical ones and Adam stalls (phase correlation 0.2
#: instead of 0.999 on a noisy Siemens star). 1e-5 of the mean level (~0.01 photon in a 1e6-photon
#: 32x32 frame) bounds them and is far below one photon; results are flat for 1e-7..1e-4.
POISSON_EPS_REL = 1e-5


@dataclass(frozen=True)
class LossSpec:
    """A loss by name: both entry points and what the ``from_field`` form wants as measurement.

    ``eps_rel``: intensity floor of the loss relative to the mean measured intensity per pixel
    (0: the loss takes no floor); :meth:`field_loss` turns it into the absolute ``eps``.
    """

    name: str
    from_intensity: Callable   # (pred_intensity, measured_intensity, mask) -> scalar
    from_field: Callable       # (field, prepared_measurement, mask, mode_axis[, eps]) -> scalar
    prepare: Callable          # measured intensity -> the measurement ``from_field`` takes
    eps_rel: float = 0.0

    def __call__(self, pred_intensity, measured_intensity, mask=None):
        return self.from_intensity(pred_intensity, measured_intensity, mask)

    def field_loss(self, field, prepared, mask, mode_axis, mean_intensity: float):
        """The loss of complex model fields against a prepared measurement; ``mean_intensity``
        (per pixel, of the measured frames) scales the floor ``eps_rel``."""
        if self.eps_rel > 0:
            eps = max(self.eps_rel * float(mean_intensity), 1e-30)
            return self.from_field(field, prepared, mask, mode_axis=mode_axis, eps=eps)
        return self.from_field(field, prepared, mask, mode_axis=mode_axis)


def _sqrt_clipped(i):
    xp = array_module(i)
    return xp.sqrt(xp.maximum(i, 0))


LOSSES: dict[str, LossSpec] = {
    "amplitude": LossSpec("amplitude", amplitude_loss, amplitude_loss_from_field, _sqrt_clipped),
    "poisson": LossSpec("poisson", poisson_nll, poisson_nll_from_field, lambda i: i,
                        eps_rel=POISSON_EPS_REL),
}


def get_loss(name: str) -> LossSpec:
    """The :class:`LossSpec` called ``name`` (``amplitude`` | ``poisson``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
