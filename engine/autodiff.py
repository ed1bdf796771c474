"""A small reverse-mode automatic-differentiation tape over (complex) NumPy/CuPy arrays.

How it works
------------
* :class:`Tensor` wraps a backend array and remembers the :class:`Tape` it belongs to.
* Every primitive (see :mod:`slicewise.engine.ops` and the physics operators) computes its output
  on plain arrays and then calls :func:`record` with a *vector-Jacobian product* closure. If none of
  its inputs is a traced tensor, ``record`` returns the plain array: the same operator code serves
  fast forward-only simulation and differentiation.
* Recording order is a topological order, so :meth:`Tape.backward` walks the node list once in
  reverse, hands each node the cotangent of its output and accumulates the cotangents of its inputs.
* :func:`value_and_grad` is the user-facing entry point (shaped like JAX's): a function in, the loss
  and gradients with respect to chosen arguments out. Nothing is global: each call builds a tape.

Complex gradient convention
---------------------------
For a real loss ``L`` of a complex array ``z = x + i y`` the gradient stored is::

    grad = dL/dx + i dL/dy        (= 2 dL/d conj(z) in Wirtinger calculus)

so ``z -= lr * grad`` is a steepest-descent step. With this convention the cotangent passed
backward through a linear operator ``A`` is ``A^H g``, through a holomorphic ``f`` it is
``conj(f'(z)) g``, and for a real input the real part of the incoming complex cotangent is kept.

Adding a primitive
------------------
A primitive is a function that (1) unwraps its inputs with :func:`data`, (2) computes the output
array, (3) returns ``record(out, inputs, vjp)`` where ``vjp(g)`` returns one cotangent per input
(``None`` for an input that needs none). Decorate it with :func:`primitive` to register it by
name: this module imports no primitive, the operators of :class:`Tensor` find theirs in
:data:`PRIMITIVES`. The physics operators (Fresnel propagation, far field,
patch extraction, rotation) are written exactly so, as single primitives with their own adjoint.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .backend import array_module

_GRAD_ENABLED = contextvars.ContextVar("slicewise_grad_enabled", default=True)


class ADError(RuntimeError):
    """Misuse of the AD tape (backward from a non-scalar, reusing a released tape, ...)."""


#: Registered primitives by name (see :func:`primitive`). The tape needs none of them; Tensor's
#: operators (``+``, ``*``, ``[]``, ``.real``, ``.sum()`` ...) call the ones named ``add``,
#: ``mul``, ``getitem``, ``real``, ``sum`` ..., which :mod:`slicewise.engine.ops` registers.
PRIMITIVES: dict[str, Callable] = {}


def primitive(fn: Callable) -> Callable:
    """Register ``fn`` (a function written as in "Adding a primitive" above, whose ``record``
    call carries its VJP) under its name; returns it unchanged. A second primitive of the same
    name from elsewhere is an error (it would silently replace the first everywhere); the same
    function registered again (its module reloaded) replaces itself."""
    old = PRIMITIVES.get(fn.__name__)
    if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
        raise ADError(f"primitive {fn.__name__!r} of {fn.__module__} is already registered by "
                      f"{old.__module__}; give one of them another name")
    PRIMITIVES[fn.__name__] = fn
    return fn


def _call(name: str, *args, **kwargs):
    fn = PRIMITIVES.get(name)
    if fn is None:
        raise ADError(f"no primitive {name!r} is registered; import slicewise.engine.ops first")
    return fn(*args, **kwargs)


class Node:
    """One recorded primitive application: output tensor, its inputs and the VJP closure."""

    __slots__ = ("inputs", "output", "vjp", "name")

    def __init__(self, inputs: tuple, output: "Tensor", vjp: Callable, name: str):
        self.inputs = inputs
        self.output = output
        self.vjp = vjp
        self.name = name


class Tape:
    """An append-only list of :class:`Node` in evaluation order."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.released = False

    def watch(self, array) -> "Tensor":
        """Wrap ``array`` as a leaf tensor on this tape (a quantity we differentiate by)."""
        if isinstance(array, Tensor):
            array = array.data
        return Tensor(array, self)

    def backward(self, output: "Tensor", seed=None) -> dict[int, Any]:
        """Propagate cotangents from ``output`` to every tensor on the tape.

        ``seed`` defaults to 1 and then ``output`` must be a real scalar. Returns a dict from
        ``id(tensor)`` to gradient array for the leaves (the watched tensors). Each node, and the
        cotangent of its output, is released as soon as its VJP has run, so the forward
        intermediates and the cotangents are freed progressively: the backward pass's peak memory
        stays near the forward pass's instead of adding all cotangents on top of it.
        """
        if self.released:
            raise ADError("this tape was already used for a backward pass; record the function again "
                          "(value_and_grad does this on every call)")
        if not isinstance(output, Tensor) or output.tape is not self:
            raise ADError("backward() needs a tensor recorded on this tape; the function's result "
                          "does not depend on the watched inputs")
        xp = array_module(output.data)
        if seed is None:
            if output.data.ndim != 0 and output.data.size != 1:
                raise ADError(f"backward() needs a real scalar loss, got an array of shape "
                              f"{tuple(output.data.shape)}; reduce it with sum() or mean() first")
            if np.iscomplexobj(output.data):
                raise ADError("backward() needs a real scalar loss, got a complex value; take "
                              "real(), abs() or abs2() of it first")
            seed = xp.ones_like(output.data)
        grads: dict[int, Any] = {id(output): seed}
        owned: set[int] = set()  # gradient buffers we allocated ourselves and may add into in place
        nodes = self.nodes
        try:
            for i in range(len(nodes) - 1, -1, -1):
                node = nodes[i]
                nodes[i] = None  # drop the node's closure (forward intermediates) once it has run
                self._run_node(node, grads, owned)
        finally:  # a tape is used once, also when a VJP raised half-way
            self.nodes.clear()
            self.released = True
        return grads

    def _run_node(self, node: "Node", grads: dict, owned: set) -> None:
        """Hand ``node`` the cotangent of its output (released from ``grads``) and accumulate the
        cotangents of its inputs."""
        key_out = id(node.output)
        g = grads.pop(key_out, None)
        owned.discard(key_out)
        if g is None:
            return
        if isinstance(g, IndexedGrad):
            g = g.dense()
        in_grads = node.vjp(g)
        del g
        for t, gi in zip(node.inputs, in_grads):
            if gi is None or not isinstance(t, Tensor) or t.tape is not self:
                continue
            key = id(t)
            real = not np.iscomplexobj(t.data)
            prev = grads.get(key)
            if isinstance(gi, IndexedGrad):
                # a slice's cotangent: scatter into one buffer instead of a dense zeros array each time
                if prev is None or key not in owned:
                    buf = array_module(t.data).zeros(t.data.shape, dtype=t.data.dtype)
                    if prev is not None:
                        buf += _as_real(prev) if real else prev
                    grads[key] = prev = buf
                    owned.add(key)
                prev[gi.index] += _as_real(gi.values) if real else gi.values
                continue
            if real:
                gi = _as_real(gi)
            if prev is None:
                grads[key] = gi
            elif key in owned and prev.shape == gi.shape and prev.dtype == np.result_type(prev, gi):
                prev += gi
            else:
                grads[key] = prev + gi
                owned.add(key)


class IndexedGrad:
    """Cotangent that is zero except at ``index`` (a basic slice): what slicing sends backward.

    The tape accumulates it into a single gradient buffer, so taking all ``n`` slices of an array
    costs O(size) in backward instead of O(n * size).
    """

    __slots__ = ("index", "values", "shape")

    def __init__(self, index, values, shape):
        self.index, self.values, self.shape = index, values, shape

    def dense(self):
        out = array_module(self.values).zeros(self.shape, dtype=self.values.dtype)
        out[self.index] = self.values
        return out


def _as_real(g):
    return g.real if np.iscomplexobj(g) else g


class Tensor:
    """A backend array that records operations on its tape.

    Supports the arithmetic operators, indexing, ``.real``, ``.imag``, ``.conj()``, ``.sum()``,
    ``.mean()``, ``.reshape()``; everything else lives in :mod:`slicewise.engine.ops`.
    """

    __slots__ = ("data", "tape")
    __array_ufunc__ = None  # make numpy defer to our reflected operators

    def __init__(self, data, tape: Tape | None):
        self.data = data
        self.tape = tape

    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, dtype={self.dtype})"

    def __len__(self) -> int:
        return len(self.data)

    # arithmetic: the primitives registered under these names (slicewise.engine.ops)
    def __add__(self, o):
        return _call("add", self, o)

    def __radd__(self, o):
        return _call("add", o, self)

    def __sub__(self, o):
        return _call("sub", self, o)

    def __rsub__(self, o):
        return _call("sub", o, self)

    def __mul__(self, o):
        return _call("mul", self, o)

    def __rmul__(self, o):
        return _call("mul", o, self)

    def __truediv__(self, o):
        return _call("div", self, o)

    def __rtruediv__(self, o):
        return _call("div", o, self)

    def __neg__(self):
        return _call("neg", self)

    def __getitem__(self, index):
        return _call("getitem", self, index)

    @property
    def real(self):
        return _call("real", self)

    @property
    def imag(self):
        return _call("imag", self)

    def conj(self):
        return _call("conj", self)

    def sum(self, axis=None):
        return _call("sum", self, axis=axis)

    def mean(self, axis=None):
        return _call("mean", self, axis=axis)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _call("reshape", self, shape)

    def item(self) -> float:
        return float(self.data.item()) if not np.iscomplexobj(self.data) else complex(self.data.item())


def data(x):
    """The plain array behind ``x`` (a Tensor or already an array/scalar)."""
    return x.data if isinstance(x, Tensor) else x


def is_traced(x) -> bool:
    return isinstance(x, Tensor) and x.tape is not None and not x.tape.released


def record(out, inputs: Sequence, vjp: Callable[[Any], Iterable], name: str = ""):
    """Register a primitive's output on the tape of its traced inputs.

    Returns ``out`` unchanged (a plain array) when no input is traced or recording is disabled
    (:func:`no_grad`), else a :class:`Tensor` whose node calls ``vjp(g)`` during backward.
    """
    if not _GRAD_ENABLED.get():
        return out
    tape = None
    for x in inputs:
        if is_traced(x):
            tape = x.tape
            break
    if tape is None:
        return out
    t = Tensor(out, tape)
    tape.nodes.append(Node(tuple(inputs), t, vjp, name))
    return t


@contextlib.contextmanager
def no_grad():
    """Within this block primitives compute values only and record nothing (context-local)."""
    token = _GRAD_ENABLED.set(False)
    try:
        yield
    finally:
        _GRAD_ENABLED.reset(token)


def stop_gradient(x):
    """Treat ``x`` as a constant: the plain array, cut from the tape."""
    return data(x)


def checkpoint(fn: Callable, *inputs):
    """Evaluate ``fn(*inputs)`` without storing its intermediates; recompute them in backward.

    Trades one extra forward evaluation of ``fn`` for memory: only ``inputs`` and the output are
    kept. ``fn`` must return one array/tensor. Used by the multislice models to fit hundreds of
    slices: each block of slices is a checkpointed segment.
    """
    raw = [data(x) for x in inputs]
    with no_grad():
        out = data(fn(*raw))
    if not any(is_traced(x) for x in inputs):
        return out

    def vjp(g):
        inner = Tape()
        leaves = [inner.watch(r) if is_traced(x) else r for x, r in zip(inputs, raw)]
        token = _GRAD_ENABLED.set(True)
        try:
            y = fn(*leaves)
        finally:
            _GRAD_ENABLED.reset(token)
        if not isinstance(y, Tensor):
            return tuple(None for _ in inputs)
        grads = inner.backward(y, seed=g)
        return tuple(grads.get(id(leaf)) if isinstance(leaf, Tensor) else None for leaf in leaves)

    return record(out, inputs, vjp, "checkpoint")


def _flatten(arg) -> tuple[list, Callable[[list], Any]]:
    """Flatten an array, or a dict/list/tuple of arrays (one level), for watching."""
    if isinstance(arg, dict):
        keys = list(arg)
        return [arg[k] for k in keys], lambda vals: dict(zip(keys, vals))
    if isinstance(arg, (list, tuple)):
        kind = type(arg)
        return list(arg), lambda vals: kind(vals)
    return [arg], lambda vals: vals[0]


def value_and_grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """Turn ``fn(*args) -> real scalar`` into ``g(*args) -> (value, grads)``.

    ``argnums`` picks the differentiated positional arguments; each may be an array or a dict /
    list / tuple of arrays, and its gradient comes back in the same structure (a single argnum
    gives its gradient directly, a sequence gives a tuple). ``value`` is a Python float. With
    ``has_aux`` the function returns ``(loss, aux)`` and ``g`` returns ``((value, aux), grads)``;
    ``aux`` is detached to plain arrays. Gradients follow the convention in the module docstring.
    """
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    def wrapped(*args):
        tape = Tape()
        args = list(args)
        leaves_per_arg = []
        for n in nums:
            flat, unflatten = _flatten(args[n])
            leaves = [tape.watch(a) for a in flat]
            leaves_per_arg.append((leaves, unflatten))
            args[n] = unflatten(leaves)
        token = _GRAD_ENABLED.set(True)
        try:
            result = fn(*args)
        finally:
            _GRAD_ENABLED.reset(token)
        loss, aux = result if has_aux else (result, None)
        if not isinstance(loss, Tensor) or loss.tape is not tape:
            raise ADError("the function's value does not depend on the differentiated arguments "
                          f"(argnums={argnums}); nothing to differentiate")
        grads = tape.backward(loss)
        value = float(loss.data.real.item()) if hasattr(loss.data, "item") else float(loss.data)
        out = []
        for leaves, unflatten in leaves_per_arg:
            gs = []
            for leaf in leaves:
                g = grads.get(id(leaf))
                gs.append(g if g is not None else array_module(leaf.data).zeros_like(leaf.data))
            out.append(unflatten(gs))
        if has_aux:
            aux = _detach(aux)
            return (value, aux), (out[0] if single else tuple(out))
        return value, (out[0] if single else tuple(out))

    return wrapped


def _detach(obj):
    if isinstance(obj, Tensor):
        return obj.data
    if isinstance(obj, dict):
        return {k: _detach(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detach(v) for v in obj)
    return obj
