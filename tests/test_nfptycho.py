"""Near-field ptychography model and the cone-beam (Fresnel scaling) geometry: physics and gradients."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from slicewise.engine import ops
from slicewise.engine.backend import get_backend
from slicewise.engine.gradcheck import check_adjoint, check_grad
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.models.common import Optics
from slicewise.engine.models.holo import HoloModel
from slicewise.engine.models.nfptycho import NearFieldPtychoModel, probe_guess_from_frames
from slicewise.engine.physics.propagation import Propagator, propagate_and_shift
from slicewise.engine.recon.config import ReconConfig
from slicewise.engine.recon.setup.measured import effective_dataset

BE = get_backend("numpy", "double")
HC = 1.239841984e-6
RNG = np.random.default_rng(3)


def test_weak_phase_grating_follows_the_contrast_transfer_function():
    """A weak phase grating T = exp(i eps cos(2 pi x / L)) under a plane wave gives, at distance z,
    the intensity 1 + 2 eps sin(pi lambda z / L^2) cos(2 pi x / L) (the linear phase-contrast
    transfer function of Fresnel diffraction; with T = exp(-i k delta dz) the familiar minus sign)."""
    energy, px, z, eps, period = 12660.0, 100e-9, 2e-3, 1e-3, 12
    optics = Optics(energy, px, px)
    lam = HC / energy
    frame, pad = 36, 6                                     # window 48 = 4 periods: exactly periodic
    x = np.arange(120)
    phase = eps * np.cos(2 * np.pi * x / period)
    obj = np.exp(1j * np.broadcast_to(phase, (120, 120)))[None]
    pos = np.array([[30.0, 24.0]])
    model = NearFieldPtychoModel((1, 120, 120), (frame, frame), optics, BE, distance_m=z, pad_px=pad,
                                 positions_px=pos, param="complex")
    probe = np.ones((1, frame + 2 * pad, frame + 2 * pad), complex)
    inten = model.predict({"object": obj, "probe": probe, "positions": pos}, [0], [0])[0, 0]
    cols = 24 + np.arange(frame)
    want = 1 + 2 * eps * np.sin(np.pi * lam * z / (period * px) ** 2) * np.cos(2 * np.pi * cols / period)
    np.testing.assert_allclose(inten, np.broadcast_to(want, inten.shape), atol=5 * eps ** 2)


def test_moving_the_window_moves_the_object_in_the_frame():
    """A window 3 pixels further right sees the same object 3 pixels further left in its frame."""
    optics = Optics(12660.0, 178.7e-9, 178.7e-9)
    obj = np.exp(1j * gaussian_filter(RNG.standard_normal((1, 80, 80)), 1.5))
    probe = np.ones((1, 36, 36), complex)
    pos = np.array([[20.0, 20.0], [20.0, 23.0]])
    model = NearFieldPtychoModel((1, 80, 80), (24, 24), optics, BE, distance_m=3.6e-3, pad_px=6,
                                 positions_px=pos, param="complex")
    i = model.predict({"object": obj, "probe": probe, "positions": pos}, [0], [0, 1])[0]
    # equal up to the light the 6-pixel padding misses (periodic window): compare the frame centre
    right = np.abs(i[1][4:-4, 4:-7] - i[0][4:-4, 7:-4]).max()
    wrong = np.abs(i[1][4:-4, 7:-4] - i[0][4:-4, 4:-7]).max()
    assert right < 0.02 and right < wrong / 10, (right, wrong)


def test_nfptycho_gradients_object_probe_positions():
    optics = Optics(12660.0, 178.7e-9, 178.7e-9)
    d = gaussian_filter(RNG.standard_normal((2, 40, 40)), 1.0) * 1e-5
    b = np.abs(d) * 0.1
    probe = RNG.standard_normal((2, 20, 20)) + 1j * RNG.standard_normal((2, 20, 20))
    pos = np.array([[8.3, 7.6], [14.1, 10.9], [11.0, 15.4]])
    model = NearFieldPtychoModel((2, 40, 40), (14, 14), optics, BE, distance_m=3.6e-3, pad_px=3,
                                 positions_px=pos)
    w = RNG.random((1, 3, 14, 14))

    def loss(dd, bb, p, q):
        return ops.sum(ops.mul(model.predict({"delta": dd, "beta": bb, "probe": p, "positions": q},
                                             [0], [0, 1, 2]), w))

    args = [d, b, probe, pos]
    check_grad(loss, args, argnum=0, eps=1e-10, rtol=1e-5)
    check_grad(loss, args, argnum=1, eps=1e-10, rtol=1e-5)
    check_grad(loss, args, argnum=2)
    check_grad(loss, args, argnum=3, eps=1e-6, rtol=1e-5)


def test_probe_guess_reproduces_the_mean_frame():
    optics = Optics(12660.0, 178.7e-9, 178.7e-9)
    z, pad = 3.6e-3, 5
    mean = 1000 * (1 + 0.5 * gaussian_filter(RNG.standard_normal((30, 30)), 2.0))
    bad = np.zeros((30, 30), bool)
    bad[4, 7] = True
    probe = probe_guess_from_frames(np.where(bad, 0.0, mean), pad, optics, z, bad)
    forward = Propagator(probe.shape, optics.pixel_size_m, z, optics.wavelength_m, BE).fwd(probe)
    got = np.abs(forward[pad:-pad, pad:-pad]) ** 2
    good = ~bad
    np.testing.assert_allclose(got[good], mean[good], rtol=1e-9)


def test_fresnel_scaling_matches_a_direct_spherical_wave_simulation():
    """Point source z1 before the sample, detector z2 behind it (M = 2), simulated directly with
    the spherical illumination on a fine grid; the model on the effective grid that
    ``data.source_to_sample_m`` produces (pixel / M, z2 / M) must give the same frame."""
    energy, p, z1, z2, n = 12398.41984, 50e-9, 10e-3, 10e-3, 512
    lam = HC / energy
    m = (z1 + z2) / z1
    c = n // 2
    y, x = np.mgrid[:n, :n] - c
    r2 = (x * x + y * y) * p * p
    aperture = np.exp(-((x * x + y * y) / 30.0 ** 2) ** 2)
    phase = gaussian_filter(RNG.standard_normal((n, n)), 2.0)
    phase *= 1.5 / np.abs(phase).max()
    obj = np.exp(1j * phase - 0.1 * np.abs(phase))
    spherical = np.exp(1j * np.pi * r2 / (lam * z1))             # paraxial diverging wave
    direct = Propagator((n, n), p, z2, lam, BE).fwd(aperture * spherical * obj)
    nd = 128                                                       # detector: pixel M p, centred
    k = c + int(m) * (np.arange(nd) - nd // 2)
    frame = np.abs(direct[np.ix_(k, k)]) ** 2
    ds = Dataset.from_arrays(frame[None, None],
                             Geometry(modality="nearfield", energy_ev=energy, pixel_size_m=m * p,
                                      distances_m=[z2]))
    cfg = ReconConfig()
    cfg.data.source_to_sample_m = z1
    eff = effective_dataset(cfg, ds)
    assert eff.pixel_size_m == pytest.approx(p) and eff.distances_m[0] == pytest.approx(z2 / m)
    sl = slice(c - nd // 2, c + nd // 2)
    optics = Optics(energy, eff.pixel_size_m, eff.pixel_size_m)
    model = HoloModel((1, nd, nd), optics, BE, param="complex")
    pred = model.predict({"object": obj[None, sl, sl], "probe": aperture[sl, sl].astype(complex),
                          "distances": eff.distances_m}, [0], [0])[0, 0]
    # intensities agree up to the 1/M^2 dilution of the diverging beam
    err = np.abs(pred / m ** 2 - frame).max() / frame.max()
    # measured 6e-4 (the edges of the 128-px effective grid); a 20 % wrong distance gives > 30x that
    assert err < 2e-3, err
    wrong = HoloModel((1, nd, nd), optics, BE, param="complex").predict(
        {"object": obj[None, sl, sl], "probe": aperture[sl, sl].astype(complex),
         "distances": np.array([z2 / m * 1.2])}, [0], [0])[0, 0]
    assert np.abs(wrong / m ** 2 - frame).max() / frame.max() > 30 * err


def test_cone_beam_scales_positions_and_keeps_frames(tmp_path):
    frames = np.ones((1, 3, 8, 8), np.float32)
    pos = np.array([[0, 0], [0.01, 0.0], [0.0, 0.02]])
    ds = Dataset.from_arrays(frames,
                             Geometry(modality="nearfield", energy_ev=12660.0, pixel_size_m=55e-6,
                                      distances_m=[1.12], positions_px=pos))
    cfg = ReconConfig()
    cfg.data.source_to_sample_m = 3.65e-3
    eff = effective_dataset(cfg, ds)
    m = (3.65e-3 + 1.12) / 3.65e-3
    assert m == pytest.approx(307.8, abs=0.05)
    assert eff.pixel_size_m == pytest.approx(178.7e-9, rel=1e-3)
    assert eff.distances_m[0] == pytest.approx(3.638e-3, rel=1e-3)
    np.testing.assert_allclose(eff.positions_px, pos * m)
    np.testing.assert_array_equal(eff.frames(), ds.frames())
    assert eff.meta["cone_beam"]["magnification"] == pytest.approx(m)


def test_propagate_and_shift_gradients_and_adjoint():
    prop = Propagator((12, 10), 100e-9, 1e-3, 1e-10, BE)
    psi = RNG.standard_normal((3, 2, 12, 10)) + 1j * RNG.standard_normal((3, 2, 12, 10))
    shifts = RNG.uniform(-0.5, 0.5, (3, 2))
    w = RNG.random((3, 2, 12, 10))

    def loss(p, s):
        return ops.sum(ops.mul(ops.abs2(propagate_and_shift(p, s, prop)), w))

    check_grad(loss, [psi, shifts], argnum=0, rtol=1e-6)
    check_grad(loss, [psi, shifts], argnum=1, eps=1e-6, rtol=1e-6)
    check_adjoint(lambda p: propagate_and_shift(p, shifts, prop), psi, linear=True, rtol=1e-10)
    # an integer shift is a roll of the propagated field
    out = propagate_and_shift(psi, np.array([[2.0, -3.0]] * 3), prop)
    np.testing.assert_allclose(out, np.roll(prop.fwd(psi), (2, -3), axis=(-2, -1)), atol=1e-12)


def test_nfptycho_tomography_at_zero_degrees_is_the_plain_model():
    """Several view angles: the view at 0 deg is the un-rotated object (multislice, 2 slices of a
    cubic grid), and a 90-deg view differs."""
    optics = Optics(12660.0, 178.7e-9, 178.7e-9)
    n = 24
    d = gaussian_filter(RNG.standard_normal((n, n, n)), 1.5) * 2e-5
    d[:, :, : n // 2] = 0   # asymmetric along x, so the 90-degree view sees another projection
    b = np.abs(d) * 0.05
    probe = np.ones((1, 18, 18), complex)
    pos = np.array([[3.0, 3.0], [5.0, 4.0]])
    kw = dict(distance_m=3.6e-3, pad_px=2, positions_px=pos)
    tomo = NearFieldPtychoModel((n, n, n), (14, 14), optics, BE, angles_rad=[0.0, np.pi / 2], **kw)
    plain = NearFieldPtychoModel((n, n, n), (14, 14), optics, BE, **kw)
    params = {"delta": d, "beta": b, "probe": probe, "positions": pos}
    i_tomo = tomo.predict(params, [0, 1], [0, 1])
    i_plain = plain.predict(params, [0], [0, 1])[0]
    np.testing.assert_allclose(i_tomo[0], i_plain, rtol=1e-6, atol=1e-9)
    assert np.abs(i_tomo[1] - i_tomo[0]).max() > 1e-3


def test_sub_pixel_position_moves_the_object_not_the_detector():
    """A window at column 20.4 sees the object moved by 0.4 px to the left in its frame (the
    detector stays with the beam), the same as the object shifted by -0.4 px at column 20."""
    optics = Optics(12660.0, 178.7e-9, 178.7e-9)
    obj = np.exp(1j * gaussian_filter(RNG.standard_normal((1, 80, 80)), 2.5) * 3)
    fy, fx = np.fft.fftfreq(80)[:, None], np.fft.fftfreq(80)[None, :]
    moved = np.fft.ifft2(np.fft.fft2(obj) * np.exp(2j * np.pi * fx * 0.4))   # O'(x) = O(x + 0.4)
    probe = np.ones((1, 36, 36), complex)
    model = NearFieldPtychoModel((1, 80, 80), (24, 24), optics, BE, distance_m=3.6e-3, pad_px=6,
                                 positions_px=np.array([[20.0, 20.0]]), param="complex")
    sub = model.predict({"object": obj, "probe": probe, "positions": np.array([[20.0, 20.4]])},
                        [0], [0])[0, 0]
    ref = model.predict({"object": moved, "probe": probe, "positions": np.array([[20.0, 20.0]])},
                        [0], [0])[0, 0]
    wrong = model.predict({"object": obj, "probe": probe, "positions": np.array([[20.0, 20.0]])},
                          [0], [0])[0, 0]
    # the Fourier shift of a non-periodic window rings a little: measured 0.11 of the difference a
    # whole 0.4 px makes (a sign error would give ~2)
    err = np.abs(sub - ref)[6:-6, 6:-6].max() / np.abs(wrong - ref)[6:-6, 6:-6].max()
    assert err < 0.25, err


def test_padded_windows_have_fft_friendly_sizes():
    """The padding holds the light reaching the frame and is grown to a window whose sides have
    small prime factors (100 + 2 x 9 = 118 = 2 x 59 would make every FFT ~3x slower)."""
    import scipy.fft as sfft

    from slicewise.engine.models.nfptycho import default_pad_px

    for frame in (48, 64, 100, 101, 128):
        pad = default_pad_px((frame, frame), 178.7e-9, 3.638e-3, 97.93e-12)
        zone = np.sqrt(97.93e-12 * 3.638e-3) / 178.7e-9
        assert pad >= min(2 * zone + 2, frame // 4)
        assert sfft.next_fast_len(frame + 2 * pad) == frame + 2 * pad
    assert default_pad_px((100, 100), 178.7e-9, 3.638e-3, 97.93e-12) == 10
