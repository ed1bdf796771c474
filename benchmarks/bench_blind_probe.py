"""Far-field ptychography without a probe in the file, against the same data with it.

Each case is written twice by an independent simulator (tests/helpers/adorym_sim.py,
tests/helpers/stranger_cxi.py) -- with the probe and without -- and reconstructed with the example
configuration, only the data path and the number of epochs changed. Reported: correlation with
the truth (delta; the phase over the illuminated region for the CXI scan) and wall time.

    python benchmarks/bench_blind_probe.py [--only cxi ...] [--epochs-factor 1]
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
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))
import adorym_sim as sim  # noqa: E402
import stranger_cxi as sx  # noqa: E402
from small_runs import weak_glass_cone_ptychotomo  # noqa: E402
from _timing import bench_parser  # noqa: E402

from slicewise.engine.physics.constants import wavelength_m  # noqa: E402
from slicewise.engine.recon.config import example_config, from_toml, set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402


def _corr(a, b) -> float:
    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def _adorym_score(truth_yxz):
    def score(snap):
        return _corr(snap.delta, np.transpose(truth_yxz, (2, 0, 1)))
    return score


def _cone_tomo(folder, with_probe):
    path, delta, _ = sim.ptychotomo(folder / "t.h5", sim.hollow_cone_3d(20), 1.83e-5, 5e-7, 5000,
                                    1e-9, 16, p=12, step=3, with_probe=with_probe)
    return "tomo", path, 15, _adorym_score(delta)


def _engine_cone(folder, with_probe):
    """The issue's QA case E: Slicewise's own simulator (probe centred at p // 2, a flat-phase
    Gaussian), a 24^3 cone, 24 angles."""
    path = folder / "e.h5"
    d = weak_glass_cone_ptychotomo(path, n_angles=24, with_probe=with_probe)
    return "tomo", path, 15, lambda snap: _corr(snap.delta, d["truth"]["delta"])


def _star_2d(folder, with_probe):
    path, delta, _ = sim.ptycho_2d(folder / "p.h5", with_probe=with_probe)
    return "ptycho", path, 10, _adorym_score(delta)


def _cxi(folder, with_probe, seed=0):
    s = sx.simulate_farfield(n_frames=64, frame=64, seed=seed)
    t = sx.translations_for(s["offsets_px"], s["pixel_eff_m"])
    path = folder / "ff.cxi"
    sx.write_stranger_cxi(path, s["counts"], energy_ev=s["energy_ev"], distance_m=s["z2_m"],
                          pixel_m=s["det_pixel_m"], translations_m=t,
                          probe=s["probe"] if with_probe else None)

    def score(snap):
        k = 2 * np.pi / wavelength_m(s["energy_ev"])
        return sx.illuminated_phase_corr(-k * snap.slice_thickness_m * snap.delta.sum(0), s)
    return "ptycho", path, 60, score


CASES = {"cone-ptychotomo-1nm": _cone_tomo, "engine-cone-ptychotomo": _engine_cone,
         "adorym-2d-1rad": _star_2d, "cxi-farfield": _cxi}


def run_case(make, with_probe: bool, epochs_factor: float) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        example, path, epochs, score = make(folder, with_probe)
        epochs = max(1, int(round(epochs * epochs_factor)))
        cfg = from_toml(example_config(example))
        set_value(cfg, "data.path", str(path))
        set_value(cfg, "run.epochs", epochs)
        t0 = time.perf_counter()
        rec = Reconstruction(cfg, base_dir=folder)
        rec.run()
        wall = time.perf_counter() - t0
        return score(rec.snapshot(None)), wall, epochs


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--only", nargs="*", default=[], help="substrings of case names")
    ap.add_argument("--epochs-factor", type=float, default=1.0)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    print(f"{'case':24s} {'probe':8s} {'epochs':>6s} {'corr':>7s} {'time s':>7s}")
    for name, make in CASES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        for with_probe in (True, False):
            c, wall, epochs = run_case(make, with_probe, args.epochs_factor)
            print(f"{name:24s} {'file' if with_probe else 'blind':8s} {epochs:6d} {c:7.3f} {wall:7.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
