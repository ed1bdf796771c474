"""Data written by an independent NumPy implementation of Adorym's conventions reconstruct right.

The simulators here do not use Slicewise's operators: they follow the reference description of
Adorym's layout and physics line by line (object ``[y, x, z]``, ``T = exp(-k dz beta - i k dz
delta)``, multiply then propagate with ``H = exp(-i pi lambda d (u^2 + v^2))`` on the unshifted
``fftfreq`` grid, no propagation after the last slice, far field ``|fftshift(fft2(psi))|`` with an
unnormalised FFT, magnitudes in ``exchange/data``, rotation about y with
``scipy.ndimage.map_coordinates`` (bilinear, clamped edges), cm and radians in the file). A wrong
sign, axis order, rotation direction or FFT scale in Slicewise's reader or models fails these.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from slicewise.engine.io.readers import open_dataset
from slicewise.engine.materials import named_material
from slicewise.engine.phantoms import hollow_cone, siemens_star
from slicewise.engine.recon.config import ReconConfig
from slicewise.engine.recon.run import Reconstruction

ENERGY_EV = 10000.0
LAMBDA_M = 1.239841984e-6 / ENERGY_EV
K = 2 * np.pi / LAMBDA_M


def fresnel(psi, d_m, pix_m):
    v = np.fft.fftfreq(psi.shape[0], d=pix_m)
    u = np.fft.fftfreq(psi.shape[1], d=pix_m)
    h = np.exp(-1j * np.pi * LAMBDA_M * d_m * (v[:, None] ** 2 + u[None, :] ** 2))
    return np.fft.ifft2(np.fft.fft2(psi) * h)


def multislice_yxz(psi, delta, beta, dz_m, pix_m):
    """Adorym's order: for each z, multiply, then propagate unless it was the last slice."""
    nz = delta.shape[2]
    for z in range(nz):
        psi = psi * np.exp(-K * dz_m * beta[:, :, z] - 1j * K * dz_m * delta[:, :, z])
        if z < nz - 1:
            psi = fresnel(psi, dz_m, pix_m)
    return psi


def rotate_yxz(obj, theta):
    """Rotation about y (axis 0): out[y, x', z'] = obj[y, x, z] with Adorym's matrix."""
    _, nx, nz = obj.shape
    cx, cz = (nx - 1) / 2, (nz - 1) / 2
    xq, zq = np.meshgrid(np.arange(nx, dtype=float), np.arange(nz, dtype=float), indexing="ij")
    x_old = cx + np.cos(theta) * (xq - cx) - np.sin(theta) * (zq - cz)
    z_old = cz + np.sin(theta) * (xq - cx) + np.cos(theta) * (zq - cz)
    return np.stack([map_coordinates(sl, [x_old, z_old], order=1, mode="nearest") for sl in obj])


def write_adorym_file(path, magnitudes, psize_m, theta, **meta):
    with h5py.File(path, "w") as f:
        f["exchange/data"] = magnitudes.astype(np.float32)
        f["metadata/energy_ev"] = ENERGY_EV
        f["metadata/psize_cm"] = psize_m * 100
        f["metadata/theta"] = np.asarray(theta, float)
        for k, v in meta.items():
            f[f"metadata/{k}"] = v


def corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def base_config(data, out, **kw) -> ReconConfig:
    cfg = ReconConfig()
    cfg.data.path = str(data)
    cfg.run.backend, cfg.run.output_dir, cfg.run.save_tiff = "numpy", str(out), False
    cfg.run.checkpoint_every = 0
    for path, value in kw.items():
        group, key = path.split("__")
        setattr(getattr(cfg, group), key, value)
    return cfg


def test_adorym_holotomography_file(tmp_path):
    """Full-field holotomography of a hollow cone written with Adorym's conventions."""
    n, pix, dist = 24, 50e-9, 8e-5
    occ = hollow_cone((n, n, n), wall_px=3)                        # (z, y, x), axis along y
    z, y, x = np.mgrid[:n, :n, :n]
    # the cone is symmetric about its axis: a ball off the axis, near the upstream face and to the
    # right, makes a wrong rotation direction or axis order visible
    occ = np.maximum(occ, ((z - 5) ** 2 + (y - 6) ** 2 + (x - 18) ** 2 <= 9).astype(float))
    d0, b0 = named_material("SiO2 glass").optics(ENERGY_EV)
    delta_yxz = np.transpose(occ * d0, (1, 2, 0))                  # Adorym's [y, x, z]
    beta_yxz = np.transpose(occ * b0, (1, 2, 0))
    theta = np.linspace(0, np.pi, 30, endpoint=False)
    frames = []
    for t in theta:
        exit_ = multislice_yxz(np.ones((n, n), complex), rotate_yxz(delta_yxz, t), rotate_yxz(beta_yxz, t),
                               pix, pix)
        frames.append(np.abs(fresnel(exit_, dist, pix))[None])
    path = tmp_path / "adorym_holo.h5"
    write_adorym_file(path, np.stack(frames), pix, theta, free_prop_cm=dist * 100)

    ds = open_dataset(path)
    assert ds.modality == "nearfield" and ds.distances_m == pytest.approx([dist])
    cfg = base_config(path, tmp_path / "out", run__epochs=25, run__batch_angles=5,
                      optimizer__lr_delta=1e-7, optimizer__lr_beta=1e-9)
    rec = Reconstruction(cfg, ds)
    rec.run()
    delta = np.asarray(rec.problem.params["delta"])                # (z, y, x)
    truth = occ * d0
    c = corr(delta, truth)
    # a wrong rotation direction reconstructs the object mirrored in z or x: clearly worse
    c_mirror = max(corr(delta, truth[::-1]), corr(delta, truth[:, :, ::-1]))
    assert c >= 0.9, c
    assert c - c_mirror >= 0.05, (c, c_mirror)
    inside = truth > 0.5 * d0
    assert 0.7 < delta[inside].mean() / d0 < 1.3  # right sign and scale


def test_adorym_farfield_ptychography_file(tmp_path):
    """2D far-field ptychography: integer top-left positions, unnormalised centred magnitudes,
    probe in metadata/probe_real|imag, object [y, x, 1]."""
    n, py, pix = 48, 24, 10e-9
    occ = siemens_star((n, n), 12, 18)
    d0, b0 = named_material("gold").optics(ENERGY_EV)
    dz = 200e-9                                                     # not cubic: a Slicewise extension
    yy, xx = np.mgrid[:py, :py] - py / 2
    probe = np.exp(-(xx ** 2 + yy ** 2) / (2 * 4.0 ** 2)) * np.exp(1j * 0.02 * (xx ** 2 + yy ** 2))
    probe *= np.sqrt(1e6 / np.sum(np.abs(probe) ** 2))
    pos = np.array([(y, x) for y in range(0, n - py + 1, 3) for x in range(0, n - py + 1, 3)])
    trans = np.exp(-K * dz * occ * b0 - 1j * K * dz * occ * d0)
    mags = np.stack([np.abs(np.fft.fftshift(np.fft.fft2(probe * trans[y:y + py, x:x + py])))
                     for y, x in pos])[None]
    path = tmp_path / "adorym_ptycho.h5"
    write_adorym_file(path, mags, pix, [0.0], probe_pos_px=pos.astype(np.int64),
                      probe_real=probe.real, probe_imag=probe.imag, free_prop_cm="inf",
                      slice_thickness_cm=dz * 100)
    ds = open_dataset(path)
    assert ds.modality == "farfield" and ds.slice_thickness_m == pytest.approx(dz)
    cfg = base_config(path, tmp_path / "out", run__epochs=40, run__batch_spots=16,
                      optimizer__lr_delta=1e-6, optimizer__lr_beta=1e-8)
    rec = Reconstruction(cfg, ds)
    rec.run()
    delta = np.asarray(rec.problem.params["delta"])[0]
    scanned = np.zeros((n, n), bool)
    scanned[6:n - 6, 6:n - 6] = True                                # well inside the scanned field
    c = corr(delta[scanned], (occ * d0)[scanned])
    assert c >= 0.95, c
    inside = scanned & (occ > 0.5)
    assert 0.8 < delta[inside].mean() / d0 < 1.2  # right sign and scale (FFT normalisation)
