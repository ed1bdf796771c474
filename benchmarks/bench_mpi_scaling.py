"""MPI strong scaling on the presets: one process against N ranks, one thread each.

For each preset (``slicewise simulate --preset ...``) the example configuration of its modality
runs ``--epochs`` epochs as a user runs it (``slicewise reconstruct``, automatic choices), once
as one process and once under ``mpiexec -n N``, every process with ``OMP_NUM_THREADS=1`` (one
FFT/BLAS thread). Printed per preset:

* epoch-loop time (sum of the epoch times the result file records: the part MPI divides; set-up
  -- reading, initial guesses, measured rates -- is not divided) and wall time of the command;
* parallel efficiency ``T1 / (N * TN)`` of the epoch loop (1.0 = perfect);
* the part ``p`` of one process's epoch loop that N ranks divide (evaluating the loss and
  gradient of the frames), timed in-process, and the efficiency it bounds (Amdahl: the optimiser
  update, projections and end-of-epoch checks run on every rank; a rank's share of a minibatch is
  its frames, so the slowest rank holds the fraction ``f`` of each, at least 1/N):
  ``1 / (N ((1 - p) + p f))``;
* drift between one process and N ranks: the relative difference of the final loss and the
  largest voxel difference of delta and beta relative to their largest magnitude. The ranks sum
  their gradients in another order: rounding differences, which Adam's normalised steps amplify
  in single precision. ``--double`` measures the same in double precision.

    python benchmarks/bench_mpi_scaling.py [--presets star-ptycho cone-holotomo ...]
        [--epochs 20] [--ranks 2] [--double]

Needs the ``mpi`` extra (mpiexec beside the Python interpreter, or on PATH). The host must have
N free cores for the efficiency to mean anything.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from slicewise.engine.io.results import read_result
from slicewise.engine.recon.config import example_config
from slicewise.engine.simulate import PRESETS, SimulationConfig, simulate

#: preset -> the example configuration of its modality
EXAMPLES = {"star-ptycho": "ptycho", "spheres-holo": "holo", "cone-holotomo": "tomo",
            "cone-ptychotomo": "tomo"}


def _config(preset: str, data: Path, folder: Path, precision: str) -> Path:
    text = example_config(EXAMPLES[preset])
    for key, value in (("path", f'"{data}"'), ("precision", f'"{precision}"'),
                       ("save_tiff", "false"), ("checkpoint_every", "0")):
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert n == 1, key
    path = folder / f"{preset}-{precision}.toml"
    path.write_text(text)
    return path


def _run(launcher: list[str], cfg: Path, epochs: int, out: Path) -> float:
    """Wall time of one ``slicewise reconstruct``; its result lands in ``out``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([*launcher, sys.executable, "-m", "slicewise.cli", "reconstruct", str(cfg),
                           "--epochs", str(epochs), "--out", str(out)],
                          capture_output=True, text=True, env=env, cwd=cfg.parent)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(launcher) or 'one process'} failed:\n{proc.stderr[-3000:]}")
    return wall


def _loop_seconds(result: dict) -> float:
    return float(np.nansum(result["extra"]["epoch_time_s"]))


def _drift(one: dict, many: dict) -> dict:
    loss1, lossn = one["loss"]["total"][-1], many["loss"]["total"][-1]
    out = {"loss": (lossn - loss1) / abs(loss1)}
    for name in ("delta", "beta"):
        a, b = one["params"][name].astype(float), many["params"][name].astype(float)
        out[name] = float(np.abs(b - a).max() / max(np.abs(a).max(), 1e-300))
    return out


def largest_share(batches, splits_spots: bool, ranks: int) -> float:
    """Mean over the minibatches of the largest rank's share of its frames (the ranks own every
    ``ranks``-th scan position, or angle: :meth:`Distributed.share`)."""
    fractions = []
    for a_idx, s_idx in batches:
        owned = s_idx if splits_spots else a_idx
        fractions.append(max(np.sum(np.asarray(owned) % ranks == r) for r in range(ranks))
                         / max(len(owned), 1))
    return float(np.mean(fractions))


def divided_fraction(cfg: Path, epochs: int, out: Path, ranks: int) -> tuple[float, float]:
    """``(p, f)``: the fraction of one process's epoch loop spent evaluating loss and gradients
    (what ranks divide), from an in-process run of ``epochs`` epochs, and the largest rank's share
    of the frames (:func:`largest_share`)."""
    from slicewise.engine.recon.config import from_toml, set_value  # noqa: PLC0415
    from slicewise.engine.recon.loop import solver  # noqa: PLC0415
    from slicewise.engine.recon.run import Reconstruction  # noqa: PLC0415

    spent = [0.0]
    original = solver.Solver._evaluator

    def timed_evaluator(self, a_idx, s_idx):
        evaluate = original(self, a_idx, s_idx)

        def timed(trial):
            t0 = time.perf_counter()
            try:
                return evaluate(trial)
            finally:
                spent[0] += time.perf_counter() - t0
        return timed

    cfg_obj = from_toml(cfg)
    set_value(cfg_obj, "run.epochs", epochs)
    set_value(cfg_obj, "run.output_dir", str(out))
    rec = Reconstruction(cfg_obj, base_dir=cfg.parent, distributed=None)
    spent[0] = 0.0  # evaluations of the set-up (probe search) are not the loop's
    solver.Solver._evaluator = timed_evaluator
    try:
        rec.run()
    finally:
        solver.Solver._evaluator = original
    share = largest_share(rec.solver.batches(0), rec.problem.model.splits_spots, ranks)
    return spent[0] / sum(h["time_s"] for h in rec.history), share


def measure(preset: str, folder: Path, epochs: int, ranks: int, precision: str, mpiexec: str):
    data = folder / f"{preset}.h5"
    if not data.exists():
        simulate(SimulationConfig.from_dict(dict(PRESETS[preset])), data, "numpy")
    cfg = _config(preset, data, folder, precision)
    one_out, many_out = folder / f"{preset}-{precision}-1", folder / f"{preset}-{precision}-{ranks}"
    wall1 = _run([], cfg, epochs, one_out)
    walln = _run([mpiexec, "-n", str(ranks)], cfg, epochs, many_out)
    one, many = read_result(one_out / "result.h5"), read_result(many_out / "result.h5")
    t1, tn = _loop_seconds(one), _loop_seconds(many)
    p, f = divided_fraction(cfg, min(epochs, 5), folder / f"{preset}-{precision}-split", ranks)
    return {"preset": preset, "precision": precision, "t1": t1, "tn": tn, "wall1": wall1,
            "walln": walln, "efficiency": t1 / (ranks * tn), "divided": p, "share": f,
            "bound": 1.0 / (ranks * ((1.0 - p) + p * f)), **_drift(one, many)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--double", action="store_true", help="also measure the drift in double precision")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"  # the in-process run too: one FFT thread (backend.cpu_threads)
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if mpiexec is None:
        raise SystemExit("no mpiexec: install the 'mpi' extra")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; "
          f"{args.epochs} epochs, 1 process vs {args.ranks} ranks, OMP_NUM_THREADS=1")
    print(f"{'preset':16} {'precision':9} {'loop 1 (s)':>10} {f'loop {args.ranks} (s)':>10} "
          f"{'efficiency':>10} {'p':>5} {'f':>5} {'bound':>6} {'wall 1':>7} {f'wall {args.ranks}':>7} "
          f"{'loss drift':>11} {'delta drift':>11} {'beta drift':>10}")
    precisions = ["single", "double"] if args.double else ["single"]
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for precision in precisions:
                r = measure(preset, Path(tmp), args.epochs, args.ranks, precision, mpiexec)
                print(f"{r['preset']:16} {r['precision']:9} {r['t1']:10.2f} {r['tn']:10.2f} "
                      f"{r['efficiency']:10.2f} {r['divided']:5.2f} {r['share']:5.2f} {r['bound']:6.2f} "
                      f"{r['wall1']:7.1f} {r['walln']:7.1f} "
                      f"{r['loss']:+11.2e} {r['delta']:11.2e} {r['beta']:10.2e}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
