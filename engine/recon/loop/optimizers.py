"""Optimisers over dicts of backend arrays with one learning rate per parameter name.

Parameters are the model's named arrays (``delta``, ``beta``, ``object``, ``probe``, ``positions``,
``distances``; see docs/ARCHITECTURE.md). Gradients follow the engine's complex convention
``grad = dL/dRe + i dL/dIm``, so ``p -= lr * g`` descends for real and complex ``p`` alike, and
inner products are ``Re <a, b>``. A real parameter stays real (an accidental complex gradient
contributes its real part only).

Common interface::

    opt.step(params, grads, closure=None, loss=None) -> params   # updates params in place
    opt.set_lr(name, value)          # e.g. from the GUI while paused; 0 freezes the parameter
    opt.state_dict() / opt.load_state_dict(state)                 # host arrays, for checkpoints
    opt.reset(name=None)             # forget history (a parameter's refinement (re)starts)

Only the names present in ``grads`` are updated. Meaning of the learning rate:

* :class:`Adam` -- roughly the largest change of an element per step, in the parameter's units.
  Its ``eps`` is *relative* to the largest ``sqrt(v)`` of that parameter, so the method does not
  depend on how the loss is normalised (per-pixel means make gradients tiny). At 1e-2 an element
  whose gradients stay below 1 % of the largest -- voxels the probe barely lights -- takes
  proportionally smaller steps instead of Adam's full, sign-like ones, which walk them off on
  noise (noisy weak multislice ptychography: correlation over the grid 0.85 -> 0.92; the scale
  sweep equal or better, ptychotomography 0.96 -> 0.98). Its ``boost`` (>= 1) multiplies the
  object's rates (:data:`BOOSTED`) at the start and decays to 1 with a time constant of
  ``boost_updates`` steps of that parameter: rate ``lr (1 + (boost - 1) exp(-(t - 1) /
  boost_updates))`` at step ``t`` (1-based) -- a fast start, a quiet end (see
  :data:`.stepsize.ADAM_BOOST`).
* :class:`Momentum` -- classic heavy ball: ``b = mu b + g; p -= lr b`` (lr multiplies gradients).
* :class:`LBFGS` -- lr sets the diagonal preconditioner: the first (steepest-descent) trial step
  changes each parameter by at most its lr; later steps are quasi-Newton with a backtracking
  (Armijo) line search. Needs ``closure(params) -> (loss, grads)`` on the same data every step.
"""

from __future__ import annotations

import math

import numpy as np

from ...backend import array_module, to_host

__all__ = ["Optimizer", "Adam", "Momentum", "LBFGS", "OPTIMIZERS", "make_optimizer"]


def _real_like(p, g):
    """The gradient as applied to ``p``: real part only for a real parameter."""
    return g.real if np.iscomplexobj(g) and not np.iscomplexobj(p) else g


def _to(a, ref, real: bool = False):
    """``a`` on ``ref``'s backend with ``ref``'s dtype (its real counterpart if ``real``): state
    loaded from a checkpoint is host NumPy until the first step meets the live parameters."""
    xp = array_module(ref)
    dtype = ref.real.dtype if real else ref.dtype
    if array_module(a) is xp and a.dtype == dtype:
        return a
    return xp.asarray(a, dtype=dtype)


def _host_tree(obj):
    if isinstance(obj, dict):
        return {k: _host_tree(v) for k, v in obj.items()}
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        return np.array(to_host(obj), copy=True)
    return obj


class Optimizer:
    """Base class: learning rates, state bookkeeping, the common interface.

    What the rest of the run asks of an optimiser, instead of its name:
    ``full_batch``: every step must see the same data (curvature pairs and a line search);
    ``per_element_steps``: it moves each element by about its learning rate whatever the
    gradient's size (Adam), so a rate too large shows as a plateau above the best loss, a
    parameter started near its optimum needs a floor under a measured rate, and a start-up boost
    applies; ``scales_own_steps``: its steps grow from the measured rate by its own curvature
    estimates (L-BFGS), so no floor is needed; ``state_slots(history)``: object-sized arrays of
    state it keeps per unknown (for the memory estimate).
    """

    kind = ""
    full_batch = False
    per_element_steps = False
    scales_own_steps = False

    @classmethod
    def state_slots(cls, history: int) -> int:
        return 1

    def __init__(self, lrs: dict[str, float]):
        self.lrs: dict[str, float] = {}
        for name, value in lrs.items():
            self.set_lr(name, value)
        self.state: dict[str, dict] = {}

    def set_lr(self, name: str, value: float) -> None:
        """Set the learning rate of ``name`` (>= 0; 0 freezes it). Takes effect at the next step."""
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"learning rate of {name!r} must be a finite number >= 0, got {value}")
        self.lrs[name] = value

    def _lr(self, name: str) -> float:
        try:
            return self.lrs[name]
        except KeyError:
            raise ValueError(f"no learning rate for parameter {name!r}; known: "
                             f"{', '.join(self.lrs)}") from None

    def reset(self, name: str | None = None) -> None:
        """Forget the history of ``name`` (or of everything)."""
        if name is None:
            self.state.clear()
        else:
            self.state.pop(name, None)

    def _hyper(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        """Checkpointable state: ``kind``, ``lrs``, hyper-parameters and per-parameter host arrays."""
        return {"kind": self.kind, "lrs": dict(self.lrs), "hyper": self._hyper(),
                "state": _host_tree(self.state)}

    def load_state_dict(self, state: dict, restore_lrs: bool = False) -> None:
        """Restore :meth:`state_dict` output. The current learning rates are kept (the
        configuration of a resumed run wins) unless ``restore_lrs``."""
        if state.get("kind") != self.kind:
            raise ValueError(f"optimiser state is for {state.get('kind')!r}, not {self.kind!r}")
        for k, v in state.get("hyper", {}).items():
            setattr(self, k, v)
        if restore_lrs:
            for name, value in state["lrs"].items():
                self.set_lr(name, value)
        self.state = {k: dict(v) if isinstance(v, dict) else v
                      for k, v in _host_tree(state["state"]).items()}

    def step(self, params: dict, grads: dict, closure=None, loss: float | None = None) -> dict:
        raise NotImplementedError


#: Adam's ``boost`` applies to these parameters only: the object, which a run builds from its
#: start. The probe, positions and distances start near their optimum (their rates have floors
#: relative to their own size, see ``Solver._rate_floors``) and must not be kicked at the start.
BOOSTED = ("delta", "beta", "object")

#: Time constant of the boost's decay, in steps of the parameter: two epochs of tomography at one
#: angle per step (32 updates per epoch), four of minibatch 2D ptychography (16 per epoch).
BOOST_UPDATES = 64.0


class Adam(Optimizer):
    """Adam with bias correction; the second moment of a complex gradient is ``|g|^2``.
    ``boost``/``boost_updates``: the start-up factor on the rates of :data:`BOOSTED` and its
    decay time in steps (see the module docstring); 1 = a constant rate."""

    kind = "adam"
    per_element_steps = True

    @classmethod
    def state_slots(cls, history: int) -> int:
        return 2   # the two moments

    def __init__(self, lrs: dict[str, float], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-2, boost: float = 1.0, boost_updates: float = BOOST_UPDATES):
        super().__init__(lrs)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        self.boost, self.boost_updates = float(boost), float(boost_updates)
        if not (self.boost >= 1 and self.boost_updates > 0):
            raise ValueError(f"Adam's boost must be >= 1 and its decay time > 0, got {boost}, "
                             f"{boost_updates}")

    def _hyper(self) -> dict:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "boost": self.boost,
                "boost_updates": self.boost_updates}

    def rate_factor(self, name: str, t: int) -> float:
        """Factor on the rate of ``name`` at its step ``t`` (1-based): the decaying boost."""
        if name not in BOOSTED or self.boost == 1:
            return 1.0
        return 1.0 + (self.boost - 1.0) * math.exp(-(t - 1) / self.boost_updates)

    def step(self, params, grads, closure=None, loss=None):
        for name, g in grads.items():
            lr = self._lr(name)
            if lr == 0:
                continue
            p = params[name]
            xp = array_module(p)
            g = _real_like(p, g)
            st = self.state.get(name)
            if st is None:
                st = self.state[name] = {"t": 0, "m": xp.zeros_like(p),
                                         "v": xp.zeros(p.shape, dtype=p.real.dtype)}
            m, v = _to(st["m"], p), _to(st["v"], p, real=True)
            t = int(st["t"]) + 1
            b1, b2 = self.beta1, self.beta2
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g.real ** 2 + g.imag ** 2 if np.iscomplexobj(g) else g * g)
            st.update(t=t, m=m, v=v)
            root = xp.sqrt(v)
            peak = float(root.max())
            if peak == 0:  # no gradient yet: nothing to do (and avoid 0/0)
                continue
            # p -= lr * mhat / (sqrt(vhat) + eps_rel * max sqrt(vhat)), bias corrections folded in
            c1, c2 = 1 - b1 ** t, math.sqrt(1 - b2 ** t)
            root += self.eps * peak
            p -= (lr * self.rate_factor(name, t) * c2 / c1) * (m / root)
        return params


class Momentum(Optimizer):
    """Gradient descent with heavy-ball momentum: ``b = mu b + g; p -= lr b``."""

    kind = "momentum"

    def __init__(self, lrs: dict[str, float], momentum: float = 0.9):
        super().__init__(lrs)
        self.momentum = float(momentum)

    def _hyper(self) -> dict:
        return {"momentum": self.momentum}

    def step(self, params, grads, closure=None, loss=None):
        for name, g in grads.items():
            lr = self._lr(name)
            if lr == 0:
                continue
            p = params[name]
            g = _real_like(p, g)
            st = self.state.get(name)
            if st is None:
                buf = self.state.setdefault(name, {})["b"] = g.copy()
            else:
                buf = _to(st["b"], p)
                buf *= self.momentum
                buf += g
                st["b"] = buf
            p -= lr * buf
        return params


def _dot(a: dict, b: dict, names) -> float:
    """``Re <a, b>`` summed over the named arrays (the inner product of the gradient convention)."""
    return sum(float(array_module(a[n]).vdot(a[n], b[n]).real) for n in names)


class LBFGS(Optimizer):
    """Limited-memory BFGS with a diagonal preconditioner from the learning rates and a
    backtracking line search. One :meth:`step` = one accepted iterate (1 + backtracks closure calls).

    Curvature pairs are formed at the *start* of each step from the parameters and gradients
    passed in, so projections applied between steps (constraints) are accounted for. After a step
    ``last_eval = (loss, grads)`` holds the evaluation at the accepted point (None after a failed
    line search); the run's :class:`~.solver.Solver` starts the next step from that evaluation
    (its closure keeps the loss terms too) unless a projection moved the parameters.
    """

    kind = "lbfgs"
    full_batch = True
    scales_own_steps = True

    @classmethod
    def state_slots(cls, history: int) -> int:
        return 2 * history + 1   # the curvature pairs and the previous gradient

    def __init__(self, lrs: dict[str, float], history: int = 10, max_backtracks: int = 12,
                 c1: float = 1e-4):
        super().__init__(lrs)
        self.history, self.max_backtracks, self.c1 = int(history), int(max_backtracks), float(c1)
        self.last_eval: tuple[float, dict] | None = None
        self.reset()

    def _hyper(self) -> dict:
        return {"history": self.history, "max_backtracks": self.max_backtracks, "c1": self.c1}

    def reset(self, name: str | None = None) -> None:
        """Forget all curvature pairs (the history couples all parameters, so ``name`` is moot)."""
        self.state = {"pairs": {}, "x_prev": {}, "g_prev": {}, "scale": {}}

    def set_lr(self, name: str, value: float) -> None:
        super().set_lr(name, value)
        if hasattr(self, "state"):
            self.reset()  # the preconditioner changed: old curvature pairs no longer fit

    def step(self, params, grads, closure=None, loss=None):
        if closure is None:
            raise ValueError("LBFGS.step needs closure(params) -> (loss, grads) for its line search")
        names = [n for n in grads if self._lr(n) > 0]
        if not names:
            return params
        st = self.state
        if set(st["scale"]) != set(names):  # the set of refined parameters changed
            self.reset()
            st = self.state
        x = {n: params[n] for n in names}
        # in the parameters' precision: a wider gradient would widen the parameters themselves
        g = {n: _to(_real_like(x[n], grads[n]), x[n]) for n in names}
        pairs = [(dict((k, _to(a, x[k])) for k, a in pr["s"].items()),
                  dict((k, _to(a, x[k])) for k, a in pr["y"].items()))
                 for _, pr in sorted(st["pairs"].items(), key=lambda kv: int(kv[0]))]
        if st["x_prev"]:
            s = {n: x[n] - _to(st["x_prev"][n], x[n]) for n in names}
            y = {n: g[n] - _to(st["g_prev"][n], x[n]) for n in names}
            sy = _dot(s, y, names)
            if sy > 1e-10 * math.sqrt(_dot(s, s, names) * _dot(y, y, names)):
                pairs = (pairs + [(s, y)])[-self.history:]
        if not st["scale"]:
            # diagonal preconditioner: the first trial step moves each parameter by <= its lr
            for n in names:
                peak = float(array_module(g[n]).abs(g[n]).max())
                st["scale"][n] = self.lrs[n] / peak if peak > 0 else self.lrs[n]
        scale = st["scale"]
        d = self._direction(g, pairs, scale, names)
        gd = _dot(g, d, names)
        if gd >= 0:  # not a descent direction (bad curvature): restart from steepest descent
            pairs = []
            d = {n: -scale[n] * g[n] for n in names}
            gd = _dot(g, d, names)
        if gd == 0:
            return params  # zero gradient: at a stationary point
        f0 = float(loss) if loss is not None else float(closure(params)[0])
        t = 1.0
        for _ in range(self.max_backtracks + 1):
            trial = dict(params)
            trial.update({n: _to(x[n] + t * d[n], x[n]) for n in names})
            f, gt = closure(trial)
            f = float(f)
            if math.isfinite(f) and f <= f0 + self.c1 * t * gd:
                break
            t *= 0.5
        else:  # no decrease found: forget the model, take smaller steepest-descent steps next time
            self.reset()
            self.state["scale"] = {n: scale[n] * 0.1 for n in names}
            self.last_eval = None
            return params
        st["x_prev"] = {n: x[n].copy() for n in names}
        st["g_prev"] = {n: g[n].copy() for n in names}
        st["pairs"] = {str(i): {"s": s, "y": y} for i, (s, y) in enumerate(pairs)}
        for n in names:
            params[n] = trial[n]
        self.last_eval = (f, gt)
        return params

    @staticmethod
    def _direction(g, pairs, scale, names):
        """Two-loop recursion: ``-H g`` with ``H0 = gamma * diag(scale)``."""
        q = {n: g[n].copy() for n in names}
        alphas = []
        for s, y in reversed(pairs):
            rho = 1.0 / _dot(s, y, names)
            a = rho * _dot(s, q, names)
            alphas.append((a, rho))
            for n in names:
                q[n] -= a * y[n]
        if pairs:
            s, y = pairs[-1]
            py = {n: scale[n] * y[n] for n in names}
            gamma = _dot(s, y, names) / _dot(y, py, names)
        else:
            gamma = 1.0
        r = {n: (gamma * scale[n]) * q[n] for n in names}
        for (s, y), (a, rho) in zip(pairs, reversed(alphas)):
            b = rho * _dot(y, r, names)
            for n in names:
                r[n] += (a - b) * s[n]
        return {n: -r[n] for n in names}


OPTIMIZERS = {"adam": Adam, "momentum": Momentum, "lbfgs": LBFGS}


def make_optimizer(kind: str, lrs: dict[str, float], *, momentum: float = 0.9,
                   betas: tuple[float, float] = (0.9, 0.999), history: int = 10,
                   boost: float = 1.0) -> Optimizer:
    """The optimiser called ``kind`` (``adam`` | ``momentum`` | ``lbfgs``), e.g. from
    ``cfg.optimizer``: ``make_optimizer(o.kind, o.lrs(), momentum=o.momentum,
    betas=(o.beta1, o.beta2), history=o.lbfgs_history, boost=o.lr_boost or 1)``; ``boost``
    is Adam's only."""
    if kind == "adam":
        return Adam(lrs, betas=betas, boost=boost)
    if kind == "momentum":
        return Momentum(lrs, momentum=momentum)
    if kind == "lbfgs":
        return LBFGS(lrs, history=history)
    raise ValueError(f"unknown optimiser {kind!r}; choose one of {', '.join(OPTIMIZERS)}")
