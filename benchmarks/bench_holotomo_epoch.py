"""One epoch of 3D full-field holotomography through Slicewise, with the time split by operation.

Hollow glass cone, ``n^3`` voxels (``n`` slices), ``A`` angles over 180 degrees, one detector
distance: per view, rotation of the (delta, beta) volume, ``n``-slice multislice with Fresnel
propagation between slices, near-field propagation to the detector, amplitude loss, Adam on
delta/beta. An epoch visits every angle once; ``--batch-angles`` sets the angles per optimiser step
(1 is the configuration default).

Printed per batch size: the best epoch time through the solver step (``Problem.loss`` +
``value_and_grad`` + Adam, as ``Reconstruction`` runs it), the per-epoch time that
``Reconstruction.run()`` records, and a cProfile split of one epoch into FFTs, rotation,
transmission (exp/sin/cos), loss, optimiser and the rest (elementwise products, tape, Python), so
that the next bottleneck is visible. Target: < 1 s per epoch at 64^3 x 36 angles (Adorym: ~6.4 s).

    python benchmarks/bench_holotomo_epoch.py [--backend numpy|cupy] [--size 64] [--angles 36]
        [--batch-angles 1 6 36] [--repeat 3] [--no-run]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _problems import (Solver, angle_batches, holo_dataset,  # noqa: E402
                       make_problem, recon_config, run_epoch_time)
from _profile import GROUPS, format_split, rescale, split  # noqa: E402
from _timing import bench_parser, start  # noqa: E402


HOLO_GROUPS = {k: v for k, v in GROUPS.items() if k != "patches"}


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--size", type=int, default=64, help="object is size^3 voxels (size slices)")
    ap.add_argument("--angles", type=int, default=36)
    ap.add_argument("--batch-angles", type=int, nargs="+", default=[1, 6, 36],
                    help="angles per optimiser step (0 = all)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many epochs")
    ap.add_argument("--no-run", action="store_true", help="skip the Reconstruction.run() figure")
    args = ap.parse_args()
    be, sync = start(args)
    t0 = time.perf_counter()
    ds = holo_dataset(be, args.size, args.angles)
    print(f"# cone {args.size}^3, {args.angles} angles, 1 distance; data simulated in "
          f"{time.perf_counter() - t0:.1f} s")
    print(f"{'batch':>6} {'steps':>6} {'epoch (s)':>10} {'Reconstruction.run (s)':>23}")
    splits = []
    for ba in args.batch_angles:
        ba = ba if 0 < ba < args.angles else args.angles
        cfg = recon_config(be.name, batch_angles=ba)
        prob = make_problem(cfg, ds, be)
        solver = Solver(prob)
        spots = np.arange(ds.n_spots)

        def epoch(r):
            for a in angle_batches(args.angles, ba, r):
                solver.step(a, spots)
            sync()

        best = float("inf")
        for r in range(args.repeat + 1):  # the first epoch warms caches (kernels, rotation matrices)
            t = time.perf_counter()
            epoch(r)
            if r:
                best = min(best, time.perf_counter() - t)
        _, parts = split(lambda: epoch(args.repeat + 1), HOLO_GROUPS, 3)
        splits.append((ba, best, rescale(parts, best)))
        run_s = float("nan") if args.no_run else run_epoch_time(cfg, ds, be, args.repeat)
        n_steps = -(-args.angles // ba)
        print(f"{ba:>6} {n_steps:>6} {best:>10.3f} {run_s:>23.3f}", flush=True)
    print("# split of the best epoch (groups timed under cProfile; FFTs = pocketfft itself, rotation = "
          "sparse products + transposes, transmission = exp/cos/sin + its VJP; rest = epoch - groups: "
          "elementwise products, scipy.fft's Python layer, tape, Python):")
    for ba, total, parts in splits:
        print(f"#   batch {ba:>3}: {format_split(total, parts)}")
    print("# target: < 1 s per epoch; Adorym (PyTorch CPU) ~6.4 s")


if __name__ == "__main__":
    main()
