"""Small scans (30-100 frames) with counting noise: the defaults against every frame fitted.

The scale sweep's far-field cases (tests/helpers/scale_sweep.py: 2D ptychography of 81 positions,
multislice of 36; weak / mid / strong phantoms, each at its own material, energy and voxel size)
simulated with Poisson noise at the given photons per pattern and stored as floats. Per case, in
one run:

* ``defaults``: the example configuration with only the data and ``run.epochs`` set, at E and 4E
  epochs (each its own run): frames held out, the weight chosen, every frame refitted;
* ``every frame``: the same with ``run.validation_share = 0`` -- what these scans got before they
  held any frame out (no validation loss, weight 0, every epoch run);

and the correlation of delta with the truth, the loss from E to 4E (0 = nothing lost by running
longer) and the chosen weight.

    python benchmarks/bench_small_scans.py [--photons 1e4 1e5 1e6] [--cases ptycho2d ptychoms]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))
from scale_sweep import cases, correlation, example_for, write_case  # noqa: E402

from slicewise.engine.recon.config import set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402


def run(case, path, truth, epochs: int, changes: dict) -> tuple[float, object, float]:
    """One run of the case's example configuration: (correlation, the run, seconds)."""
    out = Path(tempfile.mkdtemp(prefix="slicewise-small-scans-"))
    cfg = example_for(case, path, epochs)
    for k, v in {"run.checkpoint_every": 0, "run.save_tiff": False, "run.backend": "numpy",
                 "run.output_dir": str(out), **changes}.items():
        set_value(cfg, k, v)
    t0 = time.perf_counter()
    rec = Reconstruction(cfg, base_dir=out)
    rec.run()
    return correlation(rec.snapshot(None).delta, truth["delta"]), rec, time.perf_counter() - t0


def lost(at_e: float, at_4e: float) -> float:
    return max(0.0, (at_e - at_4e) / at_e) if at_e > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photons", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    ap.add_argument("--cases", nargs="+", default=["ptycho2d", "ptychoms"],
                    help="modalities of the scale sweep (every scale of each)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    print("| case | photons | frames | defaults E / 4E | lost | weight (final epochs) | "
          "every frame E / 4E | lost | seconds at E (defaults / every frame) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in cases():
        if case.name.split("-")[0] not in args.cases:
            continue
        for photons in args.photons:
            noisy = dataclasses.replace(case, sim=dataclasses.replace(case.sim, photons=photons))
            folder = Path(tempfile.mkdtemp(prefix="slicewise-small-scans-data-"))
            path, truth = write_case(noisy, folder)
            e = case.epochs
            d1, rec, t1 = run(noisy, path, truth, e, {})
            d4 = run(noisy, path, truth, 4 * e, {})[0]
            a1, _, u1 = run(noisy, path, truth, e, {"run.validation_share": 0.0})
            a4 = run(noisy, path, truth, 4 * e, {"run.validation_share": 0.0})[0]
            frames = rec.dataset.n_angles * rec.dataset.n_spots
            w = rec.plan.chosen().get("regularization.tv_weight")
            print(f"| {case.name} | {photons:g} | {frames} | {d1:.3f} / {d4:.3f} | "
                  f"{100 * lost(d1, d4):.1f} % | {w} ({rec.epoch}) | {a1:.3f} / {a4:.3f} | "
                  f"{100 * lost(a1, a4):.1f} % | {t1:.1f} / {u1:.1f} |", flush=True)


if __name__ == "__main__":
    main()
