"""How the epoch time and the memory grow: vs the number of slices, and vs the object size.

Three tables, each row one configuration through the solver step (``Problem.loss`` +
``value_and_grad`` + Adam on delta/beta, as ``Reconstruction`` runs it):

1. multislice far-field ptychography vs slices (object, probe, scan fixed), without and with
   ``model.checkpoint_slices`` (recompute the multislice in blocks to save memory);
2. ptychography vs object size (probe and scan step fixed, so positions grow with the area);
3. holotomography vs object size ``n^3`` (``n`` slices, angles fixed).

Time: best of ``--repeat`` epochs. Memory: peak of one optimiser step measured with
``tracemalloc`` (every NumPy data buffer and Python object the step allocates, above what was
allocated before it; not pocketfft's internal scratch nor the interpreter), in a separate untimed run
because tracing slows allocation down. ``ru_maxrss`` is printed at the end for reference only (it is
a process-wide high-water mark, so per-row deltas would be meaningless).

    python benchmarks/bench_scaling.py [--backend numpy] [--slices 1 2 4 8 16 32]
        [--ptycho-sizes 128 256 512] [--holo-sizes 32 48 64 96] [--repeat 2] [--skip TABLE]
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _problems import (Solver, angle_batches, holo_dataset,  # noqa: E402
                       make_problem, ptycho_dataset, recon_config, spot_batches)
from _timing import bench_parser, start  # noqa: E402


MB = 2 ** 20


def ptycho_epoch(prob, batch: int):
    solver = Solver(prob)
    n = prob.dataset.n_spots

    def epoch(r):
        for s in spot_batches(n, batch, r):
            solver.step([0], s)

    return epoch, lambda: solver.step([0], spot_batches(n, batch, 0)[0])


def holo_epoch(prob, batch_angles: int):
    solver = Solver(prob)
    n_angles, spots = prob.dataset.n_angles, np.arange(prob.dataset.n_spots)

    def epoch(r):
        for a in angle_batches(n_angles, batch_angles, r):
            solver.step(a, spots)

    return epoch, lambda: solver.step(angle_batches(n_angles, batch_angles, 0)[0], spots)


def measure(epoch, step, repeat: int, sync, trace: bool) -> tuple[float, float]:
    """(best epoch seconds, peak traced MB of one step)."""
    epoch(0)  # warm-up: kernels, matrices, index arrays
    sync()
    best = float("inf")
    for r in range(1, repeat + 1):
        t = time.perf_counter()
        epoch(r)
        sync()
        best = min(best, time.perf_counter() - t)
    peak = float("nan")
    if trace:
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        step()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak = (top - base) / MB
    return best, peak


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--slices", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    ap.add_argument("--slices-size", type=int, default=128, help="object size of the slices table")
    ap.add_argument("--checkpoint", type=int, default=4, help="checkpoint_slices of the second column")
    ap.add_argument("--ptycho-sizes", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--ptycho-slices", type=int, default=4, help="slices of the object-size table")
    ap.add_argument("--probe", type=int, default=32)
    ap.add_argument("--step", type=float, default=8.0, help="scan step (pixels)")
    ap.add_argument("--batch", type=int, default=64, help="positions per step (ptychography)")
    ap.add_argument("--holo-sizes", type=int, nargs="+", default=[32, 48, 64, 96])
    ap.add_argument("--angles", type=int, default=36)
    ap.add_argument("--batch-angles", type=int, default=1, help="angles per step (holography)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip", action="append", default=[], choices=("slices", "ptycho", "holo"))
    args = ap.parse_args()
    be, sync = start(args)
    trace = not be.is_gpu  # tracemalloc sees host memory only
    print(f"# time = best of {args.repeat} epochs; memory = tracemalloc peak of one optimiser step (MB)")

    if "slices" not in args.skip:
        n, p = args.slices_size, args.probe
        grid = int((n - p) // args.step) + 1
        print(f"\n## multislice ptychography vs slices: {n}^2 object, {p}^2 probe, {grid * grid} "
              f"positions, batch {args.batch}")
        print(f"{'slices':>6} {'epoch (s)':>10} {'s/slice':>8} {'peak MB':>8} | "
              f"{'ckpt ' + str(args.checkpoint):>7} {'epoch (s)':>10} {'peak MB':>8}")
        for nz in args.slices:
            ds = ptycho_dataset(be, n, p, grid, nz)
            row = []
            for ck in (0, args.checkpoint):
                if ck and ck >= nz:
                    row.append((float("nan"), float("nan")))
                    continue
                prob = make_problem(recon_config(be.name, n_slices=nz, batch_spots=args.batch,
                                                 checkpoint_slices=ck), ds, be)
                row.append(measure(*ptycho_epoch(prob, args.batch), args.repeat, sync, trace))
                del prob
            (t0, m0), (t1, m1) = row
            print(f"{nz:>6} {t0:>10.3f} {t0 / nz:>8.4f} {m0:>8.1f} | {'':>7} {t1:>10.3f} {m1:>8.1f}",
                  flush=True)
            del ds

    if "ptycho" not in args.skip:
        nz, p = args.ptycho_slices, args.probe
        print(f"\n## ptychography vs object size: {nz} slices, {p}^2 probe, scan step {args.step:g} px, "
              f"batch {args.batch}")
        print(f"{'size':>6} {'positions':>9} {'epoch (s)':>10} {'ms/position':>11} {'peak MB':>8}")
        for n in args.ptycho_sizes:
            grid = int((n - p) // args.step) + 1
            ds = ptycho_dataset(be, n, p, grid, nz)
            prob = make_problem(recon_config(be.name, n_slices=nz, batch_spots=args.batch), ds, be)
            t, m = measure(*ptycho_epoch(prob, args.batch), args.repeat, sync, trace)
            print(f"{n:>6} {ds.n_spots:>9} {t:>10.3f} {1e3 * t / ds.n_spots:>11.3f} {m:>8.1f}", flush=True)
            del prob, ds

    if "holo" not in args.skip:
        print(f"\n## holotomography vs object size: n^3 voxels, n slices, {args.angles} angles, "
              f"{args.batch_angles} angle(s) per step")
        print(f"{'n':>6} {'voxels':>9} {'epoch (s)':>10} {'ns/voxel/angle':>14} {'peak MB':>8}")
        for n in args.holo_sizes:
            ds = holo_dataset(be, n, args.angles)
            prob = make_problem(recon_config(be.name, batch_angles=args.batch_angles), ds, be)
            t, m = measure(*holo_epoch(prob, args.batch_angles), args.repeat, sync, trace)
            print(f"{n:>6} {n ** 3:>9} {t:>10.3f} {1e9 * t / n ** 3 / args.angles:>14.2f} {m:>8.1f}",
                  flush=True)
            del prob, ds

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n# process ru_maxrss at the end: {rss:.0f} MB (high-water mark of the whole run)")


if __name__ == "__main__":
    main()
