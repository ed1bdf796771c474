"""Time to reach a 3D correlation with the truth on the cone demo (holotomography).

Data and configuration are the demo's own (``slicewise.engine.demo``: ``DEMO_SIM`` -- 32^3 hollow
SiO2 cone, 45 angles, two distances, Poisson noise -- and ``demo_config``); without that module the
``cone-holotomo`` simulation preset is used with the same reconstruction settings. The run goes
through ``Reconstruction.run()``; after every epoch a callback computes the Pearson correlation of
the delta volume with the ground truth. Reported per threshold: the epoch that first reaches it,
the solver time to get there (sum of the per-epoch times ``Reconstruction`` records: minibatches,
optimiser, constraints; not the callback nor file writing) and the wall time since ``run()``
started (everything, including this benchmark's correlation callbacks). Checkpoints and TIFFs are
turned off; the run stops once the highest threshold is reached (or after ``--epochs``).

    python benchmarks/bench_cone_convergence.py [--backend numpy] [--thresholds 0.9 0.95]
        [--epochs 40] [--batch-angles N] [--data-dir DIR]
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
from _problems import correlation  # noqa: E402
from _timing import ThresholdClock, bench_parser, start  # noqa: E402

from slicewise.engine import to_host  # noqa: E402
from slicewise.engine.recon.config import set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402


def demo_data_and_config(data_dir: Path, out_dir: Path, backend: str):
    """(data path, ReconConfig, source description)."""
    try:
        from slicewise.engine import demo  # noqa: PLC0415
    except ImportError:
        demo = None
    if demo is not None and hasattr(demo, "demo_config"):
        path = demo.ensure_demo_data(data_dir, backend)
        return path, demo.demo_config(path, out_dir), "engine.demo (DEMO_SIM + demo_config)"
    from slicewise.engine.recon.config import ReconConfig, validate  # noqa: PLC0415
    from slicewise.engine.simulate import PRESETS, SimulationConfig, simulate  # noqa: PLC0415

    path = data_dir / "cone_holotomo.h5"
    if not path.exists():
        simulate(SimulationConfig(**PRESETS["cone-holotomo"], photons=1e5, seed=0), path, backend)
    cfg = ReconConfig()
    cfg.data.path = str(path)
    cfg.optimizer.lr_delta, cfg.optimizer.lr_beta = 1e-7, 1e-9
    cfg.run.batch_angles = 5
    cfg.run.output_dir = str(out_dir)
    return path, validate(cfg), "simulate.PRESETS['cone-holotomo'] (+1e5 photons)"


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.95])
    ap.add_argument("--epochs", type=int, default=40, help="at most this many epochs")
    ap.add_argument("--batch-angles", type=int, default=None, help="override run.batch_angles")
    ap.add_argument("--data-dir", default=None, help="keep/reuse the simulated data here")
    args = ap.parse_args()
    be, _ = start(args)
    work = Path(tempfile.mkdtemp(prefix="slicewise-cone-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    data_dir = Path(args.data_dir) if args.data_dir else work
    t0 = time.perf_counter()
    data, cfg, source = demo_data_and_config(data_dir, work / "out", be.name)
    print(f"# data: {source}, {data} ({time.perf_counter() - t0:.1f} s to simulate/load)")
    set_value(cfg, "run.epochs", args.epochs)
    set_value(cfg, "run.checkpoint_every", 0)
    set_value(cfg, "run.save_tiff", False)
    set_value(cfg, "run.backend", be.name)
    if args.batch_angles is not None:
        set_value(cfg, "run.batch_angles", args.batch_angles)

    rec = Reconstruction(cfg, backend=be)
    truth = np.asarray(rec.dataset.truth["delta"])
    clock = ThresholdClock(rec, args.thresholds)
    rows = []

    def on_event(ev):
        if not clock.is_epoch(ev):
            return
        corr = correlation(to_host(rec.problem.params["delta"]), truth)
        rows.append((ev.epoch, *clock.record(ev.epoch, corr), ev.loss, corr))
        if clock.all_reached:
            rec.stop()

    rec.add_callback(on_event)
    rec.run()
    print(f"# {rec.dataset.n_angles} angles, object {rec.problem.object_shape}, batch_angles "
          f"{cfg.run.batch_angles}, lr_delta {cfg.optimizer.lr_delta:g}, {len(rows)} epochs run")
    print(f"{'epoch':>5} {'epoch (s)':>9} {'solver (s)':>10} {'wall (s)':>8} {'loss':>11} {'corr':>7}")
    for e, te, ts, tw, loss, c in rows:
        print(f"{e:>5} {te:>9.3f} {ts:>10.3f} {tw:>8.2f} {loss:>11.4e} {c:>7.4f}")
    clock.print_reached(len(rows))
    if rows:
        print(f"# final correlation {rows[-1][-1]:.4f}; mean epoch {np.mean([r[1] for r in rows]):.3f} s")


if __name__ == "__main__":
    main()
