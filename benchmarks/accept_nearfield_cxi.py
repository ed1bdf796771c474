"""Acceptance check: a stranger's near-field ptychography CXI file through the CLI.

An independent simulator/writer (tests/helpers/stranger_cxi.py, no engine code) makes the twin of
a synchrotron Siemens-star scan (12.66 keV, 55 um pixels at 1.12 m, focus 3.65 mm before the
sample: M ~ 308), written in several CXI variants; each is reconstructed with the example
configuration where only data.path and data.source_to_sample_m are set
(``slicewise reconstruct --example nearfield-ptycho``) and the phase is scored against the truth.

    python benchmarks/accept_nearfield_cxi.py [--frames 200] [--frame 100] [--epochs N]
                                              [--variants a,b,...] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import stranger_cxi as sx  # noqa: E402

DEAD = [(7, 11), (40, 3), (50, 50), (63, 90), (92, 27)]

#: name -> writer options (basis given per *detector* pixel in metres where set)
VARIANTS = {
    "plain": dict(),
    "basis_vectors": dict(basis_vectors="explicit"),
    "mask_zero_one_uint16": dict(mask_style="zero_one", dtype="uint16"),
    "mask_bool_uint32_blosc": dict(mask_style="bool", dtype="uint32", compression="blosc"),
    "mask_good_one_gzip": dict(mask_style="good_one", compression="gzip"),
    "no_mask_flagged": dict(mask_style=None, dtype="uint32", bad_value=2 ** 32 - 1),
    "no_link_bitshuffle": dict(data_link=False, compression="bitshuffle"),
    "transposed_basis": dict(basis_vectors="swapped"),
    "flipped_sign": dict(sign=-1),
}


def phase_score(recon_obj: np.ndarray, truth: dict) -> tuple[float, tuple]:
    """Correlation of the reconstructed phase with the truth over the scanned interior, after the
    best integer shift and a fitted global offset + linear ramp; also returns the shift."""
    ph_t = np.angle(truth["object"])
    ph_r = np.angle(recon_obj)
    ph_r = np.angle(np.exp(1j * (ph_r - np.angle(np.mean(np.exp(1j * ph_r))))))
    # the shift from the gradient images (phase offsets do not matter there)
    def grad(a):
        return np.hypot(*np.gradient(a))
    gt, gr = grad(ph_t), grad(ph_r)
    n = (max(gt.shape[0], gr.shape[0]) * 2,) * 2
    cross = np.fft.ifft2(np.fft.fft2(gt - gt.mean(), n) * np.conj(np.fft.fft2(gr - gr.mean(), n))).real
    dy, dx = np.unravel_index(np.argmax(cross), n)
    dy, dx = (dy if dy < n[0] // 2 else dy - n[0]), (dx if dx < n[1] // 2 else dx - n[1])
    off, f = truth["offsets_px"] + truth["margin"], truth["frame"]
    lo = off.min(axis=0).astype(int) + f // 4
    hi = off.max(axis=0).astype(int) + f - f // 4
    ys, xs = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]]
    ry, rx = ys - dy, xs - dx
    ok = (ry >= 0) & (rx >= 0) & (ry < ph_r.shape[0]) & (rx < ph_r.shape[1])
    t = ph_t[ys[ok], xs[ok]]
    r = ph_r[ry[ok], rx[ok]]
    # unwrap the reconstruction relative to the truth, then remove offset + ramp
    r = t + np.angle(np.exp(1j * (r - t - np.angle(np.mean(np.exp(1j * (r - t)))))))
    a = np.column_stack([np.ones(t.size), ys[ok].ravel(), xs[ok].ravel()])
    coef = np.linalg.lstsq(a, r - t, rcond=None)[0]
    r = r - a @ coef
    return float(np.corrcoef(t, r)[0, 1]), (int(dy), int(dx))


def write_variant(path, name, opts, sim):
    opts = dict(opts)
    sign = opts.pop("sign", 1)
    bv = opts.pop("basis_vectors", None)
    p_det, m = sim["det_pixel_m"], sim["mag"]
    basis_det = None
    if bv == "explicit":
        basis_det = np.array([[0.0, -p_det, 0.0], [-p_det, 0.0, 0.0]])
    elif bv == "swapped":   # detector mounted turned: rows along -x, columns along -y
        basis_det = np.array([[-p_det, 0.0, 0.0], [0.0, -p_det, 0.0]])
    basis_eff = "default" if basis_det is None else basis_det / m
    t = sign * sx.translations_for(sim["offsets_px"], sim["pixel_eff_m"], basis_eff,
                                   z_m=0.0123, origin_m=(1.234e-3, -0.567e-3))
    sx.write_stranger_cxi(path, sim["counts"], energy_ev=sim["energy_ev"],
                          distance_m=sim["z2_m"], pixel_m=p_det, translations_m=t,
                          bad_pixels=[(r % sim["frame"], c % sim["frame"]) for r, c in DEAD],
                          basis_vectors=basis_det, **opts)


def run_variant(work: Path, name: str, sim: dict, epochs: int | None, extra=()) -> dict:
    from slicewise.engine.io.results import read_result  # noqa: PLC0415

    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    cxi = d / "scan.cxi"
    write_variant(cxi, name, VARIANTS[name], sim)
    toml = subprocess.run([sys.executable, "-m", "slicewise.cli", "reconstruct", "--example", "nearfield-ptycho"],
                          capture_output=True, text=True, check=True).stdout
    toml = toml.replace('path = "scan.cxi"', f'path = "{cxi}"')
    toml = toml.replace("# source_to_sample_m =", "source_to_sample_m = 3.65e-3 #", 1)
    assert "source_to_sample_m = 3.65e-3" in toml, "example TOML layout changed"
    (d / "run.toml").write_text(toml)
    cmd = [sys.executable, "-m", "slicewise.cli", "reconstruct", str(d / "run.toml"), "--out", str(d / "out"), "--overwrite"]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    t0 = time.time()
    p = subprocess.run(cmd + list(extra), capture_output=True, text=True)
    wall = time.time() - t0
    (d / "log.txt").write_text(p.stdout + p.stderr)
    if p.returncode:
        return {"name": name, "error": (p.stdout + p.stderr)[-800:], "wall": wall}
    res = read_result(next((d / "out").glob("result*.h5")))
    obj = _object(res)
    corr, shift = phase_score(obj, sim)
    warn = [ln for ln in (p.stdout + p.stderr).splitlines() if "WARNING" in ln or "orient" in ln]
    return {"name": name, "corr": corr, "shift": shift, "wall": wall, "warn": warn}


def _object(res: dict) -> np.ndarray:
    p = res["params"]
    if "object" in p:
        o = np.asarray(p["object"])
    elif "obj_re" in p:
        o = np.asarray(p["obj_re"]) + 1j * np.asarray(p["obj_im"])
    else:
        raise KeyError(f"no object in the result: {sorted(p)}")
    while o.ndim > 2:
        o = o[0]
    return o


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--frame", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=None, help="default: the example's")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="accept_nf_"))
    scale = args.frame / 100
    sim = sx.simulate_nearfield(n_frames=args.frames, frame=args.frame, scan_m=20e-6 * scale)
    print(f"# {args.frames} frames of {args.frame}^2, peak count {sim['counts'].max()}, M = "
          f"{sim['mag']:.1f}, effective pixel {sim['pixel_eff_m'] * 1e9:.1f} nm, work {work}")
    for name in args.variants.split(","):
        r = run_variant(work, name, sim, args.epochs)
        if "error" in r:
            print(f"{name:>26}  FAILED ({r['wall']:.0f} s): {r['error']}")
        else:
            print(f"{name:>26}  phase corr {r['corr']:.4f}  shift {r['shift']}  {r['wall']:.0f} s")
            for w in r["warn"][:4]:
                print(f"{'':>28}{w[:160]}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
