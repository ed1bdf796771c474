"""An independent simulator and CXI writer for acceptance tests (plain NumPy + h5py).

Deliberately shares no code with ``engine/`` (not its propagators, not ``engine.io.cxi.write_cxi``,
not ``engine.twin``): it is the "stranger's file" a beamline would send, so a convention error in the
engine cannot be mirrored here. Physics: near-field ptychography in the effective plane-wave
geometry of the Fresnel scaling theorem (a focus ``z1`` before the sample, detector ``z2`` behind
it: magnification ``M = (z1 + z2) / z1``, effective pixel ``p / M``, effective distance ``z2 / M``);
the exit wave ``probe * object`` is propagated by the angular-spectrum method on a padded window.
Far field: the exit wave's Fourier intensity, stored centred (direct beam in the middle).

CXI conventions written (CXI 1.x): lab x, y, z with z downstream, y up; translations are sample
positions in metres (one row per frame, x y z); energy in joules; detector pixel and distance in
metres; ``basis_vectors`` (2, 3) = lab step of one pixel along the slow and fast frame axis,
default slow = -y, fast = -x. A frame pixel (i, j) sees the sample point at sample coordinates
``(i, j) - B^-1 t`` (B = the xy basis in object pixels), i.e. the object array below is indexed in
detector axes and frame k's top-left corner sits at ``-B^-1 t_k``.
"""

from __future__ import annotations

import numpy as np

EV_J = 1.602176634e-19
HC_EV_M = 1.239841984e-6


def siemens_star(n: int, spokes: int = 36, radius_px: float | None = None, seed: int = 0):
    """Projected thickness map (0..1) of a Siemens star, ``(n, n)``, with mild edge smoothing."""
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    ang = np.arctan2(yy, xx)
    r = np.hypot(yy, xx)
    radius_px = radius_px or 0.42 * n
    star = (np.cos(spokes / 2 * ang * 2) > 0) & (r < radius_px) & (r > 3)
    rng = np.random.default_rng(seed)
    star = star.astype(float) * (1 + 0.05 * rng.standard_normal((n, n)))  # roughness
    k = np.fft.fftfreq(n)
    blur = np.exp(-(k[:, None] ** 2 + k[None] ** 2) * (np.pi * 0.7) ** 2 * 2)
    return np.clip(np.fft.ifft2(np.fft.fft2(star) * blur).real, 0, None)


def smooth_random(shape, corr_px: float, rng) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field of correlation length ``corr_px``."""
    ky, kx = np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None]
    f = np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) *
                     np.exp(-(ky ** 2 + kx ** 2) * (np.pi * corr_px) ** 2)).real
    return (f - f.mean()) / f.std()


def angular_spectrum(u: np.ndarray, dist_m: float, pixel_m: float, lam_m: float) -> np.ndarray:
    ky, kx = np.fft.fftfreq(u.shape[-2], pixel_m)[:, None], np.fft.fftfreq(u.shape[-1], pixel_m)[None]
    arg = 1 - (lam_m * ky) ** 2 - (lam_m * kx) ** 2
    h = np.exp(2j * np.pi / lam_m * dist_m * (np.sqrt(np.maximum(arg, 0)) - 1))
    return np.fft.ifft2(np.fft.fft2(u) * h)


def kb_probe(n: int, pixel_m: float, lam_m: float, seed: int = 1) -> np.ndarray:
    """A strongly structured probe ``(n, n)``: a soft square (KB-like) aperture with mirror-figure
    stripes (1D phase errors along each axis, several rad) and 2D speckle, propagated a short way
    so that it carries Fresnel fringes."""
    rng = np.random.default_rng(seed)
    c = (np.arange(n) - (n - 1) / 2) / (0.46 * n)
    edge = lambda v: 1 / (1 + np.exp((np.abs(v) - 1) * 25))  # noqa: E731
    amp = np.outer(edge(c), edge(c))
    stripes = (3.0 * smooth_random((1, n), 4, rng)[0][None] + 2.5 * smooth_random((n, 1), 5, rng))
    speckle = 0.6 * smooth_random((n, n), 3, rng)
    u = amp * np.exp(1j * (stripes + speckle)) * (1 + 0.3 * smooth_random((n, n), 6, rng))
    return angular_spectrum(u, 1.5e-3, pixel_m, lam_m)


def raster_scan(n: int, span_px: float, seed: int = 2) -> np.ndarray:
    """``(n, 2)`` (row, col) top-left window offsets in object pixels: a raster with jitter."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    g = np.stack(np.meshgrid(np.linspace(0, span_px, side), np.linspace(0, span_px, side),
                             indexing="ij"), -1).reshape(-1, 2)[:n]
    step = span_px / max(side - 1, 1)
    return g + rng.uniform(-0.3, 0.3, g.shape) * step


def simulate_nearfield(*, n_frames=200, frame=100, energy_ev=12.66e3, det_pixel_m=55e-6,
                       z1_m=3.65e-3, z2_m=1.12, scan_m=20e-6, peak_counts=29000,
                       max_phase_rad=1.0, beta_over_delta=0.08, pad=48, seed=0) -> dict:
    """Frames (int counts), translations (m, lab), the truth (object in detector axes) and geometry.

    The object array has the effective pixel; frame k reads the window at ``offsets[k]`` (object
    pixels, top-left corner of the un-padded frame)."""
    lam = HC_EV_M / energy_ev
    mag = (z1_m + z2_m) / z1_m
    px, z_eff = det_pixel_m / mag, z2_m / mag
    offsets = raster_scan(n_frames, scan_m / px, seed + 2)
    offsets -= offsets.min(axis=0)
    margin = pad + 4
    n_obj = int(np.ceil(offsets.max())) + frame + 2 * margin
    thick = siemens_star(n_obj, seed=seed, radius_px=0.6 * n_obj)
    # a material retards the phase: exp(-i k delta t) for waves exp(i (k z - w t))
    obj = np.exp(-(1j + beta_over_delta) * max_phase_rad * thick)
    probe = kb_probe(frame + 2 * pad, px, lam, seed + 1)
    rng = np.random.default_rng(seed + 3)
    intens = np.empty((n_frames, frame, frame))
    for k, (r, c) in enumerate(offsets + margin):
        r0, c0 = int(np.round(r)), int(np.round(c))  # integer windows; the stored offset is exact
        patch = obj[r0 - pad:r0 + frame + pad, c0 - pad:c0 + frame + pad]
        field = angular_spectrum(probe * patch, z_eff, px, lam)[pad:pad + frame, pad:pad + frame]
        intens[k] = np.abs(field) ** 2
        offsets[k] = (r0 - margin, c0 - margin)
    counts = rng.poisson(intens * (peak_counts / intens.max() * 0.93))
    return {"counts": counts, "offsets_px": offsets, "object": obj, "margin": margin,
            "probe": probe, "pixel_eff_m": px, "z_eff_m": z_eff, "mag": mag, "energy_ev": energy_ev,
            "det_pixel_m": det_pixel_m, "z1_m": z1_m, "z2_m": z2_m, "frame": frame}


def translations_for(offsets_px, pixel_m, basis="default", z_m=0.0, origin_m=(0.0, 0.0)):
    """Sample translations ``(n, 3)`` (m) that put frame k's window at ``offsets_px[k]`` for the
    given detector basis ('default': slow = -y, fast = -x; or a (2, 3) array in metres per
    *object* pixel). ``origin_m`` adds the motor offset every real scan has."""
    b = (np.array([[0.0, -pixel_m, 0.0], [-pixel_m, 0.0, 0.0]]) if isinstance(basis, str)
         else np.asarray(basis, float))
    bxy = b[:, :2].T                       # columns: lab xy of one slow / fast step
    t_xy = -(bxy @ np.asarray(offsets_px, float).T).T + np.asarray(origin_m)
    return np.column_stack([t_xy, np.full(len(t_xy), z_m)])


def write_stranger_cxi(path, counts, *, energy_ev, distance_m, pixel_m, translations_m,
                       bad_pixels=(), mask_style="bitfield", basis_vectors=None,
                       dtype="int32", data_link=True, compression=None, probe=None,
                       bad_value=None, translation_units=None):
    """Write a CXI 1.x file as a beamline might.

    mask_style: 'bitfield' (uint32, dead = bit 0 | bit 3, plus signal-bit pixels that are fine),
    'zero_one' (uint8, 1 = bad), 'bool' (True = bad), 'good_one' (uint8, 1 = good: PtyPy style
    weights), or None (no mask; dead pixels then hold ``bad_value``).
    compression: None, 'gzip', 'blosc', 'bitshuffle' (hdf5plugin)."""
    import h5py

    frames = np.asarray(counts).astype(dtype)
    bad = np.zeros(frames.shape[1:], bool)
    for (r, c) in bad_pixels:
        bad[r, c] = True
    if bad_value is not None:
        frames[:, bad] = bad_value
    kw = {}
    if compression == "gzip":
        kw = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    elif compression in ("blosc", "bitshuffle"):
        import hdf5plugin
        kw = dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
                  if compression == "blosc" else hdf5plugin.Bitshuffle())
    with h5py.File(path, "w") as f:
        f.create_dataset("cxi_version", data=160)
        f.create_dataset("number_of_entries", data=1)
        det = f.create_group("entry_1/instrument_1/detector_1")
        det.create_dataset("data", data=frames, chunks=(1,) + frames.shape[1:], **kw)
        det.create_dataset("distance", data=np.float64(distance_m))
        det.create_dataset("x_pixel_size", data=np.float64(pixel_m))
        det.create_dataset("y_pixel_size", data=np.float64(pixel_m))
        if basis_vectors is not None:
            det.create_dataset("basis_vectors", data=np.asarray(basis_vectors, float))
        if mask_style == "bitfield":
            m = np.where(bad, 0x1 | 0x8, 0).astype(np.uint32)
            m[0, :3] |= 0x1000                 # "signal above background": not a bad pixel
            det.create_dataset("mask", data=m)
        elif mask_style == "zero_one":
            det.create_dataset("mask", data=bad.astype(np.uint8))
        elif mask_style == "bool":
            det.create_dataset("mask", data=bad)
        elif mask_style == "good_one":
            det.create_dataset("mask", data=(~bad).astype(np.uint8))
        src = f.create_group("entry_1/instrument_1/source_1")
        src.create_dataset("energy", data=np.float64(energy_ev * EV_J))
        if probe is not None:
            src.create_dataset("illumination", data=np.asarray(probe, np.complex64))
        t = f.create_dataset("entry_1/sample_1/geometry_1/translation",
                             data=np.asarray(translations_m, float))
        if translation_units:
            t.attrs["units"] = translation_units
        d1 = f.create_group("entry_1/data_1")
        if data_link:
            d1["data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
        f["entry_1/data_1"].attrs["NX_class"] = "NXdata"


def simulate_farfield(*, n_frames=64, frame=64, energy_ev=8000.0, det_pixel_m=75e-6,
                      distance_m=5.0, step_px=5.0, peak_counts=2e5, max_phase_rad=0.8, seed=0):
    """Far-field ptychography: a focused-aperture probe over a Siemens star; frames are the
    Fourier intensities stored centred (direct beam in the middle), Poisson counts.
    Object pixel ``lambda z / (N p)``; offsets as in :func:`simulate_nearfield`."""
    lam = HC_EV_M / energy_ev
    px = lam * distance_m / (frame * det_pixel_m)
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_frames)))
    g = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)
    offsets = np.round(g[:n_frames] * step_px + rng.uniform(-1, 1, (n_frames, 2))).astype(float)
    offsets -= offsets.min(axis=0)
    margin = 4
    n_obj = int(offsets.max()) + frame + 2 * margin
    obj = np.exp(-(1j + 0.1) * max_phase_rad * siemens_star(n_obj, spokes=16, seed=seed))
    yy, xx = np.mgrid[:frame, :frame] - (frame - 1) / 2
    pupil = (np.hypot(yy, xx) < frame / 5).astype(complex)   # a defocused pinhole-like probe
    probe = angular_spectrum(pupil * np.exp(1j * smooth_random((frame, frame), 3, rng)),
                             20e-6, px, lam)
    intens = np.empty((n_frames, frame, frame))
    for k, (r, c) in enumerate(offsets.astype(int) + margin):
        ex = probe * obj[r:r + frame, c:c + frame]
        intens[k] = np.abs(np.fft.fftshift(np.fft.fft2(ex))) ** 2
    counts = rng.poisson(intens * (peak_counts / intens.max()))
    return {"counts": counts, "offsets_px": offsets, "object": obj, "margin": margin,
            "probe": probe, "pixel_eff_m": px, "energy_ev": energy_ev, "det_pixel_m": det_pixel_m,
            "z2_m": distance_m, "frame": frame}


def illuminated_phase_corr(phase: np.ndarray, sim: dict, probe_radius_px: float = 6.0) -> float:
    """Correlation of a reconstructed phase map with :func:`simulate_farfield`'s truth over the
    region the probe centres swept (plus ``probe_radius_px``), after the best integer shift (a
    blind reconstruction may translate object and probe together) and a fitted offset + ramp.
    The far-field probe fills well under half its window, so a frame-sized interior would score
    never-illuminated pixels."""
    truth = np.angle(sim["object"])
    n = (2 * max(truth.shape[0], phase.shape[0]),) * 2

    def edges(a):
        g = np.hypot(*np.gradient(a))
        return np.fft.fft2(g - g.mean(), n)

    cross = np.fft.ifft2(edges(truth) * np.conj(edges(phase))).real
    dy, dx = (int(v) if v < s // 2 else int(v) - s for v, s in zip(np.unravel_index(cross.argmax(), n), n))
    off = sim["offsets_px"] + sim["margin"] + sim["frame"] / 2
    lo = np.floor(off.min(axis=0) - probe_radius_px).astype(int)
    hi = np.ceil(off.max(axis=0) + probe_radius_px).astype(int)
    ys, xs = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]]
    ok = (ys - dy >= 0) & (xs - dx >= 0) & (ys - dy < phase.shape[0]) & (xs - dx < phase.shape[1])
    t, r = truth[ys[ok], xs[ok]], phase[ys[ok] - dy, xs[ok] - dx]
    a = np.column_stack([np.ones(t.size), ys[ok], xs[ok]])
    r = r - a @ np.linalg.lstsq(a, r - t, rcond=None)[0]
    return float(np.corrcoef(t, r)[0, 1])
