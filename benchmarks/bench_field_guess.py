"""The near/far-field guess on every simulated fixture: what was guessed, what was right.

Fixtures (``tests/helpers/field_fixtures.py``, CXI files as beamline software writes them):
near-field frames lit over 20-50 % of the detector with a dark rim, off centre, with hot or
saturated pixels, the soft-edged field of the synchrotron twin, full-field holography; far-field
patterns of a focused beam, a zone plate with a central stop (a ring), in FFT order, off centre,
with hot or saturated pixels, a single CDI frame. Plus the real-size twins of the synchrotron
near-field scan (``engine/twin.py``, 200 frames of 100^2: soft field, and a disc lighting a third
of the detector). Each file is opened as ``slicewise info`` opens it (no key stated); the table
gives the guess, the truth, the summed score of the cues (> 0: near), the cue that weighed most
and the time to open the file.

    python benchmarks/bench_field_guess.py [--no-twins]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))
import field_fixtures as ff  # noqa: E402

from slicewise.engine.io.readers import open_dataset  # noqa: E402
from slicewise.engine.twin import simulate_twin  # noqa: E402


#: Harder cases than the test fixtures (not asserted in the tests): weak objects, few counts, a
#: far-field probe so defocused that its frames show a shadow image that moves with the scan.
EXTRA = {
    "near, weak phase 0.1, 2000 cts": (lambda: ff.near_field(phase=0.1, peak=2000), "near"),
    "near, steps of 2 px": (lambda: ff.near_field(step_px=2.0), "near"),
    "far, weak phase 0.2": (lambda: ff.far_field(phase=0.2), "far"),
    "far, ring defocused 15 rad": (lambda: ff.far_field(radius=14, stop=0.45, defocus=15.0), "far"),
    "far, disc r20 defocused 10 rad": (lambda: ff.far_field(radius=20, defocus=10.0), "far"),
    "far, ring weak, 2e5 photons": (lambda: ff.far_field(radius=14, stop=0.45, defocus=6.0,
                                                         phase=0.3, total=2e5), "far"),
}


def _write(fx: dict, path: Path) -> None:
    ff.write_cxi(path, fx["frames"], energy_ev=fx["energy_ev"], distance_m=fx["distance_m"],
                 pixel_size_m=fx["pixel_m"], translations_m=fx["translations"])


def _row(name: str, path: Path, truth: str, order: str | None) -> tuple[bool, str]:
    t0 = time.perf_counter()
    with open_dataset(path) as ds:
        seconds = time.perf_counter() - t0
        field = ds.modality[:-5]
        decided = ds.meta["field"]
        fft = ds.meta.get("farfield_fft")
    got_order = None if fft is None else ("fft" if fft else "centred")
    right = field == truth and (order is None or got_order == order)
    first = decided["reason"]
    return right, (f"{name:31s} {field:5s} {truth:5s} {got_order or '-':8s} {order or '-':8s} "
                   f"{'yes' if right else 'NO ':4s} {seconds:5.2f}  {first[:90]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-twins", action="store_true", help="skip the two real-size twins")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="field_guess_"))
    print(f"{'fixture':31s} {'guess':5s} {'truth':5s} {'order':8s} {'truth':8s} {'ok':4s} "
          f"{'s':>5s}  strongest cue that carried it")
    n_right = n = 0
    for k, name in enumerate(ff.FIXTURES):
        fx = ff.make(name, work / f"f{k}.cxi")
        right, line = _row(name, work / f"f{k}.cxi", fx["field"], fx["order"])
        n, n_right = n + 1, n_right + right
        print(line)
    print("# harder cases")
    for k, (name, (maker, truth)) in enumerate(EXTRA.items()):
        _write(maker(), work / f"x{k}.cxi")
        right, line = _row(name, work / f"x{k}.cxi", truth, None)
        n, n_right = n + 1, n_right + right
        print(line)
    if not args.no_twins:
        for name, lit in (("twin 200x100^2, soft field", None), ("twin 200x100^2, disc 1/3", 1 / 3)):
            path = work / f"twin{lit}.cxi"
            simulate_twin(path, lit_fraction=lit)
            right, line = _row(name, path, "near", None)
            n, n_right = n + 1, n_right + right
            print(line)
    print(f"# {n_right} of {n} right")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
