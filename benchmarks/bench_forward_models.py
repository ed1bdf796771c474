"""Forward and forward+backward of the two multislice models vs the bare FFTs they need.

* Far-field multislice ptychography: ``nz`` slices, ``S`` positions, probe ``p x p``. Forward =
  (nz - 1) slice-to-slice propagations x 2 FFTs + 1 far-field FFT; the backward pass needs the same
  again: ``2 (2 (nz - 1) + 1)`` batched FFTs of shape ``(S, p, p)``.
* Near-field holotomography: ``n^3`` object, ``A`` angles (all in one batch), ``n`` slices, one
  detector distance. Forward = (n - 1) x 2 + 2 (propagation to the detector); backward the same:
  ``2 (2 (n - 1) + 2)`` batched FFTs of shape ``(A, n, n)``.

The FFT floor times exactly that many ``scipy.fft``/``cupy.fft`` calls (unitary, all cores, in place
on one buffer) on an array of the same shape and dtype; the model is timed through ``Problem.loss`` +
``value_and_grad`` (delta/beta unknowns, amplitude loss), forward alone under ``no_grad``.
Ratios are model / FFT floor, measured interleaved in the same run (best of ``--repeat``).

    python benchmarks/bench_forward_models.py [--backend numpy|cupy] [--size 256] [--slices 32]
        [--probe 64] [--positions 500] [--holo-size 64] [--angles 36] [--repeat 3]
        [--skip ptycho|holo]
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _problems import (holo_dataset, make_problem, ptycho_dataset,  # noqa: E402
                       recon_config)
from _timing import bench_parser, start  # noqa: E402

from slicewise.engine import no_grad, value_and_grad  # noqa: E402


def fft_floor(be, shape, n_ffts: int):
    """A callable doing ``n_ffts`` unitary FFTs (alternating fft2/ifft2) of ``shape``."""
    rng = np.random.default_rng(0)
    x = be.to_complex(rng.standard_normal(shape) + 1j * rng.standard_normal(shape))

    def run():  # in place on one buffer: pure transform time, no allocation or page faults
        y = x.copy()
        for i in range(n_ffts):
            y = be.fft2(y, overwrite_x=True) if i % 2 == 0 else be.ifft2(y, overwrite_x=True)
        return y

    return run


def model_calls(prob, a_idx, s_idx):
    measured = prob.measured_batch(a_idx, s_idx)
    names = [n for n in ("delta", "beta", "object") if n in prob.params]

    def objective(unknowns):
        return prob.loss({**prob.params, **unknowns}, a_idx, s_idx, measured)[0]

    vg = value_and_grad(objective)

    def fwd_bwd():
        return vg({n: prob.params[n] for n in names})

    def fwd():
        with no_grad():
            return objective({n: prob.params[n] for n in names})

    return fwd, fwd_bwd


def best_interleaved(fns, repeat: int, sync) -> list[float]:
    """Best time of each callable, calling them in turn ``repeat`` times (after one warm-up)."""
    best = [math.inf] * len(fns)
    for r in range(repeat + 1):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            sync()
            dt = time.perf_counter() - t
            if r:
                best[i] = min(best[i], dt)
    return best


def report(name, shape, n_fwd, t_floor_fwd, t_fwd, t_floor, t_fb):
    print(f"{name:<34} {str(shape):>16} {'fwd':>4} {n_fwd:>5} {t_floor_fwd:>9.3f} {t_fwd:>9.3f} "
          f"{t_fwd / t_floor_fwd:>6.2f}")
    print(f"{'':<34} {'':>16} {'f+b':>4} {2 * n_fwd:>5} {t_floor:>9.3f} {t_fb:>9.3f} "
          f"{t_fb / t_floor:>6.2f}", flush=True)


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--size", type=int, default=256, help="ptycho object size (size x size)")
    ap.add_argument("--slices", type=int, default=32, help="ptycho slices")
    ap.add_argument("--probe", type=int, default=64, help="ptycho probe size")
    ap.add_argument("--positions", type=int, default=500, help="ptycho positions (one batch)")
    ap.add_argument("--holo-size", type=int, default=64, help="holotomo object n^3 (n slices)")
    ap.add_argument("--angles", type=int, default=36, help="holotomo angles (one batch)")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--skip", choices=("ptycho", "holo"), action="append", default=[])
    args = ap.parse_args()
    be, sync = start(args)
    print(f"{'model':<34} {'FFT shape':>16} {'pass':>4} {'FFTs':>5} {'FFTs (s)':>9} {'model (s)':>9} "
          f"{'ratio':>6}")

    if "ptycho" not in args.skip:
        nz, p, n = args.slices, args.probe, args.size
        grid = int(math.ceil(math.sqrt(args.positions)))
        ds = ptycho_dataset(be, n, p, grid, nz, n_positions=args.positions)
        prob = make_problem(recon_config(be.name, n_slices=nz), ds, be)
        s_idx = np.arange(ds.n_spots)
        fwd, fwd_bwd = model_calls(prob, [0], s_idx)
        n_fwd = 2 * (nz - 1) + 1
        shape = (ds.n_spots, p, p)
        f_fwd, f_fb = fft_floor(be, shape, n_fwd), fft_floor(be, shape, 2 * n_fwd)
        t = best_interleaved([f_fwd, fwd, f_fb, fwd_bwd], args.repeat, sync)
        report(f"ptycho {n}^2 x {nz} sl, {ds.n_spots} pos", shape, n_fwd, *t)
        del prob, ds, fwd, fwd_bwd

    if "holo" not in args.skip:
        n, a = args.holo_size, args.angles
        ds = holo_dataset(be, n, a)
        prob = make_problem(recon_config(be.name, batch_angles=0), ds, be)
        a_idx = np.arange(a)
        fwd, fwd_bwd = model_calls(prob, a_idx, np.arange(ds.n_spots))
        n_fwd = 2 * (n - 1) + 2
        shape = (a, n, n)
        f_fwd, f_fb = fft_floor(be, shape, n_fwd), fft_floor(be, shape, 2 * n_fwd)
        t = best_interleaved([f_fwd, fwd, f_fb, fwd_bwd], args.repeat, sync)
        report(f"holotomo {n}^3, {a} angles", shape, n_fwd, *t)
    print("# ratio = model / the bare FFTs it needs (same shape, dtype, backend); the rest is "
          "rotation, gathers, elementwise work and the tape")


if __name__ == "__main__":
    main()
