"""During a run the UI must stay responsive and the live views must stay cheap.

UI latency: a 10 ms QTimer on the UI thread; each tick's lateness is how long the event loop was
blocked (by drawing, by the GIL held by the solver thread ...). Preview cost: the time spent in
the run's callback on the solver thread (including ``run.snapshot()``) plus the time the UI spent
drawing snapshots, relative to the solver's run time.
"""

from __future__ import annotations

import time

import numpy as np
from PyQt6.QtCore import QTimer

from .conftest import fast_run, open_data, wait_idle


def test_ui_latency_and_snapshot_cost(qtbot, window, holo_file, tmp_path, dialogs):
    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=120)
    w.tabs.setCurrentWidget(w.live)

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    w.start_run()
    wait_idle(qtbot, w, timeout=120000)
    timer.stop()
    assert not dialogs.errors, dialogs.errors

    late_ms = np.maximum(np.diff(ticks) * 1e3 - 10.0, 0.0)
    st = w.controller.last_stats
    drawing = st.gui_s / max(st.n_snapshots, 1) * 1e3
    print(f"\nUI event loop lateness over {len(late_ms)} ticks during a {st.run_s:.2f} s run: "
          f"median {np.median(late_ms):.1f} ms, 95th percentile {np.percentile(late_ms, 95):.1f} ms,"
          f" max {late_ms.max():.1f} ms")
    print(f"live previews: {st.n_snapshots} snapshots ({st.n_events} progress events); solver "
          f"side {st.callback_s * 1e3:.1f} ms (snapshot() {st.snapshot_s * 1e3:.1f} ms), UI drawing "
          f"{st.gui_s * 1e3:.1f} ms ({drawing:.1f} ms each) = "
          f"{100 * st.overhead_fraction():.2f} % of the solver's {st.run_s:.2f} s")
    assert len(late_ms) > 50
    assert np.median(late_ms) < 50.0
    assert np.percentile(late_ms, 90) < 100.0
    assert st.n_snapshots >= 3                 # the views were live ...
    assert st.overhead_fraction() < 0.05       # ... and cheap
    assert w.slice_view.updates >= 3
