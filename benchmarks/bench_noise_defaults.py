"""The noise-aware defaults against hand-set weights (issue 20's benchmark).

Per case of the noise sweep (tests/helpers/noise_sweep.py: a weak-contrast cell, Poisson noise,
frames stored as counts / scale or as integer counts), in one run:

* the defaults: the example configuration of the case's modality with only the data and
  ``run.epochs`` set -- E epochs, then 4E epochs (each its own run, as a user would run them);
  the result file's estimate (the best-validation state where the run keeps it) against the
  truth, with what the run chose (weight, epochs run, held-out share);
* a grid of hand-set relative TV weights: ``regularization.tv_weight = w`` and
  ``run.validation_share = 0`` (every measurement fitted, every epoch run, the last estimate
  kept, as before the defaults knew the noise), E epochs;
* the issue's two figures: the defaults' correlation at E as a fraction of the grid's best at E,
  and the loss of the defaults' correlation from E to 4E epochs (0 = nothing lost by running
  longer).

    python benchmarks/bench_noise_defaults.py [--cases holotomo:1e5 ptychotomo:1e5 ...]
        [--size bench|tiny] [--weights 0 0.01 0.03 0.1 0.3 1]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))
from noise_sweep import NoiseCase, correlation_with_truth, make_data  # noqa: E402

from slicewise.engine.recon.config import example_config, from_toml, set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402

#: The case's epochs E per modality (the defaults also run 4E).
EPOCHS = {"holotomo": 10, "ptychotomo": 10, "ptycho2d": 20, "ptychoms": 20, "holo1": 50,
          "holo4": 50, "nfptycho": 30}
#: The issue's two noisy cases first, then one per other modality.
DEFAULT_CASES = ("holotomo:1e5", "ptychotomo:1e5", "ptycho2d:1e4", "ptycho2d:1e5", "holo4:1e5",
                 "holo1:1e5", "ptychoms:1e5", "nfptycho:1e5")
WEIGHTS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)


def parse_case(text: str, size: str) -> NoiseCase:
    """``modality:photons[:contrast[:storage]]``."""
    parts = text.split(":")
    return NoiseCase(parts[0], float(parts[1]), *(parts[2:4]), size=size)


def run(data, epochs: int, changes: dict) -> tuple[float, Reconstruction, float]:
    """One run of the case's example configuration; (correlation, the run, seconds)."""
    cfg = from_toml(example_config(data.case.example))
    out = tempfile.mkdtemp(prefix="slicewise-noise-defaults-")
    for k, v in {"run.epochs": epochs, "run.checkpoint_every": 0, "run.save_tiff": False,
                 "run.backend": "numpy", "run.output_dir": out, **changes}.items():
        set_value(cfg, k, v)
    t0 = time.perf_counter()
    rec = Reconstruction(cfg, data.dataset(), base_dir=out)
    rec.run()
    seconds = time.perf_counter() - t0
    c = correlation_with_truth(data, rec.problem.params, rec.problem.initial_positions)
    return c, rec, seconds


def study(case: NoiseCase, weights, epochs: int | None = None) -> dict:
    e = epochs or EPOCHS[case.modality]
    data = make_data(case)
    grid = {w: run(data, e, {"regularization.tv_weight": w, "run.validation_share": 0.0})[0]
            for w in weights}
    c1, rec1, t1 = run(data, e, {})
    c4, rec4, t4 = run(data, 4 * e, {})
    best_w = max(grid, key=grid.get)
    chosen = rec1.plan.chosen()
    return {"case": case.name, "E": e, "defaults_E": c1, "defaults_4E": c4, "grid": grid,
            "best_weight": best_w, "ratio": c1 / grid[best_w] if grid[best_w] > 0 else float("nan"),
            "loss_4E": max(0.0, (c1 - c4) / c1) if c1 > 0 else float("nan"),
            "weight": chosen.get("regularization.tv_weight"), "epochs_run": rec1.epoch,
            "best_epoch": rec1.best.epoch, "seconds_E": t1, "seconds_4E": t4}


def report(r: dict) -> str:
    grid = ", ".join(f"{w:g}: {c:.3f}" for w, c in r["grid"].items())
    return (f"| {r['case']} | {r['E']} | {r['defaults_E']:.3f} / {r['defaults_4E']:.3f} | "
            f"{r['grid'][r['best_weight']]:.3f} ({r['best_weight']:g}) | **{r['ratio']:.2f}** | "
            f"**{100 * r['loss_4E']:.1f} %** | {r['weight']} (epoch {r['best_epoch']} of "
            f"{r['epochs_run']}) | {r['seconds_E']:.0f} s |\n    grid: {grid}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                    help="modality:photons[:contrast[:storage]] (default: %(default)s)")
    ap.add_argument("--size", default="bench", choices=("tiny", "bench"))
    ap.add_argument("--weights", nargs="+", type=float, default=list(WEIGHTS))
    ap.add_argument("--epochs", type=int, default=None, help="E (default: per modality)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    print("| case | E | defaults at E / 4E | grid's best at E (weight) | ratio | lost E -> 4E "
          "| chosen weight (best epoch of run) | time at E |")
    print("|---|---|---|---|---|---|---|---|")
    for text in args.cases:
        print(report(study(parse_case(text, args.size), args.weights, args.epochs)), flush=True)


if __name__ == "__main__":
    main()
