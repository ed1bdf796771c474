"""Does ``refine.positions`` unset (decided by the run) cost anything on scans WITHOUT position
errors? The scale sweep's far-field ptychography cases (tests/helpers/scale_sweep.py: 2D and
multislice, weak / mid / strong objects), each with the example configuration (data path and
epochs only), once with ``refine.positions`` unset and once with it off: what the run decided,
correlation of delta with the truth, wall time. Plus the same check on the position-correction
benchmark's particle scan without stage errors (1352 positions, bench_position_correction.py),
and that scan with 0.5 and 2 px (std) errors, where it should turn on.

    python benchmarks/bench_auto_positions.py [--scales weak mid strong] [--field 1]
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))
from _timing import bench_parser  # noqa: E402
from scale_sweep import cases, correlation, example_for, write_case  # noqa: E402
import bench_position_correction as pc  # noqa: E402

from slicewise.engine.recon.config import ReconConfig, set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402


def timed(cfg, ds=None):
    t0 = time.perf_counter()
    rec = Reconstruction(cfg, ds)
    rec.run()
    return rec, time.perf_counter() - t0


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--scales", nargs="+", default=["weak", "mid", "strong"])
    ap.add_argument("--field", type=int, default=1)
    args = ap.parse_args()
    backend = "numpy" if args.backend == "auto" else args.backend
    logging.basicConfig(level=logging.ERROR)
    print("| case | epochs | decided | corr unset | corr off | time unset s | time off s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases(tuple(args.scales), field=args.field):
            if case.sim.modality != "ptycho" or case.sim.n_angles > 1:
                continue
            path, truth = write_case(case, Path(tmp))
            res = {}
            for setting in (None, False):
                cfg = example_for(case, path)
                set_value(cfg, "run.backend", backend)
                set_value(cfg, "run.output_dir", str(Path(tmp) / f"{case.name}-{setting}"))
                set_value(cfg, "refine.positions", setting)
                rec, t = timed(cfg)
                res[setting] = (rec.config.refine.positions, correlation(rec.snapshot(None).delta,
                                                                          truth["delta"]), t)
            print(f"| {case.name} | {case.epochs} | {res[None][0]} | {res[None][1]:.4f} | "
                  f"{res[False][1]:.4f} | {res[None][2]:.1f} | {res[False][2]:.1f} |", flush=True)
        for std in (0.0, 0.5, 2.0):
            ds, true, truth = pc.scan(std, 0.0)
            res = {}
            for setting in (None, False):
                cfg = ReconConfig()
                cfg.run.backend, cfg.run.epochs = backend, 60
                cfg.run.output_dir = str(Path(tmp) / f"particles{std}-{setting}")
                cfg.run.save_tiff, cfg.run.checkpoint_every = False, 0
                cfg.refine.positions = setting
                rec, t = timed(cfg, ds)
                res[setting] = (rec.config.refine.positions,
                                pc.corr(rec.snapshot(None).delta[0], truth, true), t)
            print(f"| particles, {std:g} px stage errors | 60 | {res[None][0]} | "
                  f"{res[None][1]:.4f} | {res[False][1]:.4f} | {res[None][2]:.1f} | "
                  f"{res[False][2]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
