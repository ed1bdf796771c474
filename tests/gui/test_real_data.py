"""The GUI on measured-data files: a CXI near-field ptychography scan and a DXchange file."""

from __future__ import annotations

import numpy as np

from slicewise.engine.io.dxchange import write_dxchange
from slicewise.engine.twin import simulate_twin

from .conftest import fast_run, open_data, wait_idle


def test_cxi_scan_shows_mask_positions_and_probe(qtbot, window, tmp_path):
    w = window
    path = tmp_path / "scan.cxi"
    simulate_twin(path, n_frames=16, frame=32, scan_m=4e-6, n_spokes=12)
    open_data(qtbot, w, path)
    assert w.summary.field_text("layout") == "cxi"
    assert w.summary.field_text("detector mask").startswith("5 bad pixel(s)")
    assert "int32" in w.summary.field_text("stored as")
    # the measured-vs-model view marks the five dead pixels; the scan is shown before any run
    assert w.frames_view.n_masked == 5
    assert len(w.frames_view._mask_marks[0].data) == 5
    assert w.positions_view.has_data()
    fast_run(w, tmp_path / "out", epochs=2, **{"data.source_to_sample_m": 3.65e-3})
    assert w.params.value("model.kind") in ("auto", "nfptycho")
    w.start_run()
    wait_idle(qtbot, w)
    snap = w.last_snapshot
    assert snap is not None and snap.probe is not None and snap.positions.shape == (16, 2)
    assert w.probe_view.has_data() and w.frames_view._measured.shape == (32, 32)
    assert w.frames_view.n_masked == 5                        # still marked during the run
    assert abs(snap.pixel_size_m - 178.7e-9) < 1e-9           # the effective (cone-beam) pixel


def test_dxchange_file_opens_flat_field_corrected(qtbot, window, tmp_path):
    w = window
    rng = np.random.default_rng(0)
    white = np.full((2, 16, 16), 1000, np.uint16)
    dark = np.full((2, 16, 16), 100, np.uint16)
    proj = (100 + 900 * (0.8 + 0.1 * rng.random((3, 16, 16)))).astype(np.uint16)
    write_dxchange(tmp_path / "tomo.h5", proj, theta_deg=[0, 60, 120], energy_kev=17.0,
                   pixel_size_m=1e-6, distance_m=0.01, white=white, dark=dark)
    open_data(qtbot, w, tmp_path / "tomo.h5")
    assert w.summary.field_text("layout") == "dxchange"
    frame = w.frames_view._measured
    assert 0.75 < float(np.mean(frame)) < 0.95                # flat/dark corrected: vacuum = 1
