"""One epoch of 2D far-field ptychography: a bare hand-written NumPy/scipy.fft floor vs Slicewise.

THE FLOOR (no tape, no model objects): for each minibatch, gather the object patches with one flat
index ``take``, multiply by the probe, ``fft2``, amplitude update ``Psi * (1 - a/|Psi|)`` (the
gradient of the amplitude loss, same 2/n scale), ``ifft2``, multiply by ``conj(probe)``,
scatter-add the patches back (vectorised ``np.add.at`` on flat indices -- on NumPy >= 1.25 the
fastest vectorised scatter we measured: ~0.3 ms for 64 72^2 patches, vs ~3 ms for sorting the
indices + ``np.add.reduceat``), gradient step.

SLICEWISE: the same minibatches through ``Problem.loss`` + ``value_and_grad`` + Adam (object only,
known probe, integer positions -- what ``Reconstruction`` runs per step), and, as a second figure,
the per-epoch time that ``Reconstruction.run()`` itself records (its own shuffled minibatches of
the same size; includes the run loop, callbacks, constraints).

Defaults: 256^2 object, 26x26 raster (676 positions), 72^2 probe, minibatches of 64 and 676,
object as a complex transmission (the floor's unknown) and as delta/beta (Slicewise's default).
Target: ratio <= 1.5. Timings are best-of-N, floor and Slicewise interleaved in the same run.

    python benchmarks/bench_ptycho_epoch.py [--backend numpy|cupy] [--size 256] [--probe 72]
        [--grid 26] [--batch 64 676] [--param complex delta_beta] [--repeat 5] [--no-run]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _problems import (Solver, make_problem, ptycho_dataset,  # noqa: E402
                       recon_config, run_epoch_time, spot_batches)
from _profile import GROUPS, format_split, rescale, split  # noqa: E402
from _timing import bench_parser, start  # noqa: E402

from slicewise.engine import to_host  # noqa: E402


def make_floor(be, obj0, probe, amps, flat_all, lr: float):
    """The hand-written epoch. ``obj0`` complex (ny, nx); ``probe`` (py, px); ``amps`` measured
    amplitudes (n, py, px); ``flat_all`` int (n, py, px) flat object indices of every window."""
    xp = be.xp
    obj = obj0.copy()
    pconj = probe.conj()
    tiny = be.real_dtype(1e-30)

    if be.name == "numpy":
        def scatter(grad, idx, g):
            # .view(): scipy.fft returns a non-canonical complex64 descriptor, which sends
            # np.add.at down its ~30x slower generic path (NumPy 2.x checks descriptor identity)
            np.add.at(grad, idx.ravel(), g.reshape(-1).view(grad.dtype))
    else:  # pragma: no cover - GPU
        import cupyx  # noqa: PLC0415

        def scatter(grad, idx, g):
            cupyx.scatter_add(grad, idx.ravel(), g.ravel())

    def batch_grad(o, s):
        idx = flat_all[s]                                  # (S, py, px)
        psi = o.take(idx) * probe
        Psi = be.fft2(psi, overwrite_x=True)
        amp = xp.abs(Psi)
        r = amp - amps[s]
        n = r.size
        loss = float((r * r).sum()) / n
        Psi *= (2.0 / n) * r / xp.maximum(amp, tiny)      # = (2/n) Psi (1 - a/|Psi|)
        g = be.ifft2(Psi, overwrite_x=True)
        g *= pconj
        grad = xp.zeros(o.size, dtype=o.dtype)
        scatter(grad, idx, g)
        return loss, grad

    def epoch(batches):
        o = obj.reshape(-1)
        for s in batches:
            _, grad = batch_grad(o, s)
            o -= lr * grad

    return epoch, batch_grad


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--size", type=int, default=256, help="object is size x size")
    ap.add_argument("--probe", type=int, default=72, help="probe/detector is probe x probe")
    ap.add_argument("--grid", type=int, default=26, help="raster of grid x grid positions")
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 676], help="minibatch sizes (0 = all)")
    ap.add_argument("--param", nargs="+", default=["complex", "delta_beta"],
                    choices=("complex", "delta_beta"), help="Slicewise object parametrisation(s)")
    ap.add_argument("--repeat", type=int, default=5, help="best of this many epochs per side")
    ap.add_argument("--no-run", action="store_true", help="skip the Reconstruction.run() figure")
    args = ap.parse_args()

    be, sync = start(args)
    t0 = time.perf_counter()
    ds = ptycho_dataset(be, args.size, args.probe, args.grid)
    n_spots = ds.n_spots
    print(f"# {args.size}^2 object, {n_spots} positions ({args.grid}x{args.grid} raster), "
          f"{args.probe}^2 probe, 1 slice; data simulated in {time.perf_counter() - t0:.1f} s")
    print(f"{'param':>10} {'batch':>6} {'floor (s)':>10} {'slicewise (s)':>14} {'ratio':>6} "
          f"{'Reconstruction.run (s)':>23} {'ratio':>6}")
    summary, splits = [], []
    for param in args.param:
        for batch in args.batch:
            batch = batch if 0 < batch < n_spots else n_spots
            cfg = recon_config(be.name, param=param, batch_spots=batch)
            prob = make_problem(cfg, ds, be)
            solver = Solver(prob)
            # the floor works on the same data and probe as the problem (unpadded object grid)
            probe = prob.params["probe"][0]
            amps = prob.measured[0]
            pos = np.rint(ds.positions_px).astype(np.int64)
            py, px = probe.shape
            ny, nx = args.size, args.size
            flat = ((pos[:, 0, None] + np.arange(py))[:, :, None] * nx
                    + (pos[:, 1, None] + np.arange(px))[:, None, :])
            flat_all = be.asarray(flat)
            obj0 = be.xp.ones((ny, nx), dtype=be.complex_dtype)
            floor_epoch, floor_grad = make_floor(be, obj0, probe, amps, flat_all, lr=1e-3)

            # correctness: first-batch gradient of the floor == Slicewise's (complex object, vacuum)
            if param == "complex":
                from slicewise.engine import value_and_grad  # noqa: PLC0415

                s0 = spot_batches(n_spots, batch, 0)[0]
                meas = prob.measured_batch([0], s0)
                lv, gv = value_and_grad(lambda u: prob.loss({**prob.params, **u}, [0], s0, meas)[0])(
                    {"object": prob.params["object"]})
                lf, gf = floor_grad(obj0.reshape(-1).copy(), s0)
                gv = to_host(gv["object"][0]).ravel()
                gf = to_host(gf)
                err = np.abs(gv - gf).max() / max(np.abs(gf).max(), 1e-30)
                assert abs(lv - lf) <= 1e-3 * abs(lf) + 1e-12 and err < 1e-3, (lv, lf, err)

            def sw_epoch(batches):
                for s in batches:
                    solver.step([0], s)

            best_f = best_s = float("inf")
            for r in range(args.repeat + 1):  # first round is warm-up (caches, kernels)
                batches = spot_batches(n_spots, batch, r)
                t = time.perf_counter()
                floor_epoch(batches)
                sync()
                tf = time.perf_counter() - t
                t = time.perf_counter()
                sw_epoch(batches)
                sync()
                ts = time.perf_counter() - t
                if r:
                    best_f, best_s = min(best_f, tf), min(best_s, ts)

            groups = {k: GROUPS[k] for k in ("FFTs", "patches", "transmission", "loss", "optimizer")}
            groups["measured data"] = [("recon/problem.py", "measured_batch", "cum")]
            _, parts = split(lambda: sw_epoch(spot_batches(n_spots, batch, args.repeat + 1)), groups, 3)
            splits.append((param, batch, best_s, rescale(parts, best_s)))

            run_s = float("nan")
            if not args.no_run:
                run_s = run_epoch_time(cfg, ds, be, args.repeat)
            line = (f"{param:>10} {batch:>6} {best_f:>10.3f} {best_s:>14.3f} {best_s / best_f:>6.2f} "
                    f"{run_s:>23.3f} {run_s / best_f:>6.2f}")
            print(line, flush=True)
            summary.append((param, batch, best_f, best_s, run_s))
    print("# ratio = Slicewise / floor, same minibatches, best of", args.repeat, "epochs each; target <= 1.5")
    print("# split of the Slicewise epoch (groups timed under cProfile, rest = epoch - groups: elementwise "
          "products, padding, tape, Python):")
    for param, batch, t, parts in splits:
        print(f"#   {param} {batch}: {format_split(t, parts)}")


if __name__ == "__main__":
    main()
