"""Counting noise (issue 20): the defaults against a small grid of hand-set TV weights, and which
automatic rule (held-out frames, discrepancy principle, rate cuts on a plateau) would choose the
weight and the epoch.

Per case of the noise sweep (tests/helpers/noise_sweep.py: a weak-contrast cell, Poisson noise,
frames stored as counts / scale): the example configuration of the case's modality with only the
epochs and ``regularization.tv_weight`` set, run for 4x the case's epochs E. Reported:

* the benchmark's two figures: the defaults' correlation with the truth at E epochs as a fraction
  of the best weight of the grid at E epochs, and the loss of correlation of the defaults from
  their best epoch to 4E;
* per weight (runs with ~10 % of the measurements held out, benchmarks/_noise_trials.py):
  correlation at E and 4E, the best and its epoch, the training misfit at 4E relative to the
  noise level (the truth's own loss on the data), the epoch of the least validation loss;
* what each rule picks, as a fraction of the best correlation of the grid (any epoch <= 4E):
  ``val``: the least validation loss over weights and epochs; ``val-stop(w=0)``: early stopping
  (patience 3) on the validation loss, no penalty; ``val-best(w=0)``: the least validation loss
  of the whole run (4E epochs), no penalty; ``val-trial`` (``val-trial/2``): the weight whose
  run reached the least validation loss within its first E (E/2) epochs, that run's least
  validation loss over 4E; ``discrep-stop(w=0)``: stop when the
  training misfit first reaches the noise level; ``discrep-weight``: the weight whose misfit at 4E
  is nearest the noise level; ``plateau(w=0)``: no penalty, Adam's rates halved after 2 epochs
  without a new least validation loss (kept state: the last); ``ladder``: one run whose TV weight
  starts at 1 and is divided by 3 whenever the validation loss stops improving, while each rung
  beats the one before (kept state: the least validation loss);
* how many held-out elements the validation rules need: the same picks from random subsets of
  the held-out elements.

    python benchmarks/bench_noise.py [--cases holotomo:1e5 ptycho2d:1e4 ...] [--size bench]
        [--weights 0 0.01 0.03 0.1 0.3 1 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))
from _noise_trials import make_holdout, noise_levels, run_trial  # noqa: E402
from noise_sweep import NoiseCase, intensity_contrast, make_data  # noqa: E402

from slicewise.engine.io.datafile import Dataset  # noqa: E402
from slicewise.engine.io.noise import estimate_noise  # noqa: E402

#: The case's epochs E per modality (the run goes to 4E): about where the examples' defaults
#: reach their best on the clean data.
EPOCHS = {"holotomo": 10, "ptychotomo": 10, "ptycho2d": 20, "ptychoms": 20, "holo1": 50,
          "holo4": 50, "nfptycho": 30}
DEFAULT_CASES = ("holotomo:1e5", "ptychotomo:1e5", "ptycho2d:1e4", "ptycho2d:1e5", "holo4:1e5",
                 "nfptycho:1e5")
WEIGHTS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
PATIENCE = 3
HOLDOUT_SHARE = 0.1
#: The weight ladder (benchmarks/_noise_trials.py, WeightLadder): from 1 down by 3 per rung.
LADDER = {"start": 1.0, "step": 3.0, "patience": 2}
#: Where the runs of each case are kept (a rerun of the analysis reads them; delete to rerun).
RAW = Path(os.environ.get("SLICEWISE_NOISE_RUNS", Path(tempfile.gettempdir()) / "slicewise-noise-runs"))


def parse_case(text: str, size: str) -> NoiseCase:
    """``modality:photons[:contrast[:storage]]``."""
    parts = text.split(":")
    return NoiseCase(parts[0], float(parts[1]), parts[2] if len(parts) > 2 else "weak",
                     parts[3] if len(parts) > 3 else "floats", size)


def val_of(rec: dict, subset=None) -> float:
    if subset is None:
        return rec["val"]
    s, c = np.asarray(rec["val_sums"]), np.asarray(rec["val_counts"])
    return float(s[subset].sum() / c[subset].sum())


def early_stop(records: list, patience: int = PATIENCE, subset=None) -> int:
    """Index of the kept record: the least validation loss, stopping after ``patience`` epochs
    without a new least one."""
    best, since = 0, 0
    for i in range(1, len(records)):
        if val_of(records[i], subset) < val_of(records[best], subset):
            best, since = i, 0
        else:
            since += 1
            if since >= patience:
                break
    return best


def picks(runs: dict, level: float, e: int, subset=None) -> dict:
    """Correlation each rule ends with (see the module docstring)."""
    out = {}
    flat = [(val_of(r, subset), w, i) for w, run in runs.items()
            for i, r in enumerate(run["records"])]
    _, w, i = min(flat)
    out["val"] = runs[w]["records"][i]["corr"]
    r0 = runs[0.0]["records"]
    out["val-stop(w=0)"] = r0[early_stop(r0, subset=subset)]["corr"]
    out["val-best(w=0)"] = r0[early_stop(r0, len(r0), subset)]["corr"]
    for name, trial in (("val-trial", e), ("val-trial/2", max(1, e // 2))):
        # the weight whose trial of ``trial`` epochs reached the least validation loss; that
        # run goes on to 4E and keeps its least-validation state
        w = min(runs, key=lambda w: min(val_of(r, subset) for r in runs[w]["records"][:trial]))
        rr = runs[w]["records"]
        out[name] = rr[early_stop(rr, len(rr), subset)]["corr"]
        out[name + " w"] = w
    if subset is None:
        hit = next((r for r in r0 if r["misfit"] <= level), r0[-1])
        out["discrep-stop(w=0)"] = hit["corr"]
        w = min(runs, key=lambda w: abs(math.log(runs[w]["records"][-1]["misfit"] / level)))
        out["discrep-weight"] = runs[w]["records"][-1]["corr"]
        out["discrep w"] = w
    return out


def holdout_sizes(runs: dict, e: int, n_elements: int, seed: int = 0) -> dict:
    """Mean and worst correlation picked by ``val`` and ``val-stop(w=0)`` on random subsets of
    the held-out elements (fractions 1/8 .. 1), 20 draws each."""
    rng = np.random.default_rng(seed)
    out = {}
    for frac in (0.125, 0.25, 0.5, 1.0):
        k = max(1, int(round(frac * n_elements)))
        got = {"val": [], "val-stop(w=0)": []}
        for _ in range(20 if frac < 1 else 1):
            sub = np.sort(rng.choice(n_elements, k, replace=False))
            p = picks(runs, 1.0, e, sub)
            for key in got:
                got[key].append(p[key])
        out[k] = {key: (float(np.mean(v)), float(np.min(v))) for key, v in got.items()}
    return out


def study(case: NoiseCase, weights, epochs: int | None = None, unit: str | None = None,
          island_radius: float = 3.0) -> dict:
    """Every run of one case, and what the rules pick."""
    t0 = time.perf_counter()
    data = make_data(case)
    e = epochs or EPOCHS[case.modality]
    hold = make_holdout(data, HOLDOUT_SHARE, unit, island_radius=island_radius)
    tag = f"r{island_radius:g}" if hold.unit == "pixels" and island_radius != 3.0 else ""
    raw = RAW / f"{case.name}-{hold.unit}{tag}-E{e}.json"
    # the runs of an earlier call are kept (the analysis may change, the runs not)
    saved = json.loads(raw.read_text()) if raw.exists() else {}
    todo = {f"w={w:g}": ({"regularization.tv_weight": float(w)}, {}) for w in weights}
    todo.update({"defaults": (None, {"hold": None}),
                 "plateau": (None, {"plateau": {"patience": 2, "factor": 0.5}}),
                 "ladder": (None, {"ladder": LADDER})})
    for name, (changes, extra) in todo.items():
        if name not in saved:
            kw = {"hold": hold, **extra}
            saved[name] = run_trial(data, 4 * e, changes, **kw)
            RAW.mkdir(parents=True, exist_ok=True)
            raw.write_text(json.dumps(saved, default=float))
    runs = {float(w): saved[f"w={w:g}"] for w in weights}
    defaults, plateau, ladder = saved["defaults"], saved["plateau"], saved["ladder"]
    kind = runs[0.0]["loss_kind"]
    levels = noise_levels(data, hold, kind)
    level = levels["truth_misfit"]
    best = max(r["corr"] for run in runs.values() for r in run["records"])
    best_at_e = max(run["records"][e - 1]["corr"] for run in runs.values())
    d = [r["corr"] for r in defaults["records"]]
    p = picks(runs, level, e)
    p["plateau(w=0)"] = plateau["records"][-1]["corr"]
    lad = ladder["records"]
    p["ladder"] = lad[int(np.argmin([r["val"] for r in lad]))]["corr"]
    return {
        "case": case.name, "epochs": e, "loss": kind, "contrast": intensity_contrast(data),
        "holdout": {"unit": hold.unit, "share": hold.share, "n": hold.n_elements},
        "levels": levels, "best": best, "best_at_E": best_at_e,
        "defaults": {"corr": d, "ratio": d[e - 1] / best_at_e,
                     "loss_to_4E": (max(d) - d[-1]) / max(d), "best_epoch": int(np.argmax(d)) + 1},
        "weights": {w: _weight_row(run, e, level) for w, run in runs.items()},
        "plateau": {"corr": [r["corr"] for r in plateau["records"]], "cuts": plateau["cuts"]},
        "ladder": {"corr": [r["corr"] for r in lad], "weights": [r.get("tv_weight") for r in lad],
                   "kept_epoch": int(np.argmin([r["val"] for r in lad])) + 1},
        "picks": p, "sizes": holdout_sizes(runs, e, hold.n_elements),
        "chosen": defaults["chosen"], "wall_s": time.perf_counter() - t0,
    }


def _weight_row(run: dict, e: int, level: float) -> dict:
    rec = run["records"]
    c = [r["corr"] for r in rec]
    return {"corr_E": c[e - 1], "corr_4E": c[-1], "best": max(c), "best_epoch": int(np.argmax(c)) + 1,
            "misfit_4E": rec[-1]["misfit"] / level, "val_epoch": int(np.argmin([r["val"] for r in rec])) + 1,
            "misfit_E": rec[e - 1]["misfit"] / level, "corr": c, "val": [r["val"] for r in rec],
            "misfit": [r["misfit"] / level for r in rec]}


def report(res: dict) -> None:
    e, b = res["epochs"], res["best"]
    lv = res["levels"]
    print(f"\n### {res['case']}  (E = {e}, loss {res['loss']}, contrast {res['contrast']:.2%}, "
          f"held out: {res['holdout']['n']} {res['holdout']['unit']} = "
          f"{res['holdout']['share']:.1%}; noise: {lv['noise_kind']}, misfit at the noise level "
          f"{lv['truth_misfit']:.3g} (expected {lv['expected_misfit']:.3g}); {res['wall_s']:.0f} s)")
    d = res["defaults"]
    print(f"defaults (all frames): corr {d['corr'][e - 1]:.3f} at E, {d['corr'][-1]:.3f} at 4E, "
          f"best {max(d['corr']):.3f} (epoch {d['best_epoch']}); ratio to the best weight at E "
          f"{d['ratio']:.3f}; loss best -> 4E {100 * d['loss_to_4E']:.1f} %")
    print("| tv_weight | corr E | corr 4E | best (epoch) | least val epoch | misfit/noise E, 4E |")
    print("|---|---|---|---|---|---|")
    for w, r in res["weights"].items():
        print(f"| {w:g} | {r['corr_E']:.3f} | {r['corr_4E']:.3f} | {r['best']:.3f} "
              f"({r['best_epoch']}) | {r['val_epoch']} | {r['misfit_E']:.3f}, {r['misfit_4E']:.3f} |")
    p = res["picks"]
    print("rules (fraction of the grid's best " f"{b:.3f}): " + ", ".join(
        f"{k} {v / b:.3f}" for k, v in p.items() if not k.endswith(" w"))
        + f"; val-trial w = {p['val-trial w']:g}, discrep w = {p['discrep w']:g}; plateau cuts at "
        f"{res['plateau']['cuts']}; ladder: {len(res['ladder']['corr'])} epochs, kept "
        f"{res['ladder']['kept_epoch']} at weight {res['ladder']['weights'][res['ladder']['kept_epoch'] - 1]}")
    print("held-out elements -> val (mean, worst), val-stop(w=0) (mean, worst) as fractions: " +
          "; ".join(f"{k}: {v['val'][0] / b:.3f}/{v['val'][1] / b:.3f}, "
                    f"{v['val-stop(w=0)'][0] / b:.3f}/{v['val-stop(w=0)'][1] / b:.3f}"
                    for k, v in res["sizes"].items()))


RULES = ("val", "val-trial", "val-trial/2", "val-stop(w=0)", "val-best(w=0)", "plateau(w=0)",
         "discrep-stop(w=0)", "discrep-weight", "ladder")


def summary(results: list) -> None:
    """The tables of benchmarks/README.md ("Noise") over every case run."""
    print("\n| case | contrast | defaults E / 4E / best (epoch) | grid's best at E (weight) | "
          "ratio | loss best -> 4E |")
    print("|---|---|---|---|---|---|")
    for r in results:
        d, e = r["defaults"], r["epochs"]
        w = max(r["weights"], key=lambda w: r["weights"][w]["corr_E"])
        print(f"| {r['case']} | {r['contrast']:.2%} | {d['corr'][e - 1]:.3f} / {d['corr'][-1]:.3f} "
              f"/ {max(d['corr']):.3f} ({d['best_epoch']}) | {r['best_at_E']:.3f} ({w:g}) | "
              f"{d['ratio']:.2f} | {100 * d['loss_to_4E']:.0f} % |")
    print("\n| case | grid's best (weight) | " + " | ".join(RULES) + " |")
    print("|---|---|" + "---|" * len(RULES))
    for r in results:
        w = max(r["weights"], key=lambda w: r["weights"][w]["best"])
        p = r["picks"]
        print(f"| {r['case']} | {r['best']:.3f} ({w:g}) | "
              + " | ".join(f"{p[k] / r['best']:.2f}" for k in RULES) + " |")


def estimate_accuracy(size: str = "bench") -> None:
    """The measured noise level of continuous data (no lattice: the sweep's counts times
    ``1 + 1e-3 N(0, 1)`` per pixel and exposure, over the photons) relative to the truth, at the
    median clean intensity (far field: the 90th percentile), per modality, contrast and photons."""
    rng = np.random.default_rng(1)
    print("\n| | weak | strong |\n|---|---|---|")
    for m in ("holo1", "holo4", "holotomo", "nfptycho", "ptycho2d", "ptychotomo"):
        cells = []
        for contrast in ("weak", "strong"):
            row = []
            for ph in (1e3, 1e4, 1e5, 1e6, 1e7):
                d = make_data(NoiseCase(m, ph, contrast, "counts", size))
                stored = d.stored * (1 + 1e-3 * rng.normal(0, 1, d.stored.shape)) / ph
                est = estimate_noise(Dataset.from_arrays(stored.astype(np.float32), d.geometry))
                ref = np.percentile(d.clean, 90 if d.case.far_field else 50) / ph
                row.append(f"{est.model.variance(ref) / (ref / ph):.2g}")
            cells.append(" / ".join(row))
        print(f"| {m} | {cells[0]} | {cells[1]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                    help="modality:photons[:contrast[:storage]], e.g. holotomo:1e5:weak:floats")
    ap.add_argument("--size", default="bench", choices=("tiny", "bench"))
    ap.add_argument("--weights", nargs="+", type=float, default=list(WEIGHTS))
    ap.add_argument("--epochs", type=int, default=None, help="E (default: per modality)")
    ap.add_argument("--unit", default=None, choices=("frames", "angles", "pixels"),
                    help="held-out unit (default: frames for ptychography, angles for "
                         "holotomography, pixel islands for holography)")
    ap.add_argument("--island-radius", type=float, default=3.0,
                    help="held-out pixel islands: radius in pixels (PyNX: 3)")
    ap.add_argument("--noise-estimate", action="store_true",
                    help="only the accuracy of the measured noise level on continuous data")
    ap.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = ap.parse_args()
    if 0.0 not in args.weights:
        args.weights = [0.0] + args.weights
    logging.getLogger("slicewise").setLevel(logging.ERROR)
    if args.noise_estimate:
        estimate_accuracy(args.size)
        return
    results = []
    for text in args.cases:
        res = study(parse_case(text, args.size), args.weights, args.epochs, args.unit,
                    args.island_radius)
        report(res)
        results.append(res)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=float))
    summary(results)


if __name__ == "__main__":
    main()
