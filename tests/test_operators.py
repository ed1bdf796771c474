"""Physics operators as AD primitives: finite-difference gradients and adjoint dot-product tests."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.engine import get_backend, ops
from slicewise.engine.gradcheck import check_adjoint, check_grad
from slicewise.engine.physics.farfield import FarField
from slicewise.engine.physics.optics import transmission, transmission_of_index
from slicewise.engine.physics.patches import PatchExtractor, shift_probe
from slicewise.engine.physics.propagation import Propagator, propagate
from slicewise.engine.physics.rotation import Rotation

BE = get_backend("numpy", "double")
RNG = np.random.default_rng(7)
WL = 1.24e-10  # 10 keV
PIX = 50e-9


def crand(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def loss_of(y):
    shape = tuple(y.shape)
    w = np.linspace(0.2, 1.0, int(np.prod(shape)))
    return ops.sum(ops.mul(ops.abs2(ops.add(y, 0.3 - 0.1j)), w.reshape(shape)))


@pytest.mark.parametrize("method", ["fresnel", "angular_spectrum"])
def test_propagator_adjoint_and_gradient(method):
    prop = Propagator((16, 12), PIX, 2e-6, WL, BE, method)
    x = crand(3, 16, 12)
    check_adjoint(prop, x, linear=True)
    check_grad(lambda z: loss_of(prop(z)), [x])


@pytest.mark.parametrize("method", ["fresnel", "angular_spectrum"])
def test_propagate_gradient_with_respect_to_distance(method):
    x = crand(2, 1, 16, 16)
    d = np.array([1e-5, 3e-5])

    def f(dist, field):
        return loss_of(propagate(field, dist, pixel_m=PIX, wavelength_m=WL, backend=BE, method=method))

    check_grad(f, [d, x], argnum=0, eps=1e-9, rtol=1e-5)
    check_grad(f, [d, x], argnum=1)
    check_adjoint(lambda z: propagate(z, d, pixel_m=PIX, wavelength_m=WL, backend=BE, method=method),
                  x, linear=True)


def test_farfield_adjoint_and_gradient():
    for centred in (False, True):
        ff = FarField(BE, centred=centred)
        x = crand(2, 8, 10)
        check_adjoint(ff, x, linear=True)
        check_grad(lambda z: loss_of(ff(z)), [x])


def test_transmission_gradients():
    delta = RNG.random((4, 5)) * 1e-6
    beta = RNG.random((4, 5)) * 1e-7
    k, dz = 2 * np.pi / WL, 1e-6
    f = lambda d, b: loss_of(transmission(d, b, k, dz))  # noqa: E731
    check_grad(f, [delta, beta], argnum=0, eps=1e-10)
    check_grad(f, [delta, beta], argnum=1, eps=1e-10)
    check_adjoint(lambda d: transmission(d, beta, k, dz), delta, linear=False, eps=1e-10, rtol=1e-5)


def test_patch_extraction_adjoint_and_gradient():
    corners = np.array([[0, 0], [3, 2], [5, 6], [3, 3], [0, 6]])
    ext = PatchExtractor(corners, (4, 5), (9, 11), BE)
    obj = crand(2, 9, 11)
    check_adjoint(ext, obj, linear=True)
    check_grad(lambda o: loss_of(ext(o)), [obj])
    np.testing.assert_array_equal(ext.fwd(obj)[1, 2], obj[1, 5:9, 6:11])


def test_patch_extraction_refuses_windows_outside_the_grid():
    with pytest.raises(ValueError, match="leave the object grid"):
        PatchExtractor(np.array([[7, 0]]), (4, 4), (9, 9), BE)


def test_shift_probe_gradients_and_adjoint():
    probe = crand(2, 8, 8)
    shifts = RNG.uniform(-0.5, 0.5, (3, 2))
    f_p = lambda p: loss_of(shift_probe(p, shifts, BE))  # noqa: E731
    f_s = lambda s: loss_of(shift_probe(probe, s, BE))  # noqa: E731
    check_grad(f_p, [probe])
    check_grad(f_s, [shifts], eps=1e-6)
    check_adjoint(lambda p: shift_probe(p, shifts, BE), probe, linear=True)


def test_shift_probe_by_integer_is_a_roll():
    probe = crand(1, 8, 8)
    out = shift_probe(probe, np.array([[1.0, -2.0]]), BE)
    np.testing.assert_allclose(out[0, 0], np.roll(probe[0], (1, -2), axis=(0, 1)), atol=1e-12)


def test_rotation_adjoint_and_gradient():
    rot = Rotation((6, 3, 7), np.array([0.3, 1.2, -2.0]), BE)
    vol = crand(6, 3, 7)
    check_adjoint(rot, vol, linear=True)
    check_adjoint(rot, vol.real, linear=True)
    check_grad(lambda v: loss_of(rot(v)), [vol])


def test_rotation_by_zero_is_identity_and_by_90_degrees_turns_x_into_z():
    vol = RNG.random((5, 2, 5))
    np.testing.assert_allclose(Rotation(vol.shape, [0.0], BE).fwd(vol)[0], vol, atol=1e-12)
    r90 = Rotation(vol.shape, [np.pi / 2], BE).fwd(vol)[0]
    # x = cx - (z' - cz) and z = cz + (x' - cx): output[z', :, x'] = vol[x', :, 4 - z']
    expected = np.transpose(vol, (2, 1, 0))[::-1]
    np.testing.assert_allclose(r90, expected, atol=1e-9)


# ---- performance paths (benchmarks/): same results as the straightforward forms ----------------

def test_rotation_slice_major_layout_is_the_angle_major_one_transposed():
    angles = np.array([0.3, 1.2, -2.0])
    vol = crand(6, 3, 7)
    a_major = Rotation(vol.shape, angles, BE).fwd(vol)
    s_major = Rotation(vol.shape, angles, BE, angle_axis=1)
    np.testing.assert_allclose(s_major.fwd(vol), np.moveaxis(a_major, 0, 1), atol=1e-12)
    np.testing.assert_allclose(s_major.fwd(vol.real), np.moveaxis(a_major, 0, 1).real, atol=1e-12)
    check_adjoint(s_major, vol, linear=True)
    check_adjoint(s_major, vol.real, linear=True)
    check_grad(lambda v: loss_of(s_major(v)), [vol])


def test_rotation_single_precision_complex_equals_its_real_and_imaginary_parts():
    be = get_backend("numpy", "single")
    vol = crand(5, 4, 5).astype(np.complex64)
    rot = Rotation(vol.shape, [0.4, 2.5], be)
    out = rot.fwd(vol)
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out, rot.fwd(vol.real) + 1j * rot.fwd(vol.imag), atol=1e-6)


def test_transmission_of_index_matches_transmission_and_its_gradient():
    k, dz = 2 * np.pi / WL, 100e-9
    delta = RNG.random((3, 4, 5)) * 1e-5
    beta = RNG.random((3, 4, 5)) * 1e-6
    vol = delta + 1j * beta
    np.testing.assert_allclose(transmission_of_index(vol, k, dz), transmission(delta, beta, k, dz),
                               rtol=1e-13)
    # strided input (a rotated volume is a transposed view): C-contiguous output, same values
    t = transmission_of_index(vol.swapaxes(1, 2), k, dz)
    assert t.flags.c_contiguous
    np.testing.assert_allclose(t, transmission(delta, beta, k, dz).swapaxes(1, 2), rtol=1e-13)
    # d/d delta + i d/d beta of a real loss equals the two real gradients of transmission()
    from slicewise.engine import value_and_grad

    _, g = value_and_grad(lambda v: loss_of(transmission_of_index(v, k, dz)))(vol)
    _, (gd, gb) = value_and_grad(lambda d, b: loss_of(transmission(d, b, k, dz)), argnums=(0, 1))(delta, beta)
    np.testing.assert_allclose(g, gd + 1j * gb, rtol=1e-10, atol=1e-12)
    check_grad(lambda v: loss_of(transmission_of_index(v, k, dz)), [vol], eps=1e-10, rtol=1e-5)
    check_adjoint(lambda v: transmission_of_index(v, k, dz), vol, linear=False, eps=1e-10, rtol=1e-5)


def test_patch_adjoint_accepts_scipy_fft_arrays_and_leading_axes():
    import scipy.fft as sfft

    corners = np.array([[0, 0], [2, 3], [5, 6], [2, 3]])
    ext = PatchExtractor(corners, (4, 5), (9, 11), BE)
    for lead in ((), (3,)):
        g = sfft.ifft2(crand(*lead, 4, 4, 5), workers=2)  # scipy's (non-canonical) dtype instance
        ref = np.zeros(lead + (9 * 11,), complex)
        for row in np.ndindex(*lead):
            np.add.at(ref[row], ext.flat_host.ravel(), g[row].ravel())
        np.testing.assert_allclose(ext.adj(g), ref.reshape(lead + (9, 11)), rtol=1e-13, atol=1e-13)


def test_stack_of_one_array_and_its_gradient():
    x = crand(3, 4)
    np.testing.assert_array_equal(ops.stack([x], axis=1), x[:, None])
    check_grad(lambda z: loss_of(ops.stack([z], axis=1)), [x])
    check_grad(lambda z: loss_of(ops.stack([z, ops.mul(z, 2.0)], axis=-1)), [x])
