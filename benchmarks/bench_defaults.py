"""Time to reach correlation 0.9 with the defaults vs the best hand-tuned configuration.

Per modality (the scale sweep's data sets, tests/helpers/scale_sweep.py, Adorym layout): the
example configuration with only data path and epochs changed ("defaults": optimiser, minibatches,
starting guess and learning rates all chosen automatically) against hand-tuned configurations that
know the answer's scale (learning rates as fractions of the true delta's maximum, Adam and L-BFGS,
the batch sizes the issue measured best and, for ptychography, the automatic one), all started from vacuum. Time = wall time from building
the ``Reconstruction`` (so the defaults pay for their starting guess and rate measurements) to the
first epoch whose delta correlates >= 0.9 with the truth, minus the time spent computing that
correlation. The defaults and the best hand configuration run twice and keep their faster time (a
shared machine's load moves single times by +-30 %). The defaults must be within 1.5x of the best
hand-tuned time.

    python benchmarks/bench_defaults.py [--scales mid] [--only holo4 ...] [--threshold 0.9]
        [--grow 2]   (grids, probes, features and angles twice the test sweep's)
        [--field 4]  (single-view ptychography objects 4x as wide again at the same probe:
                      2401 / 1444 scan positions for 2D / multislice instead of 81 / 36)
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))
from _timing import bench_parser, start  # noqa: E402
from scale_sweep import cases, correlation, example_for, write_case  # noqa: E402

from slicewise.engine import to_host  # noqa: E402
from slicewise.engine.recon.config import set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402

#: Epoch limits: a configuration that has not reached the threshold by then counts as "not reached".
MAX_EPOCHS = {"ptycho": 80, "holo": 200, "tomo": 30}


def hand_tuned(case, delta_max: float) -> dict[str, dict]:
    """Hand configurations (dotted path -> value) for ``case``, knowing the truth's scale."""
    base = {"init.guess": "vacuum"}
    out = {}
    tomo = case.sim.n_angles > 1
    for f in (0.01, 0.03, 0.1):
        cfg = {**base, "optimizer.kind": "adam", "optimizer.lr_delta": f * delta_max,
               "optimizer.lr_beta": f * delta_max / 10}
        if tomo:
            cfg["run.batch_angles"] = 1
        elif case.sim.modality == "ptycho":
            # the automatic minibatch (about 16 per epoch) too: at thousands of positions
            # minibatches of 16 spend more on per-step overhead than they gain in updates
            out[f"adam lr={f:g}*max, auto batch"] = dict(cfg)
            cfg["run.batch_spots"] = 16
        out[f"adam lr={f:g}*max"] = cfg
    if not tomo:
        out["lbfgs lr=max"] = {**base, "optimizer.kind": "lbfgs", "optimizer.lr_delta": delta_max,
                               "optimizer.lr_beta": delta_max / 10, "run.batch_spots": 0}
    return out


def time_to(case, data: Path, truth, changes: dict, threshold: float, work: Path, be) -> tuple:
    """(seconds to reach ``threshold`` or None, epochs, final correlation)."""
    cfg = example_for(case, data, MAX_EPOCHS[case.example])
    for k, v in changes.items():
        set_value(cfg, k, v)
    for k, v in (("run.checkpoint_every", 0), ("run.save_tiff", False), ("run.backend", be.name)):
        set_value(cfg, k, v)
    spent = [0.0]
    hit: list = []
    t0 = time.perf_counter()
    rec = Reconstruction(cfg, backend=be, base_dir=work)

    def on_epoch(ev):
        if ev.kind != "epoch":
            return
        tc = time.perf_counter()
        c = correlation(to_host(rec.problem.params["delta"]), truth)
        spent[0] += time.perf_counter() - tc
        if c >= threshold and not hit:
            hit.append((time.perf_counter() - t0 - spent[0], ev.epoch))
            rec.stop()
        hit_final[0] = c

    hit_final = [float("nan")]
    rec.add_callback(on_epoch)
    rec.run()
    shutil.rmtree(work, ignore_errors=True)
    return (hit[0][0], hit[0][1], hit_final[0]) if hit else (None, rec.epoch, hit_final[0])


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--scales", nargs="+", default=["weak", "mid", "strong"])
    ap.add_argument("--only", nargs="+", default=None, help="case name prefixes, e.g. holo4 ptycho2d")
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--grow", type=int, default=2, help="grid size factor over the test sweep's")
    ap.add_argument("--field", type=int, default=4,
                    help="lateral size factor of the single-view ptychography objects (more scan "
                         "positions; real scans have hundreds to thousands)")
    args = ap.parse_args()
    be, _ = start(args)
    logging.getLogger("slicewise").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="slicewise-defaults-"))
    print(f"{'case':<18} {'defaults (s)':>12} {'ep':>4} {'best hand (s)':>13} {'ep':>4} "
          f"{'ratio':>6}  best hand configuration")
    ratios = []
    for case in cases(tuple(args.scales), grow=args.grow, field=args.field):
        if args.only and not any(case.name.startswith(p) for p in args.only):
            continue
        data, truth = write_case(case, work)
        truth = truth["delta"]
        d = time_to(case, data, truth, {}, args.threshold, work / "run", be)
        best = (None, 0, 0.0, "")
        for name, changes in hand_tuned(case, float(np.abs(truth).max())).items():
            t, ep, c = time_to(case, data, truth, changes, args.threshold, work / "run", be)
            if t is not None and (best[0] is None or t < best[0]):
                best = (t, ep, c, name)
        if d[0] is None or best[0] is None:
            print(f"{case.name:<18} {'-' if d[0] is None else f'{d[0]:.2f}':>12} {d[1]:>4} "
                  f"{'-' if best[0] is None else f'{best[0]:.2f}':>13} {best[1]:>4} {'':>6}  "
                  f"{best[3] or 'no hand configuration reached it'} (defaults final corr {d[2]:.3f})")
            continue
        # the machine is shared: the defaults and the best hand configuration run once more, and
        # each keeps its faster time (the other hand configurations only had to be ranked)
        again = time_to(case, data, truth, {}, args.threshold, work / "run", be)
        if again[0] is not None and again[0] < d[0]:
            d = again
        changes = hand_tuned(case, float(np.abs(truth).max()))[best[3]]
        again = time_to(case, data, truth, changes, args.threshold, work / "run", be)
        if again[0] is not None and again[0] < best[0]:
            best = (again[0], again[1], again[2], best[3])
        ratio = d[0] / best[0]
        ratios.append(ratio)
        print(f"{case.name:<18} {d[0]:>12.2f} {d[1]:>4} {best[0]:>13.2f} {best[1]:>4} {ratio:>6.2f}  "
              f"{best[3]}")
    shutil.rmtree(work, ignore_errors=True)
    if ratios:
        print(f"# defaults / best hand-tuned: median {np.median(ratios):.2f}, worst {max(ratios):.2f} "
              f"(target <= 1.5); {os.cpu_count()} CPUs, backend {be.name}")


if __name__ == "__main__":
    main()
