"""Scan-position correction (issue 21 item 8) at the issue's size: final rms error and quality.

2D far-field ptychography, 1352 positions (a 26 x 52 raster on a 5 px grid), known probe (a 32^2
Airy spot, first dark ring at 6 px, focused as the ``star-ptycho`` preset's; ``--defocus`` for a
wider one), a layer of gold particles filling the field (the ``spheres`` phantom in one slice,
200 nm: up to 0.3 rad), 1e6 photons per frame. The stage misses its targets by normal errors of
0.5, 2, 4 and 5 px std (cut at 2.5 std); the file holds the pattern. Each error size is
reconstructed with ``refine.positions = true`` and the defaults (the search radius raised to 3 std
where that exceeds its default 10 px), and with the true positions. Reported, after ``--epochs``
and at ``--early`` epochs: rms / max position error (after removing the mean: a common shift is
invisible in the data) and the correlation of delta with the truth where every window's centre
half passed, against the true-position run's. At 4 px also the optimiser's gradient steps
(``refine.position_search_px = 0``, the behaviour before registration), no refinement, and
``refine.positions`` unset (decided by the run after 5 epochs).

    python benchmarks/bench_position_correction.py [--epochs 80] [--early 30] [--only 4]
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import bench_parser  # noqa: E402

from slicewise.engine.geometry import Geometry  # noqa: E402
from slicewise.engine.io.datafile import Dataset  # noqa: E402
from slicewise.engine.phantoms import PhantomSpec  # noqa: E402
from slicewise.engine.recon.config import ReconConfig  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402
from slicewise.engine.scans import STAGE_ERROR_CUT  # noqa: E402
from slicewise.engine.simulate import SimulationConfig, simulate_arrays  # noqa: E402

ROWS, COLUMNS, STEP, FRAME = 26, 52, 5.0, 32
ERRORS_PX = (0.5, 2.0, 4.0, 5.0)


def scan(std_px: float, defocus_m: float):
    """(Dataset holding the pattern, true positions, true delta (ny, nx)): the object grows with
    the errors so that the raster keeps 26 x 52 points inside it."""
    margin = STAGE_ERROR_CUT * std_px
    shape = tuple(int(math.ceil(FRAME + (n - 1) * STEP + 2 * margin)) + 1 for n in (ROWS, COLUMNS))
    sim = SimulationConfig(
        modality="ptycho", object_shape=(1,) + shape, material="gold", pixel_size_m=10e-9,
        slice_thickness_m=200e-9, probe_shape=(FRAME, FRAME), probe_size_px=6.0,
        probe_defocus_m=defocus_m, scan_step_px=STEP, photons=1e6, stage_error_std_px=std_px,
        phantom=PhantomSpec(kind="spheres", n_spheres=int(0.01 * shape[0] * shape[1]),
                            radius_min_px=2.0, radius_max_px=7.0, seed=1))
    out = simulate_arrays(sim, "numpy")
    assert len(out["positions_px"]) == ROWS * COLUMNS, len(out["positions_px"])
    geo = Geometry(modality="farfield", energy_ev=sim.energy_ev, pixel_size_m=sim.pixel_size_m,
                   slice_thickness_m=out["slice_thickness_m"], angles_rad=out["angles_rad"],
                   positions_px=out["positions_px"], object_shape_yx=shape)
    ds = Dataset.from_arrays(out["intensities"], geo, probe=out["probe"])
    return ds, out.get("true_positions_px", out["positions_px"]), out["truth"]["delta"][0]


def errors(found, true) -> tuple[float, float]:
    """rms and max of the position errors (px) after removing their mean."""
    e = np.asarray(found, float) - true
    e -= e.mean(axis=0)
    n = np.sqrt((e ** 2).sum(axis=1))
    return float(np.sqrt((n ** 2).mean())), float(n.max())


def corr(delta, truth, true_positions) -> float:
    seen = np.zeros(truth.shape, bool)
    q = FRAME // 4
    for y, x in np.rint(true_positions).astype(int):
        seen[max(y + q, 0):y + FRAME - q, max(x + q, 0):x + FRAME - q] = True
    return float(np.corrcoef(delta[seen], truth[seen])[0, 1])


def run(ds, true, truth, epochs: int, early: int, backend: str, out: Path, **settings) -> dict:
    """One reconstruction; position errors and correlation at ``early`` and ``epochs``."""
    cfg = ReconConfig()
    cfg.run.backend, cfg.run.output_dir, cfg.run.epochs = backend, str(out), epochs
    cfg.run.save_tiff, cfg.run.checkpoint_every = False, 0
    for path, value in settings.items():
        group, key = path.split("__")
        setattr(getattr(cfg, group), key, value)
    rec = Reconstruction(cfg, ds)
    res = {}

    def measure(tag):
        snap = rec.snapshot(None)
        res[tag] = (*errors(snap.positions, true), corr(snap.delta[0], truth, true))

    rec.add_callback(lambda ev: measure("early") if ev.kind == "epoch" and ev.epoch == early
                     else None)
    t0 = time.perf_counter()
    rec.run()
    res["time_s"] = time.perf_counter() - t0
    measure("end")
    return res


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--early", type=int, default=30, help="also report after this many epochs")
    ap.add_argument("--defocus", type=float, default=0.0, help="probe defocus, m (e.g. 100e-6)")
    ap.add_argument("--only", type=float, nargs="+", help="error sizes (px std) to run")
    args = ap.parse_args()
    backend = "numpy" if args.backend == "auto" else args.backend
    logging.basicConfig(level=logging.WARNING)
    print(f"{ROWS * COLUMNS} positions, {STEP:g} px raster, {FRAME}^2 Airy probe defocused by "
          f"{args.defocus:g} m, {args.epochs} epochs (and {args.early}), backend {backend}")
    print("| std px | start rms | method | rms / max @%d | corr @%d | rms / max @%d | corr @%d "
          "| corr true positions @%d | time s |" % (args.early, args.early, args.epochs,
                                                    args.epochs, args.epochs))
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for std in args.only or ERRORS_PX:
            ds, true, truth = scan(std, args.defocus)
            start = errors(ds.positions_px, true)[0]
            ideal = run(ds.with_geometry(positions_px=true), true, truth, args.epochs,
                        args.early, backend, Path(tmp) / f"true{std}")
            methods = {"registration": {"refine__positions": True}}
            if STAGE_ERROR_CUT * std > 10:
                methods["registration"]["refine__position_search_px"] = 3.0 * std
            if std == 4.0:
                methods["gradient steps"] = {"refine__positions": True,
                                             "refine__position_search_px": 0.0}
                methods["off"] = {"refine__positions": False}
                methods["unset (the run decides)"] = {}
            for name, settings in methods.items():
                r = run(ds, true, truth, args.epochs, args.early, backend,
                        Path(tmp) / f"{name}{std}", **settings)
                (e_rms, e_max, e_c), (rms, mx, c) = r["early"], r["end"]
                print(f"| {std:g} | {start:.2f} | {name} | {e_rms:.2f} / {e_max:.1f} | "
                      f"{e_c:.3f} | {rms:.2f} / {mx:.1f} | {c:.3f} | {ideal['end'][2]:.3f} | "
                      f"{r['time_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
