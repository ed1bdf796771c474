"""Simulated CXI files that test the near/far-field guess (engine/io/field_guess.py).

Each fixture is a small scan written the way beamline software writes it (CXI 1.x, integer
counts, translations in metres), with the property that has fooled simple guesses on real
detectors: near-field frames whose illumination is a disc over 20-50 % of the detector with a dark
rim (a focused beam, sample a few millimetres after the focus); far-field patterns of a zone plate
with a central stop (a ring, not a peak); far-field patterns stored in FFT order (direct beam in
the corners); a beam off centre; hot pixels; saturated pixels. ``FIXTURES`` maps a name to
``(maker, truth)``; ``make(name, path)`` writes the file and returns its description.

Plain NumPy physics, independent of the engine's propagators: near field in the effective
plane-wave geometry of the Fresnel scaling theorem (Fresnel transfer function on a padded window),
far field as the Fourier intensity of probe x object.
"""

from __future__ import annotations

import numpy as np

from slicewise.engine.io.cxi import write_cxi

HC_EV_M = 1.239841984e-6

#: The near-field setup of the synchrotron scan the issue is about: 12.66 keV, 55 um pixels at
#: 1.12 m, focus 3.65 mm before the sample (M ~ 308).
NF = dict(energy_ev=12660.0, pixel_m=55e-6, z2_m=1.12, z1_m=3.65e-3)
#: A far-field setup: 8.7 keV, 75 um pixels at 3.5 m.
FF = dict(energy_ev=8700.0, pixel_m=75e-6, z_m=3.5)


def star(n: int, spokes: int = 24, radius: float | None = None) -> np.ndarray:
    """Siemens-star thickness map (0..1), ``(n, n)``, lightly smoothed."""
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    r = np.hypot(yy, xx)
    s = ((np.cos(spokes * np.arctan2(yy, xx)) > 0) & (r < (radius or 0.45 * n)) & (r > 2))
    k = np.fft.fftfreq(n)
    blur = np.exp(-(k[:, None] ** 2 + k[None] ** 2) * 2.0)
    return np.clip(np.fft.ifft2(np.fft.fft2(s.astype(float)) * blur).real, 0, 1)


def smooth_noise(shape, corr_px: float, rng) -> np.ndarray:
    ky, kx = np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None]
    f = np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape))
                     * np.exp(-(ky ** 2 + kx ** 2) * (np.pi * corr_px) ** 2)).real
    return (f - f.mean()) / f.std()


def raster(n_side: int, step_px: float, rng, jitter: float = 0.1) -> np.ndarray:
    g = np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij"), -1)
    pos = g.reshape(-1, 2) * step_px
    return pos + rng.uniform(-jitter, jitter, pos.shape) * step_px


def _fresnel(u, pixel_m, dist_m, lam_m):
    ky, kx = np.fft.fftfreq(u.shape[0], pixel_m)[:, None], np.fft.fftfreq(u.shape[1], pixel_m)[None]
    return np.fft.ifft2(np.fft.fft2(u) * np.exp(-1j * np.pi * lam_m * dist_m * (ky ** 2 + kx ** 2)))


def _translations(pos_px, pixel_m) -> np.ndarray:
    """CXI sample translations (m) for window corners ``pos_px`` (default detector axes: row =
    t_y / p, col = t_x / p), with a stage offset."""
    t = np.zeros((len(pos_px), 3))
    t[:, 0] = pos_px[:, 1] * pixel_m + 0.8e-3
    t[:, 1] = pos_px[:, 0] * pixel_m - 0.3e-3
    t[:, 2] = 0.01
    return t


# ---- near field ---------------------------------------------------------------------------------

def near_field(*, lit=0.33, n=64, side=6, step_px=6.0, centre=(0.0, 0.0), peak=20000.0,
               phase=0.9, seed=0, soft=False):
    """Near-field ptychography with a focused beam: the illumination is a disc covering ``lit``
    of the detector (``centre``: its offset from the frame centre, px), dark outside; or the
    twin's soft-edged field (``soft``)."""
    rng = np.random.default_rng(seed)
    m = (NF["z1_m"] + NF["z2_m"]) / NF["z1_m"]
    px, z, lam = NF["pixel_m"] / m, NF["z2_m"] / m, HC_EV_M / NF["energy_ev"]
    margin = 16
    win = n + 2 * margin
    yy, xx = np.mgrid[:win, :win] - (win - 1) / 2
    if soft:
        amp = np.exp(-((yy / (0.45 * win)) ** 6 + (xx / (0.45 * win)) ** 6))
    else:
        radius = np.sqrt(lit * n * n / np.pi)
        r = np.hypot(yy - centre[0], xx - centre[1])
        amp = 0.5 * (1 - np.tanh((r - radius) / 1.2))
    aberr = 2.0 * smooth_noise((win, win), 5, rng) + 0.7 * np.sin(2 * np.pi * yy / 9.0)
    probe = _fresnel(amp * np.exp(1j * aberr), px, 0.3 * z, lam)
    pos = raster(side, step_px, rng)
    pos += margin - pos.min(axis=0)
    size = int(np.ceil(pos.max())) + win + margin
    thick = star(size, radius=0.48 * size)
    obj = np.exp((-1j * phase - 0.05) * thick)
    frames = np.empty((len(pos), n, n))
    for k, (r0, c0) in enumerate(np.round(pos).astype(int)):
        psi = _fresnel(probe * obj[r0 - margin:r0 - margin + win, c0 - margin:c0 - margin + win],
                       px, z, lam)
        frames[k] = np.abs(psi[margin:margin + n, margin:margin + n]) ** 2
    frames *= peak / frames.max()
    counts = rng.poisson(frames + 0.02).astype(np.int32)   # a dark rim: ~0 counts
    return dict(frames=counts, translations=_translations(np.round(pos), px),
                energy_ev=NF["energy_ev"], distance_m=NF["z2_m"], pixel_m=NF["pixel_m"],
                source_to_sample_m=NF["z1_m"])


def holography(*, n=96, seed=3):
    """Full-field near-field holography: one frame, flat illumination with fringes, no scan."""
    rng = np.random.default_rng(seed)
    px, z, lam = 0.65e-6, 0.2, HC_EV_M / 17000.0
    thick = star(n, radius=0.4 * n)
    obj = np.exp((-0.6j - 0.02) * thick)
    illum = 1 + 0.1 * smooth_noise((n, n), 6, rng)
    frame = np.abs(_fresnel(illum * obj, px, z, lam)) ** 2
    counts = rng.poisson(frame / frame.mean() * 3000).astype(np.uint16)
    return dict(frames=counts[None], translations=None, energy_ev=17000.0, distance_m=z,
                pixel_m=px)


# ---- far field ----------------------------------------------------------------------------------

def far_field(*, n=64, side=7, radius=9.0, stop=0.0, defocus=0.0, beam_offset=(0.0, 0.0),
              total=2e6, fft_order=False, phase=1.2, seed=1, cdi=False):
    """Far-field ptychography: the pupil is a disc of ``radius`` px on the detector (``stop``:
    central-stop radius as a fraction of it, a zone plate), ``defocus`` rad of quadratic phase at
    its edge, the direct beam ``beam_offset`` px off the frame centre; ``total`` photons per
    frame; frames stored centred, or in FFT order."""
    rng = np.random.default_rng(seed)
    lam = HC_EV_M / FF["energy_ev"]
    obj_px = lam * FF["z_m"] / (n * FF["pixel_m"])
    yy, xx = np.mgrid[:n, :n] - n // 2
    rho = np.hypot(yy - beam_offset[0], xx - beam_offset[1]) / radius
    pupil = ((rho <= 1) & (rho >= stop)) * np.exp(1j * defocus * rho ** 2)
    probe = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(pupil)))
    p_int = np.abs(probe) ** 2
    width = 2 * np.sqrt((p_int * (np.mgrid[:n, :n] - n / 2) ** 2).sum() / p_int.sum())
    step = max(2.0, 0.35 * width)
    pos = np.zeros((1, 2)) if cdi else raster(side, step, rng)
    pos -= pos.min(axis=0)
    size = int(np.ceil(pos.max())) + n
    thick = star(size, radius=0.45 * size)
    obj = np.exp((-1j * phase - 0.05) * thick)
    if cdi:  # an isolated particle
        obj = np.where(np.hypot(*(np.mgrid[:size, :size] - size / 2)) < n / 4, obj, 1.0)
        probe = np.ones((n, n)) * (np.hypot(*(np.mgrid[:n, :n] - n / 2)) < n / 3)
    frames = np.empty((len(pos), n, n))
    for k, (r0, c0) in enumerate(np.round(pos).astype(int)):
        f = np.abs(np.fft.fft2(probe * obj[r0:r0 + n, c0:c0 + n])) ** 2
        frames[k] = f if fft_order else np.fft.fftshift(f)
    frames *= total / frames.sum(axis=(1, 2)).mean()
    counts = rng.poisson(frames).astype(np.int32)
    return dict(frames=counts, translations=None if cdi else _translations(np.round(pos), obj_px),
                energy_ev=FF["energy_ev"], distance_m=FF["z_m"], pixel_m=FF["pixel_m"])


# ---- detector faults ----------------------------------------------------------------------------

def with_hot_pixels(fx: dict, n_hot: int = 4, factor: float = 30.0, seed: int = 5) -> dict:
    """A few pixels reading ``factor`` x the brightest count in every frame (hot pixels)."""
    rng = np.random.default_rng(seed)
    f = fx["frames"].copy()
    idx = rng.choice(f.shape[1] * f.shape[2], n_hot, replace=False)
    hot = int(min(factor * f.max(), np.iinfo(f.dtype).max // 2))
    f.reshape(len(f), -1)[:, idx] = hot
    return {**fx, "frames": f}


def with_saturation(fx: dict, n_sat: int = 6, seed: int = 6) -> dict:
    """Frames stored as uint16 with a few pixels at the type's maximum (saturated counters),
    and the brightest counts clipped below it."""
    rng = np.random.default_rng(seed)
    f = np.clip(fx["frames"], 0, 65534).astype(np.uint16)
    idx = rng.choice(f.shape[1] * f.shape[2], n_sat, replace=False)
    f.reshape(len(f), -1)[:, idx] = 65535
    return {**fx, "frames": f}


FIXTURES = {
    # name: (maker, truth field, truth order)
    "near, lit disc 20 %": (lambda: near_field(lit=0.20), "near", None),
    "near, lit disc 33 %": (lambda: near_field(lit=0.33), "near", None),
    "near, lit disc 50 %": (lambda: near_field(lit=0.50), "near", None),
    "near, disc off centre": (lambda: near_field(lit=0.25, centre=(9.0, -11.0)), "near", None),
    "near, disc + hot pixels": (lambda: with_hot_pixels(near_field(lit=0.33, seed=2)), "near",
                                None),
    "near, disc + saturated": (lambda: with_saturation(near_field(lit=0.33, peak=60000, seed=4)),
                               "near", None),
    "near, soft field (twin)": (lambda: near_field(soft=True, seed=7), "near", None),
    "near, holography": (holography, "near", None),
    "far, focused beam": (lambda: far_field(), "far", "centred"),
    "far, zone plate ring": (lambda: far_field(radius=14, stop=0.45, defocus=6.0), "far",
                             "centred"),
    "far, ring in FFT order": (lambda: far_field(radius=14, stop=0.45, defocus=6.0,
                                                 fft_order=True), "far", "fft"),
    "far, FFT order": (lambda: far_field(fft_order=True, seed=2), "far", "fft"),
    "far, beam off centre": (lambda: far_field(beam_offset=(7.0, -10.0), seed=3), "far",
                             "centred"),
    "far, hot pixels": (lambda: with_hot_pixels(far_field(seed=4)), "far", "centred"),
    "far, saturated": (lambda: with_saturation(far_field(total=3e7, seed=8)), "far", "centred"),
    "far, single frame (CDI)": (lambda: far_field(cdi=True, seed=9), "far", "centred"),
}


def make(name: str, path) -> dict:
    """Write fixture ``name`` as a CXI file at ``path``; returns its arrays and truth."""
    maker, truth, order = FIXTURES[name]
    fx = maker()
    write_cxi(path, fx["frames"], energy_ev=fx["energy_ev"], distance_m=fx["distance_m"],
              pixel_size_m=fx["pixel_m"], translations_m=fx["translations"])
    return {**fx, "field": truth, "order": order}
