"""Time to quality on clean data (issue 20 item 7): epochs and seconds to delta correlation 0.9
with the truth, before and after, in one run.

The three cases of tests/helpers/quality_cases.py at the issue's sizes (Adorym layout, noise-free,
the example configurations with only the data path and epochs set):

* ``ptycho2d`` -- far-field ptychography of a weak cell, 1364 positions, probe in the file;
  before = the defaults as they are (no held-out data), after = ``run.validation_share = 0.05``
  (a run the validation loss watches: twice Adam's object rate, ~32 minibatches per epoch);
* ``holotomo-weak`` -- a weak cell, 32^3, 36 angles, two distances; before = ``init.guess =
  "ctf"`` (what ``auto`` chose before the iterated CTF existed), after = the defaults;
* ``holo4-strong`` -- a 1 rad Siemens star, 128^2, four distances; before / after as above.

Time = wall time from building the ``Reconstruction`` (set-up, starting guess and rate
measurement included) to the first epoch whose delta correlates >= the threshold (epoch 0: the
start already does), minus the time spent computing correlations; CPU = this process's CPU time
over the same span (steadier than wall time on a shared machine). Each configuration runs
``--repeat`` times and keeps its fastest.

    python benchmarks/bench_time_to_quality.py [--only ptycho2d ...] [--threshold 0.9]
        [--repeat 2] [--size bench|tiny]
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "helpers"))
from _timing import bench_parser, start  # noqa: E402
from quality_cases import CASES, example_for, make_case, write_case  # noqa: E402
from scale_sweep import correlation  # noqa: E402

from slicewise.engine import to_host  # noqa: E402
from slicewise.engine.recon.config import set_value  # noqa: E402
from slicewise.engine.recon.run import Reconstruction  # noqa: E402

#: Epoch limits: a configuration that has not reached the threshold by then counts as "not reached".
MAX_EPOCHS = {"ptycho2d": 30, "holotomo-weak": 30, "holo4-strong": 200}

#: (label, configuration changes) before and after, per case.
CONFIGS = {
    "ptycho2d": (("before: defaults", {}),
                 ("after: run.validation_share = 0.05", {"run.validation_share": 0.05})),
    "holotomo-weak": (('before: init.guess = "ctf"', {"init.guess": "ctf"}),
                      ("after: defaults", {})),
    "holo4-strong": (('before: init.guess = "ctf"', {"init.guess": "ctf"}),
                     ("after: defaults", {})),
}


def time_to(case, data: Path, changes: dict, threshold: float, work: Path, be) -> dict:
    """Seconds (wall, CPU) and epochs to ``threshold`` (None when not reached), the correlation
    at the start and where the run stopped, and what the run chose for the starting guess."""
    cfg = example_for(case, data, MAX_EPOCHS[case.name])
    for key, value in {**changes, "run.checkpoint_every": 0, "run.save_tiff": False,
                       "run.backend": be.name, "run.output_dir": str(work)}.items():
        set_value(cfg, key, value)
    truth = case.truth["delta"]
    spent = [0.0, 0.0]   # wall and CPU seconds spent on correlations
    out = {"wall": None, "cpu": None, "epochs": None}
    t0, c0 = time.perf_counter(), time.process_time()

    def score(rec, epoch) -> float:
        tw, tc = time.perf_counter(), time.process_time()
        c = correlation(to_host(rec.problem.params["delta"]), truth)
        if c >= threshold and out["epochs"] is None:
            out.update(wall=tw - t0 - spent[0], cpu=tc - c0 - spent[1], epochs=epoch)
            rec.stop()
        spent[0] += time.perf_counter() - tw
        spent[1] += time.process_time() - tc
        return c

    rec = Reconstruction(cfg, backend=be, base_dir=work)
    out["start"] = out["end"] = score(rec, 0)
    rec.add_callback(lambda ev: out.update(end=score(rec, ev.epoch)) if ev.kind == "epoch" else None)
    if out["epochs"] is None:
        rec.run()
    out["guess"] = rec.config.init.guess if rec.problem.model.whole_object_images else "-"
    out["ran"] = rec.epoch
    shutil.rmtree(work, ignore_errors=True)
    return out


def _best(runs: list[dict]) -> dict:
    done = [r for r in runs if r["wall"] is not None]
    return min(done, key=lambda r: r["wall"]) if done else runs[0]


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--only", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--threshold", type=float, default=0.9)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--size", default="bench", choices=("bench", "tiny"))
    args = ap.parse_args()
    be, _ = start(args)
    logging.getLogger("slicewise").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="slicewise-ttq-"))
    print(f"{'case':<14} {'configuration':<36} {'guess':>9} {'start':>6} {'epochs':>6} "
          f"{'wall (s)':>9} {'CPU (s)':>8} {'corr':>6}")
    for name in args.only:
        case = make_case(name, args.size)
        data = write_case(case, work)
        rows = []
        for label, changes in CONFIGS[name]:
            # before and after alternate, so that the machine's load moves both alike
            rows.append((label, [time_to(case, data, changes, args.threshold, work / "run", be)]))
        for _ in range(args.repeat - 1):
            for label, runs in rows:
                runs.append(time_to(case, data, dict(CONFIGS[name])[label], args.threshold,
                                    work / "run", be))
        for label, runs in rows:
            r = _best(runs)
            reached = r["epochs"] is not None
            print(f"{name:<14} {label:<36} {r['guess']:>9} {r['start']:>6.3f} "
                  f"{r['epochs'] if reached else '>' + str(r['ran']):>6} "
                  f"{r['wall'] if reached else float('nan'):>9.2f} "
                  f"{r['cpu'] if reached else float('nan'):>8.2f} {r['end']:>6.3f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
