"""The noise-aware defaults on the reduced noise sweep (issue 20): counting noise on a weak cell,
the example configurations with only the data and the epochs set, against hand-set TV weights
(every frame fitted, every epoch run) -- the CI version of benchmarks/bench_noise_defaults.py,
whose figures at the issue's sizes are in benchmarks/README.md ("Counting noise: the defaults").

Measured at these small sizes (2026-12-07, 15:40 UTC): the defaults reach 0.97 (holotomography)
and 1.04 (far field, floats) of the best hand-set weight of the grid at E epochs, and lose nothing
by running four times longer; integer counts 0.94 (21:30 UTC, the amplitude loss by default; 0.77
with the Poisson loss)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "benchmarks"))
from bench_noise_defaults import study  # noqa: E402
from noise_sweep import NoiseCase  # noqa: E402

CASES = [NoiseCase("ptycho2d", 1e4, "weak", "floats", "ci"),
         NoiseCase("ptycho2d", 1e4, "weak", "counts", "ci"),
         NoiseCase("holotomo", 1e5, "weak", "floats", "ci")]
EPOCHS = {"ptycho2d": 20, "holotomo": 10}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_defaults_choose_a_weight_near_the_best_and_hold_it(case):
    logging.disable(logging.WARNING)
    try:
        r = study(case, (0.0, 0.03, 0.3), EPOCHS[case.modality])
    finally:
        logging.disable(logging.NOTSET)
    print(r)
    grid = r["grid"]
    assert r["weight"] is not None and r["weight"] > 0, r   # the unpenalised fit fits the noise
    assert r["defaults_E"] >= 0.7 * max(grid.values()), r
    assert r["defaults_E"] > 1.1 * grid[0.0], r              # above no penalty at all
    assert r["defaults_4E"] >= 0.98 * r["defaults_E"], r     # never worse by running longer
