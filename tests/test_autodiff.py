"""The AD tape: every primitive against finite differences and the adjoint dot-product test."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.engine import ops
from slicewise.engine.autodiff import ADError, Tape, Tensor, checkpoint, no_grad, value_and_grad
from slicewise.engine.gradcheck import check_adjoint, check_grad

RNG = np.random.default_rng(42)


def crand(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def rrand(*shape):
    return RNG.standard_normal(shape)


def to_loss(y):
    """A generic real scalar of any array: mixes real and imaginary parts non-trivially."""
    w = np.cos(np.arange(np.size(y.data if isinstance(y, Tensor) else y))).reshape(np.shape(
        y.data if isinstance(y, Tensor) else y)) + 0.3
    if np.iscomplexobj(y.data if isinstance(y, Tensor) else y):
        return ops.sum(ops.mul(ops.abs2(ops.add(y, 0.5 + 0.25j)), w))
    return ops.sum(ops.mul(ops.mul(y, y), w)) + ops.sum(y)


# (name, function of one input, input factory, linear?)
UNARY = [
    ("neg", ops.neg, lambda: crand(3, 4), True),
    ("exp", ops.exp, lambda: 0.3 * crand(3, 4), False),
    ("log", ops.log, lambda: crand(3, 4) + 3.0, False),
    ("sqrt", ops.sqrt, lambda: crand(3, 4) + 3.0, False),
    ("abs_complex", ops.abs, lambda: crand(3, 4), False),
    ("abs_real", ops.abs, lambda: rrand(3, 4) + np.sign(rrand(3, 4)), False),
    ("abs2", ops.abs2, lambda: crand(3, 4), False),
    ("real", ops.real, lambda: crand(3, 4), True),
    ("imag", ops.imag, lambda: crand(3, 4), True),
    ("conj", ops.conj, lambda: crand(3, 4), True),
    ("power", lambda x: ops.power(x, 1.7), lambda: rrand(3, 4) ** 2 + 0.5, False),
    ("sum_all", ops.sum, lambda: crand(3, 4), True),
    ("sum_axis", lambda x: ops.sum(x, axis=1), lambda: crand(3, 4, 2), True),
    ("mean", lambda x: ops.mean(x, axis=0), lambda: crand(3, 4), True),
    ("reshape", lambda x: ops.reshape(x, (4, 3)), lambda: crand(3, 4), True),
    ("transpose", lambda x: ops.transpose(x, (2, 0, 1)), lambda: crand(2, 3, 4), True),
    ("getitem_slice", lambda x: x[1:, ::2], lambda: crand(3, 5), True),
    ("getitem_fancy", lambda x: x[np.array([0, 2, 2, 1])], lambda: crand(3, 5), True),
    ("pad", lambda x: ops.pad(x, [(1, 2), (0, 3)]), lambda: crand(3, 4), True),
    ("crop", lambda x: ops.crop(x, [(1, 3), (0, 2)]), lambda: crand(3, 4), True),
    ("fft2", ops.fft2, lambda: crand(2, 6, 8), True),
    ("ifft2", ops.ifft2, lambda: crand(2, 6, 8), True),
    ("fftshift", ops.fftshift, lambda: crand(5, 6), True),
    ("ifftshift", ops.ifftshift, lambda: crand(5, 6), True),
    ("clip", lambda x: ops.clip(x, -0.5, 0.5), lambda: rrand(4, 5), False),
    ("where", lambda x: ops.where(np.arange(12).reshape(3, 4) % 3 == 0, x, 2.0 * x),
     lambda: crand(3, 4), True),
    ("mul_kernel", lambda x: ops.mul(x, np.exp(1j * np.arange(4.0))), lambda: crand(3, 4), True),
    ("div_const", lambda x: ops.div(x, 2.0 + 1j), lambda: crand(3, 4), True),
    ("stack", lambda x: ops.stack([x, 2.0 * x, x[::-1]], axis=1), lambda: crand(3, 4), True),
    ("concat", lambda x: ops.concatenate([x, x[:1]], axis=0), lambda: crand(3, 4), True),
]


@pytest.mark.parametrize("name,fn,make,linear", UNARY, ids=[u[0] for u in UNARY])
def test_primitive_gradient_matches_finite_differences(name, fn, make, linear):
    x = make()
    if name == "clip":  # keep away from the kinks where finite differences are meaningless
        x = np.where(np.abs(np.abs(x) - 0.5) < 0.05, 0.1, x)
    check_grad(lambda z: to_loss(fn(z)), [x], rtol=1e-5)


@pytest.mark.parametrize("name,fn,make,linear", UNARY, ids=[u[0] for u in UNARY])
def test_primitive_adjoint_dot_product(name, fn, make, linear):
    x = make()
    if name == "clip":
        x = np.where(np.abs(np.abs(x) - 0.5) < 0.05, 0.1, x)
    check_adjoint(fn, x, linear=linear, rtol=1e-10 if linear else 1e-6)


BINARY = [("add", ops.add), ("sub", ops.sub), ("mul", ops.mul), ("div", ops.div)]


@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)),
                                    ((2, 3, 4), (2, 1, 4))])
def test_binary_broadcasting_gradients_both_inputs(name, fn, shapes):
    a, b = crand(*shapes[0]), crand(*shapes[1]) + 2.0
    f = lambda x, y: to_loss(fn(x, y))  # noqa: E731
    check_grad(f, [a, b], argnum=0, rtol=1e-6)
    check_grad(f, [a, b], argnum=1, rtol=1e-6)
    _, (ga, gb) = value_and_grad(f, argnums=(0, 1))(a, b)
    assert ga.shape == a.shape and gb.shape == b.shape


def test_real_input_times_complex_gives_real_gradient():
    phase = rrand(8, 8)
    field = crand(8, 8)
    f = lambda p: ops.sum(ops.abs2(ops.fft2(ops.mul(ops.exp(ops.mul(p, 1j)), field)) * np.arange(8)))  # noqa: E731
    _, g = value_and_grad(f)(phase)
    assert not np.iscomplexobj(g)
    check_grad(f, [phase], rtol=1e-6)


def test_steepest_descent_convention_decreases_loss():
    """``z -= lr * grad`` must lower the loss: the documented complex convention."""
    target = crand(16)
    z = np.zeros(16, complex)
    f = lambda x: ops.sum(ops.abs2(ops.sub(x, target)))  # noqa: E731
    losses = []
    for _ in range(20):
        v, g = value_and_grad(f)(z)
        losses.append(v)
        z = z - 0.1 * g
    assert losses[-1] < 1e-3 * losses[0]
    np.testing.assert_allclose(z, target, atol=0.05)


def test_composed_fft_chain_matches_finite_differences():
    x = crand(16, 16)
    phase = rrand(16, 16)

    def f(z, p):
        k = ops.exp(ops.mul(p, 1j))
        return ops.sum(ops.abs2(ops.ifft2(ops.mul(k, ops.fft2(z)))) * np.linspace(0, 1, 16))

    check_grad(f, [x, phase], argnum=0, rtol=1e-6)
    check_grad(f, [x, phase], argnum=1, rtol=1e-6)


def test_gradients_with_respect_to_dict_of_parameters():
    params = {"a": crand(4, 4), "b": rrand(4, 4)}
    f = lambda p: to_loss(ops.mul(p["a"], p["b"]))  # noqa: E731
    value, g = value_and_grad(f)(params)
    assert set(g) == {"a", "b"} and np.isfinite(value)
    fd = check_grad(lambda b: f({"a": params["a"], "b": b}), [params["b"]])
    assert fd < 1e-5


def test_input_used_twice_accumulates():
    x = crand(5)
    f = lambda z: ops.sum(ops.abs2(ops.add(ops.mul(z, z), z)))  # noqa: E731
    check_grad(f, [x], rtol=1e-6)


def test_backward_on_non_scalar_is_a_clear_error():
    with pytest.raises(ADError, match="real scalar"):
        value_and_grad(lambda z: ops.abs2(z))(crand(3))
    with pytest.raises(ADError, match="complex"):
        value_and_grad(lambda z: ops.sum(z))(crand(3))


def test_function_not_depending_on_input_is_a_clear_error():
    with pytest.raises(ADError, match="does not depend"):
        value_and_grad(lambda z: ops.sum(ops.abs2(crand(3))))(crand(3))


def test_tape_is_released_and_cannot_be_reused():
    tape = Tape()
    x = tape.watch(crand(4))
    y = ops.sum(ops.abs2(x))
    assert len(tape.nodes) == 2
    tape.backward(y)
    assert tape.nodes == []
    with pytest.raises(ADError, match="already used"):
        tape.backward(y)


def test_value_and_grad_can_be_called_repeatedly():
    f = value_and_grad(lambda z: ops.sum(ops.abs2(z)))
    x = crand(6)
    v1, g1 = f(x)
    v2, g2 = f(x)
    assert v1 == v2
    np.testing.assert_allclose(g1, 2 * x)
    np.testing.assert_allclose(g2, g1)


def test_no_grad_records_nothing():
    tape = Tape()
    x = tape.watch(crand(4))
    with no_grad():
        y = ops.exp(x)
    assert not isinstance(y, Tensor)
    assert tape.nodes == []
    z = ops.exp(x)
    assert isinstance(z, Tensor) and len(tape.nodes) == 1


def test_plain_arrays_pass_through_without_a_tape():
    x = crand(4, 4)
    y = ops.abs2(ops.fft2(x))
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y.sum(), (np.abs(x) ** 2).sum())


def test_checkpoint_gives_same_gradient_and_stores_less():
    x = crand(8, 8)
    k = np.exp(1j * rrand(8, 8))

    def segment(z):
        for _ in range(5):
            z = ops.ifft2(ops.mul(ops.fft2(z), k))
        return z

    f_plain = lambda z: ops.sum(ops.abs2(segment(z)) * np.arange(8.0))  # noqa: E731
    f_ckpt = lambda z: ops.sum(ops.abs2(checkpoint(segment, z)) * np.arange(8.0))  # noqa: E731
    v1, g1 = value_and_grad(f_plain)(x)
    v2, g2 = value_and_grad(f_ckpt)(x)
    assert v1 == pytest.approx(v2)
    np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-12)
    tape = Tape()
    ops.sum(ops.abs2(checkpoint(segment, tape.watch(x))))
    assert len(tape.nodes) == 3  # checkpoint + abs2 + sum, not 15 inner nodes


def test_tensor_operators_and_reflected_numpy_operands():
    x = crand(3, 3)
    arr = crand(3, 3)
    f1 = lambda z: ops.sum(ops.abs2(arr * z - z / 2.0 + 1.0))  # noqa: E731
    check_grad(f1, [x], rtol=1e-6)
    f2 = lambda z: ops.sum(ops.abs2((-z).conj() + z[0] * 3).real)  # noqa: E731
    check_grad(f2, [x], rtol=1e-6)


def test_a_second_primitive_of_the_same_name_is_refused():
    """@primitive registers by name; a primitive from another module under a name already taken
    would replace the first for every caller, so it is an error naming both."""
    from slicewise.engine.autodiff import PRIMITIVES, primitive

    def fft2(x):  # a homonym of ops.fft2, defined here
        return x

    before = PRIMITIVES["fft2"]
    with pytest.raises(ADError, match="already registered by slicewise.engine.ops"):
        primitive(fft2)
    assert PRIMITIVES["fft2"] is before
    assert primitive(before) is before   # the same function again (a reload) is fine
