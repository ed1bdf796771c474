"""Near-field ptychography at the size of the real check: seconds per epoch, time to convergence.

Data: the simulated twin of the synchrotron Siemens-star scan (``engine/twin.py``: 200 frames of
100x100 int32 counts up to ~29,000, 12.66 keV, 55 um pixels at 1.12 m, focus 3.65 mm before the
sample, 5 dead pixels, a structured probe never given to the solver, scan positions written with
``--position-error`` px rms errors), as a CXI file. Configuration: ``slicewise reconstruct
--example nearfield-ptycho`` with only ``data.path`` and ``data.source_to_sample_m`` set (plus
``--set key=value`` overrides). The run goes through ``Reconstruction.run()``; after every epoch a
callback computes the phase correlation with the true star over the scanned area and the RMS
position error. Reported per threshold: the first epoch that reaches it, the solver time to get
there (the per-epoch times ``Reconstruction`` records) and the wall time since ``run()`` started.

    python benchmarks/bench_nearfield_ptycho.py [--backend numpy] [--frames 200] [--frame 100]
        [--epochs 60] [--thresholds 0.9 0.95] [--position-error 0.5] [--set optimizer.kind=adam]
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import ThresholdClock, bench_parser, start  # noqa: E402

from slicewise.engine import to_host  # noqa: E402
from slicewise.engine.recon.config import preset, set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402
from slicewise.engine.twin import (ConeBeamGeometry, phase_correlation,  # noqa: E402
                                   position_error_px, simulate_twin)


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--frame", type=int, default=100, help="frame size (px)")
    ap.add_argument("--epochs", type=int, default=60, help="at most this many epochs")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.95])
    ap.add_argument("--position-error", type=float, default=0.5, help="px rms in the file")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="configuration override (repeatable)")
    args = ap.parse_args()
    be, _ = start(args)
    work = Path(tempfile.mkdtemp(prefix="slicewise-nf-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    t0 = time.perf_counter()
    path = work / "twin.cxi"
    truth = simulate_twin(path, n_frames=args.frames, frame=args.frame,
                          scan_m=20e-6 * args.frame / 100, position_error_px=args.position_error)
    print(f"# twin: {args.frames} frames of {args.frame}^2 int32, position errors "
          f"{args.position_error} px rms ({time.perf_counter() - t0:.1f} s to simulate)")
    cfg = preset("nearfield-ptycho")
    cfg.data.path = str(path)
    cfg.data.source_to_sample_m = ConeBeamGeometry().source_to_sample_m
    for kv in [f"run.epochs={args.epochs}", "run.checkpoint_every=0", "run.save_tiff=false",
               f"run.backend={be.name}", f"run.output_dir={work / 'out'}"] + args.set:
        key, value = kv.split("=", 1)
        set_value(cfg, key, value)
    rec = Reconstruction(cfg, backend=be)
    prob = rec.problem
    clock = ThresholdClock(rec, args.thresholds)
    rows = []

    def on_event(ev):
        if not clock.is_epoch(ev):
            return
        obj = to_host(prob.params["object"])[0]
        corr = phase_correlation(obj, truth["transmission"], prob.initial_positions,
                                 truth["positions"], args.frame)
        perr = position_error_px(to_host(prob.params["positions"]), prob.initial_positions,
                                 truth["positions"])
        rows.append((ev.epoch, *clock.record(ev.epoch, corr), ev.loss, corr, perr))

    rec.add_callback(on_event)
    rec.run()
    opt = rec.config.optimizer
    print(f"# object {prob.object_shape}, optimizer {opt.kind}, batch_spots "
          f"{rec.config.run.batch_spots}, lr_object {opt.lr_object}, lr_probe {opt.lr_probe}")
    print(f"{'epoch':>5} {'epoch (s)':>9} {'solver (s)':>10} {'wall (s)':>8} {'loss':>12} "
          f"{'corr':>7} {'pos err':>7}")
    for e, te, ts, tw, loss, c, pe in rows:
        print(f"{e:>5} {te:>9.3f} {ts:>10.2f} {tw:>8.2f} {loss:>12.6e} {c:>7.4f} {pe:>7.3f}")
    clock.print_reached(len(rows))
    if rows:
        print(f"# final correlation {rows[-1][5]:.4f}, position error {rows[-1][6]:.3f} px; "
              f"median epoch {np.median([r[1] for r in rows]):.3f} s")


if __name__ == "__main__":
    main()
