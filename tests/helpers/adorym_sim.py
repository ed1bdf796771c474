"""An independent NumPy simulator writing data sets exactly as Adorym lays them out.

Used to test Slicewise on files it did not write: nothing here imports Slicewise. Conventions
(see shared reference adorym-hdf5.md): objects ``[y, x, z]`` with the beam along +z, cubic voxels
(slice thickness = pixel size), ``T = exp(-k dz beta - i k dz delta)``, multiply then propagate
with ``H = exp(-i pi lambda d (u^2 + v^2))`` on the unshifted ``fftfreq`` grid, no propagation after
the last slice, far field ``|fftshift(fft2(psi))|`` (unnormalised), magnitudes in
``exchange/data [n_theta, n_spots, y, x]``, cm/eV/radians in ``metadata``, rotation about y.
No ``truth`` group: the object grid (Adorym's ``obj_size``) is not in the file, as with Adorym.

Scenarios return ``(path, truth_delta_yxz, truth_beta_yxz)``; the caller keeps the truth.
"""

from __future__ import annotations

import h5py
import numpy as np
from scipy.ndimage import map_coordinates

HC_EV_M = 1.239841984e-6


def wavelength(energy_ev: float) -> float:
    return HC_EV_M / energy_ev


def fresnel(psi, d_m, pix_m, lam):
    v = np.fft.fftfreq(psi.shape[-2], d=pix_m)
    u = np.fft.fftfreq(psi.shape[-1], d=pix_m)
    h = np.exp(-1j * np.pi * lam * d_m * (v[:, None] ** 2 + u[None, :] ** 2))
    return np.fft.ifft2(np.fft.fft2(psi) * h)


def multislice(psi, delta, beta, pix_m, lam):
    """Exit wave of ``[y, x, z]`` delta/beta slices of thickness ``pix_m`` (cubic voxels)."""
    k = 2 * np.pi / lam
    nz = delta.shape[2]
    for z in range(nz):
        psi = psi * np.exp(-k * pix_m * beta[..., z] - 1j * k * pix_m * delta[..., z])
        if z < nz - 1:
            psi = fresnel(psi, pix_m, pix_m, lam)
    return psi


def rotate(obj, theta):
    """Rotate ``[y, x, z]`` about y (axis 0), centre (N-1)/2, bilinear, clamped edges."""
    _, nx, nz = obj.shape
    cx, cz = (nx - 1) / 2, (nz - 1) / 2
    xq, zq = np.meshgrid(np.arange(nx, dtype=float), np.arange(nz, dtype=float), indexing="ij")
    xo = cx + np.cos(theta) * (xq - cx) - np.sin(theta) * (zq - cz)
    zo = cz + np.sin(theta) * (xq - cx) + np.cos(theta) * (zq - cz)
    return np.stack([map_coordinates(s, [xo, zo], order=1, mode="nearest") for s in obj])


def write(path, mags, energy_ev, pix_m, theta, **meta):
    with h5py.File(path, "w") as f:
        f["exchange/data"] = np.asarray(mags, np.float32)
        f["metadata/energy_ev"] = float(energy_ev)
        f["metadata/psize_cm"] = pix_m * 100
        f["metadata/theta"] = np.asarray(theta, float)
        for key, v in meta.items():
            f[f"metadata/{key}"] = v


def poisson_mags(mags, photons_per_px, rng):
    """Magnitudes of Poisson counts at a mean of ``photons_per_px`` per pixel of intensity."""
    i = mags.astype(float) ** 2
    scale = photons_per_px / i.mean()
    return np.sqrt(rng.poisson(i * scale) / scale)


# ---- phantoms (own, not Slicewise's), shapes (y, x) or [y, x, z] ----

def blobs_2d(n, seed=0, count=14):
    """Smooth random blobs in [0, 1] on an n x n grid, an empty margin of n/8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:n, :n].astype(float)
    img = np.zeros((n, n))
    m = n / 8
    for _ in range(count):
        cy, cx = rng.uniform(m + n / 10, n - m - n / 10, 2)
        r = rng.uniform(n / 20, n / 9)
        img += rng.uniform(0.4, 1.0) / (1 + np.exp(((y - cy) ** 2 + (x - cx) ** 2) ** 0.5 / 0.7 - r / 0.7))
    return np.clip(img, 0, 1)


def spheres_3d(n, seed=0, count=10):
    rng = np.random.default_rng(seed)
    y, x, z = np.mgrid[:n, :n, :n].astype(float)
    vol = np.zeros((n, n, n))
    c = (n - 1) / 2
    for _ in range(count):
        r = rng.uniform(n / 14, n / 7)
        while True:
            p = rng.uniform(r + 1, n - r - 2, 3)
            if ((p[1] - c) ** 2 + (p[2] - c) ** 2) ** 0.5 < c - r - 1:  # inside the rotation disc
                break
        vol = np.maximum(vol, ((y - p[0]) ** 2 + (x - p[1]) ** 2 + (z - p[2]) ** 2 <= r * r) * rng.uniform(0.5, 1))
    return vol


def hollow_cone_3d(n, wall=2.5):
    """A hollow cone, axis along y, radius growing from n/10 to 0.4 n, wall ``wall`` px."""
    y, x, z = np.mgrid[:n, :n, :n].astype(float)
    c = (n - 1) / 2
    rr = np.hypot(x - c, z - c)
    t = (y - n * 0.1) / (n * 0.8)
    r_out = n / 10 + t * (0.4 * n - n / 10)
    inside = (t >= 0) & (t <= 1)
    return (inside & (rr <= r_out) & (rr >= r_out - wall)).astype(float)


def gaussian_probe(p, sigma, curvature=0.03, photons=1e6, phase_max=0.0):
    """Gaussian magnitude; phase ``curvature r^2`` (defocus) plus, as Adorym's 'gaussian' probe,
    ``phase_max exp(-r^2 / (2 sigma^2))``."""
    yy, xx = np.mgrid[:p, :p] - (p - 1) / 2
    r2 = xx ** 2 + yy ** 2
    probe = np.exp(-r2 / (2 * sigma ** 2)) * np.exp(1j * (curvature * r2 + phase_max * np.exp(-r2 / (2 * sigma ** 2))))
    return probe * np.sqrt(photons / np.sum(np.abs(probe) ** 2))


# ---- scenarios ----

def ptycho_2d(path, n=64, p=24, step=4, energy_ev=10000.0, pix_m=10e-9, phase_rad=1.0, nz=1,
              with_probe=True, photons=None, seed=0, curvature=0.03, phase_max=0.0):
    """Far-field 2D ptychography of a ~``phase_rad`` phase object (weakly absorbing)."""
    lam = wavelength(energy_ev)
    k = 2 * np.pi / lam
    occ = blobs_2d(n, seed)
    delta = np.repeat((occ * phase_rad / (k * pix_m * nz))[..., None], nz, axis=2)
    beta = delta / 30
    probe = gaussian_probe(p, p / 6, curvature, 1e6, phase_max)
    pos = np.array([(y, x) for y in range(0, n - p + 1, step) for x in range(0, n - p + 1, step)])
    mags = []
    for y, x in pos:
        ex = multislice(probe, delta[y:y + p, x:x + p], beta[y:y + p, x:x + p], pix_m, lam)
        mags.append(np.abs(np.fft.fftshift(np.fft.fft2(ex))))
    mags = np.stack(mags)[None]
    if photons:
        mags = poisson_mags(mags, photons, np.random.default_rng(seed + 1))
    meta = dict(probe_pos_px=pos.astype(np.int64), free_prop_cm="inf")
    if with_probe:
        meta.update(probe_real=probe.real, probe_imag=probe.imag)
    write(path, mags, energy_ev, pix_m, [0.0], **meta)
    return path, delta, beta


def holo_2d(path, n=64, energy_ev=10000.0, pix_m=50e-9, phase_rad=1.0, fresnel_numbers=(0.1, 0.07, 0.05, 0.03),
            photons=None, seed=0):
    """Multi-distance full-field holography, distance-major spot axis."""
    lam = wavelength(energy_ev)
    k = 2 * np.pi / lam
    occ = blobs_2d(n, seed)
    delta = (occ * phase_rad / (k * pix_m))[..., None]
    beta = delta / 30
    dists = np.array([pix_m ** 2 / (lam * f) for f in fresnel_numbers])
    ex = multislice(np.ones((n, n), complex), delta, beta, pix_m, lam)
    mags = np.stack([np.abs(fresnel(ex, d, pix_m, lam)) for d in dists])[None]
    if photons:
        mags = poisson_mags(mags, photons, np.random.default_rng(seed + 1))
    write(path, mags, energy_ev, pix_m, [0.0], free_prop_cm=dists * 100)
    return path, delta, beta


def holotomo(path, vol, delta0, beta0, energy_ev, pix_m, n_theta, fresnel_numbers, photons=None, seed=0):
    """Full-field holotomography of an occupancy volume ``[y, x, z]`` scaled by (delta0, beta0)."""
    lam = wavelength(energy_ev)
    delta, beta = vol * delta0, vol * beta0
    dists = np.array([pix_m ** 2 / (lam * f) for f in fresnel_numbers])
    theta = np.linspace(0, np.pi, n_theta, endpoint=False)
    frames = []
    for t in theta:
        ex = multislice(np.ones(vol.shape[:2], complex), rotate(delta, t), rotate(beta, t), pix_m, lam)
        frames.append([np.abs(fresnel(ex, d, pix_m, lam)) for d in dists])
    mags = np.asarray(frames)
    if photons:
        mags = poisson_mags(mags, photons, np.random.default_rng(seed + 1))
    fp = dists * 100 if len(dists) > 1 else float(dists[0] * 100)
    write(path, mags, energy_ev, pix_m, theta, free_prop_cm=fp)
    return path, delta, beta


def raster(n, p, step, overhang=0):
    """Top-left corners of a square raster on an n-px object; ``overhang`` > 0 starts the windows
    that far outside the object and runs them as far past the far edge, as Adorym's demos do
    (e.g. ``np.arange(23) * 12 - 36`` for 72-px windows on 256 px)."""
    ys = list(range(-overhang, n - p + overhang + 1, step))
    if ys[-1] != n - p + overhang:
        ys.append(n - p + overhang)
    return np.array([(y, x) for y in ys for x in ys])


def ptychotomo(path, vol, delta0, beta0, energy_ev, pix_m, n_theta, p=16, step=3, with_probe=True,
               photons=None, seed=0, curvature=0.03, phase_max=0.0, overhang=0):
    """Multislice far-field ptychotomography; the raster reaches the far edge of the object (plus
    ``overhang`` px on both sides, padded with vacuum)."""
    lam = wavelength(energy_ev)
    n = vol.shape[1]
    delta, beta = vol * delta0, vol * beta0
    probe = gaussian_probe(p, p / 5, curvature, 1e8, phase_max)
    pos = raster(n, p, step, overhang)
    theta = np.linspace(0, np.pi, n_theta, endpoint=False)
    pad = ((overhang, overhang), (overhang, overhang), (0, 0))
    frames = []
    for t in theta:
        d, b = np.pad(rotate(delta, t), pad), np.pad(rotate(beta, t), pad)
        frames.append([np.abs(np.fft.fftshift(np.fft.fft2(
            multislice(probe, d[y:y + p, x:x + p], b[y:y + p, x:x + p], pix_m, lam))))
            for y, x in pos + overhang])
    mags = np.asarray(frames)
    if photons:
        mags = poisson_mags(mags, photons, np.random.default_rng(seed + 1))
    meta = dict(probe_pos_px=pos.astype(np.int64), free_prop_cm="inf")
    if with_probe:
        meta.update(probe_real=probe.real, probe_imag=probe.imag)
    write(path, mags, energy_ev, pix_m, theta, **meta)
    return path, delta, beta
