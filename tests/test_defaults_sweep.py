"""The defaults on strangers' data: every modality at three materials/energies spanning 4.1
decades of phase per voxel, in Adorym's layout, reconstructed with the example configuration of
`slicewise reconstruct --example <kind>` with only the data path and the number of epochs changed.

Measured correlations with the truth (NumPy, 2 cores; delta, projections along the beam where the
file cannot tell the number of slices):

=============  ======  ======  ======
case           weak    mid     strong
=============  ======  ======  ======
ptycho2d       0.9840  0.9930  0.9972
ptychoms       0.9986  0.9981  0.9984
holo1          0.9873  0.9973  0.9729
holo4          0.9999  1.0000  1.0000
holotomo       0.9994  0.9998  0.9983
ptychotomo     0.9728  0.9800  0.9597
=============  ======  ======  ======

(holography re-measured 2026-12-07 on branch quality: the iterated-CTF start.) The threshold is the brief's 0.9 for
every case; holo4-strong had the smallest margin before its ratio refinement (0.022: gold at
1.5 keV, where absorption dominates the contrast and delta's lowest frequencies converge last).
The whole sweep takes about a minute on 2 cores.

Correlation is blind to delta's level, which a beamline scientist reads quantitatively (electron
density, material). Holography's level is pinned too: the least-squares factor of the result on
the truth (2026-12-07, branch quality; docs/holography-delta-scale.md), measured:

=============  ======  ======  ======
case           weak    mid     strong
=============  ======  ======  ======
holo1          1.039   1.174   2.152
holo4          1.004   1.000   1.000
holotomo       1.037   0.995   1.089
=============  ======  ======  ======

Allowed 0.8-1.25 (smallest margin 0.076, holo1-mid). holo1-strong (one distance, gold at 1.5 keV)
is a known defect, not a pass: one distance does not measure delta's low spatial frequencies, they
follow the starting guess's beta/delta (0.1, picked by a data loss blind to it; gold's is 0.27),
and the 2.1x result fits the data as well as the truth. It is an expected failure that turns into
a failure when it starts to pass (then remove it from KNOWN_LEVEL_DEFECTS).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.recon.config import from_toml
from slicewise.engine.recon.run import Reconstruction

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from scale_sweep import (  # noqa: E402
    SCALES, cases, correlation, delta_scale, example_for, write_case)

CASES = cases()

#: Allowed least-squares level of holography's delta on the truth (measured values above).
DELTA_SCALE = (0.8, 1.25)
#: Cases whose level is known to be outside DELTA_SCALE (case -> what was measured and why).
KNOWN_LEVEL_DEFECTS = {"holo1-strong": "measured 2.137 on main fe4104e: one distance, the level "
                                       "follows the assumed beta/delta 0.1 (true 0.27)"}


def test_sweep_spans_four_decades_of_phase_per_voxel():
    for kind in {c.name.split("-")[0] for c in CASES}:
        phases = [c.phase_per_voxel for c in CASES if c.name.startswith(kind + "-")]
        assert len(phases) == len(SCALES) >= 3
        assert np.log10(max(phases) / min(phases)) >= 4.0, (kind, phases)


@pytest.mark.sweep
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_example_configuration_reconstructs_every_scale(case, tmp_path):
    path, truth = write_case(case, tmp_path)
    rec = Reconstruction(example_for(case, path), base_dir=tmp_path)
    rec.run()
    delta = rec.snapshot(None).delta
    c = correlation(delta, truth["delta"])
    s = delta_scale(delta, truth["delta"])
    print(f"{case.name}: phase/voxel {case.phase_per_voxel:.2e}, correlation {c:.4f}, "
          f"level {s:.3f}")
    assert c >= 0.9, f"{case.name}: correlation {c:.4f}"
    if case.name.startswith("holo"):
        lo, hi = DELTA_SCALE
        ok = lo <= s <= hi
        if case.name in KNOWN_LEVEL_DEFECTS:
            assert not ok, (f"{case.name}: level {s:.3f} is now right; remove it from "
                            "KNOWN_LEVEL_DEFECTS")
            pytest.xfail(f"{case.name}: delta {s:.3f} x the truth; "
                         f"{KNOWN_LEVEL_DEFECTS[case.name]}")
        assert ok, f"{case.name}: delta {s:.3f} x the truth (allowed {lo}-{hi})"


@pytest.mark.sweep
def test_saved_configuration_reruns_the_automatic_choices_exactly(tmp_path):
    """Every automatic choice (optimiser, minibatches, starting guess, learning rates, also the
    probe's, measured when its refinement starts) is written to the run's config.toml, and running
    that file reproduces the result."""
    case = next(c for c in CASES if c.name == "ptycho2d-mid")
    path, _ = write_case(case, tmp_path)
    first = Reconstruction(example_for(case, path, 6), base_dir=tmp_path / "a")
    first.run()
    saved = from_toml(first.output_dir / "config.toml")
    o = saved.optimizer
    # 2D far-field ptychography with 169 positions: Adam on minibatches of ~11 positions
    assert o.kind == "adam" and saved.run.batch_angles == 0 and 0 < saved.run.batch_spots < 169
    assert all(v is not None and v > 0 for v in (o.lr_delta, o.lr_beta, o.lr_probe))
    again = Reconstruction(saved, base_dir=tmp_path / "b")
    again.run()
    np.testing.assert_allclose(again.snapshot(None).delta, first.snapshot(None).delta, rtol=1e-5,
                               atol=1e-6 * float(np.abs(first.snapshot(None).delta).max()))
