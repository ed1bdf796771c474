"""Numerical checks for primitives: finite-difference gradients and adjoint dot-product tests.

Use them when adding an operator (the test-suite does, for every primitive):

* :func:`check_grad` compares ``value_and_grad`` of a real scalar function with central finite
  differences along random real *and* imaginary directions (run it in float64/complex128).
* :func:`check_adjoint` checks that a primitive's recorded VJP is the adjoint of its Jacobian:
  ``Re<J v, w> == Re<v, J^H w>``, with ``J v`` from the operator itself when it is linear, or
  from central differences otherwise.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .autodiff import Tape, Tensor, data, value_and_grad
from .backend import array_module


def _rand_like(rng: np.random.Generator, x, xp):
    x = data(x)
    r = rng.standard_normal(x.shape)
    if np.iscomplexobj(x):
        r = r + 1j * rng.standard_normal(x.shape)
    return xp.asarray(r.astype(x.dtype))


def _vdot(a, b) -> float:
    """Real inner product ``Re(sum(conj(a) * b))`` as a Python float."""
    xp = array_module(a)
    return float(xp.real(xp.sum(xp.conj(a) * b)).item())


def check_grad(f: Callable, args: list, argnum: int = 0, *, n_dirs: int = 3, eps: float = 1e-6,
               rtol: float = 1e-5, seed: int = 0) -> float:
    """Assert that the AD gradient of ``f(*args)`` w.r.t. ``args[argnum]`` matches central
    differences along ``n_dirs`` random directions, purely real and (for complex inputs) purely
    imaginary. Returns the worst relative error. Use float64 inputs."""
    rng = np.random.default_rng(seed)
    x = args[argnum]
    xp = array_module(x)
    _, g = value_and_grad(f, argnums=argnum)(*args)
    worst = 0.0
    kinds = ("real", "imag") if np.iscomplexobj(x) else ("real",)
    for _ in range(n_dirs):
        for kind in kinds:
            v = _rand_like(rng, x, xp).real.astype(x.dtype)
            if kind == "imag":
                v = 1j * v
            a_plus = list(args)
            a_minus = list(args)
            a_plus[argnum] = x + eps * v
            a_minus[argnum] = x - eps * v
            fd = (float(data(f(*a_plus)).real) - float(data(f(*a_minus)).real)) / (2 * eps)
            ad = _vdot(g, v)
            err = abs(fd - ad) / max(abs(fd), abs(ad), 1e-12)
            worst = max(worst, err)
            if err > rtol:
                raise AssertionError(f"gradient mismatch along a {kind} direction: AD {ad:.10g} vs "
                                     f"finite differences {fd:.10g} (relative error {err:.2e})")
    return worst


def check_adjoint(op: Callable, x, *, linear: bool, eps: float = 1e-6, rtol: float = 1e-9,
                  seed: int = 1) -> float:
    """Assert ``Re<J v, w> == Re<v, VJP(w)>`` for the single-input primitive ``op`` at ``x``.

    ``linear=True`` takes ``J v = op(v)`` (exact, tight tolerance); otherwise ``J v`` comes from
    central differences and ``rtol`` should be loosened (about 1e-6 in float64).
    Returns the relative mismatch.
    """
    rng = np.random.default_rng(seed)
    xp = array_module(x)
    v = _rand_like(rng, x, xp)
    tape = Tape()
    leaf = tape.watch(x)
    out = op(leaf)
    if not isinstance(out, Tensor):
        raise AssertionError("operator did not record on the tape")
    w = _rand_like(rng, out.data, xp)
    grads = tape.backward(out, seed=w)
    vjp = grads.get(id(leaf))
    if vjp is None:
        raise AssertionError("no gradient reached the input")
    if not np.iscomplexobj(data(x)) and np.iscomplexobj(vjp):
        vjp = vjp.real
    if linear:
        jv = data(op(v))
    else:
        jv = (data(op(x + eps * v)) - data(op(x - eps * v))) / (2 * eps)
    lhs = _vdot(jv, w)
    rhs = _vdot(v, vjp)
    err = abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-30)
    if err > rtol:
        raise AssertionError(f"adjoint test failed: <Jv, w> = {lhs:.12g}, <v, J^H w> = {rhs:.12g} "
                             f"(relative error {err:.2e})")
    return err
