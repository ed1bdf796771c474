"""Split-half consistency against time on a near-field ptychography scan of the real check's size.

Data: the simulated twin of the synchrotron Siemens-star scan (``engine/twin.py``: 200 frames of
100^2 int32 counts, cone beam M = 308, 5 dead pixels, unknown structured probe, 0.5 px position
errors), its illumination a disc over a third of the detector (``--lit``, as in the real scan;
0 = the twin's soft field). The even and the odd frames (100 each, ``engine/quality/halves.py``)
are reconstructed one after the other with the ``nearfield-ptycho`` example configuration (path
and ``data.source_to_sample_m`` set; ``--set key=value`` overrides), each from a fresh
``Reconstruction`` (opening the file, set-up, epochs). After every epoch both halves' objects
are kept; then for each epoch count the script prints the consistency of the halves (Pearson
correlation of their projected phases over the common scanned area after registration, and the
FRC resolution by the 1/7 criterion) against the seconds per half: wall time from before the file
is opened to the end of that epoch (the slower half), with and without the command's imports
(measured once in a fresh interpreter, ``--import-s``), and the solver's own epoch times.

    python benchmarks/bench_split_half.py [--epochs 60] [--lit 0.333] [--frames 200]
        [--set optimizer.lr_object=0.05] [--every 5]
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import bench_parser, start  # noqa: E402

from slicewise.engine import to_host  # noqa: E402
from slicewise.engine.io.readers import open_dataset  # noqa: E402
from slicewise.engine.quality.frc import fourier_ring_correlation, register_shift  # noqa: E402
from slicewise.engine.quality.halves import _common_crop, comparable_image, split_halves  # noqa: E402
from slicewise.engine.recon.config import preset, set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402
from slicewise.engine.recon.setup.data_field import data_statements  # noqa: E402
from slicewise.engine.twin import simulate_twin  # noqa: E402


def import_seconds() -> float:
    """What `slicewise reconstruct` spends importing before it opens the file (fresh process)."""
    code = ("import time; t = time.perf_counter(); import slicewise.cli.reconstruct, "
            "slicewise.engine.recon.run, tqdm; print(time.perf_counter() - t)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(3)]
    return min(runs)


def run_half(cfg, path: Path, which: int, out: Path, be):
    """One half from scratch: (objects per epoch, wall s at each epoch end, solver s per epoch,
    set-up s, positions, probe shape)."""
    t0 = time.perf_counter()
    ds = open_dataset(path, statements=data_statements(cfg))
    half = split_halves(ds)[which]
    cfg = cfg.copy()
    cfg.run.output_dir = str(out)
    rec = Reconstruction(cfg, half, backend=be)
    setup = time.perf_counter() - t0
    objs, walls = [], []

    def on_event(ev):
        if ev.kind == "epoch":
            walls.append(time.perf_counter() - t0)
            objs.append(to_host(rec.problem.params["object"]).copy())

    rec.add_callback(on_event)
    rec.run()
    ds.close()
    pos = to_host(rec.problem.params["positions"])
    return objs, walls, [h["time_s"] for h in rec.history], setup, pos, \
        tuple(np.shape(to_host(rec.problem.params["probe"])))


def consistency(obj_a, obj_b, pos_a, pos_b, probe_shape, pixel_m) -> tuple[float, float]:
    """(correlation after registration, FRC 1/7 resolution in nm) of two halves' objects."""
    imgs = []
    for obj, pos in ((obj_a, pos_a), (obj_b, pos_b)):
        res = {"params": {"object": obj, "positions": pos, "probe": np.zeros(probe_shape)}}
        imgs.append(comparable_image(res, "projection")[0])
    a, b = _common_crop(*imgs)
    n = min(a.shape)
    a, b = a[:n, :n], b[:n, :n]
    shift = np.rint(register_shift(a, b)).astype(int)
    bb = np.roll(b, tuple(shift), axis=(0, 1))
    m = 2 + int(np.abs(shift).max())               # leave out what the roll wrapped around
    a_in, b_in = a[m:-m, m:-m], bb[m:-m, m:-m]
    corr = float(np.corrcoef(a_in.ravel(), b_in.ravel())[0, 1])
    frc = fourier_ring_correlation(a, b, pixel_m)
    return corr, frc.resolution_m["1/7"] * 1e9


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--lit", type=float, default=1 / 3, help="lit share of the detector; 0: soft")
    ap.add_argument("--every", type=int, default=5, help="print every this many epochs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    be, _ = start(args)
    work = Path(tempfile.mkdtemp(prefix="slicewise-halves-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    path = work / "twin.cxi"
    simulate_twin(path, n_frames=args.frames, position_error_px=0.5,
                  lit_fraction=args.lit or None)
    cfg = preset("nearfield-ptycho")
    cfg.data.path = str(path)
    cfg.data.source_to_sample_m = 3.65e-3
    for kv in [f"run.epochs={args.epochs}", "run.checkpoint_every=0", "run.save_tiff=false",
               f"run.backend={be.name}"] + args.set:
        key, value = kv.split("=", 1)
        set_value(cfg, key, value)
    imp = import_seconds()
    halves = [run_half(cfg, path, k, work / f"half{k}", be) for k in (0, 1)]
    pixel = 55e-6 / ((3.65e-3 + 1.12) / 3.65e-3)
    print(f"# {args.frames} frames of 100^2 (lit {args.lit:.2f}), {args.frames // 2} per half; "
          f"imports {imp:.2f} s; set-up (open + Reconstruction()) {halves[0][3]:.2f} / "
          f"{halves[1][3]:.2f} s; overrides {args.set or 'none'}")
    print("epoch  s/half (+imports)  solver s/half  correlation  FRC 1/7 (nm)")
    n = min(len(halves[0][0]), len(halves[1][0]))
    for e in range(n):
        if (e + 1) % args.every and e + 1 != n and e + 1 not in (1, 2, 3):
            continue
        wall = max(halves[0][1][e], halves[1][1][e])
        solver = max(sum(halves[0][2][:e + 1]), sum(halves[1][2][:e + 1]))
        corr, res = consistency(halves[0][0][e], halves[1][0][e], halves[0][4],
                                halves[1][4], halves[0][5], pixel)
        print(f"{e + 1:5d}  {wall:6.2f} ({wall + imp:6.2f})  {solver:12.2f}  {corr:11.3f}  "
              f"{res:10.0f}")


if __name__ == "__main__":
    main()
