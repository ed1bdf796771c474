"""The solver's own process: a run built ahead of its start (``slicewise gui CONFIG --start``)."""

from __future__ import annotations

import logging
import threading

from slicewise.engine.io.results import read_result
from slicewise.engine.recon import config as cfgmod


def _config(data, epochs):
    cfg = cfgmod.ReconConfig()
    cfg.data.path = str(data)
    cfg.run.epochs, cfg.run.backend, cfg.run.output_dir = epochs, "numpy", "out"
    cfg.run.save_tiff, cfg.run.checkpoint_every = False, 0
    return cfg


def _run(folder, prepare_cfg, start_cfg):
    from slicewise.app.worker import _ProcessClient

    msgs, done = [], threading.Event()

    def deliver(client, msg):
        msgs.append(msg)
        if msg[0] == "done":
            done.set()

    client = _ProcessClient(deliver)
    client.prepare(prepare_cfg, str(folder))
    client.start(start_cfg, str(folder), None, (0, 0))
    assert done.wait(120), msgs
    assert client.join(30)
    return msgs


def test_the_run_built_ahead_is_used_only_for_the_same_configuration(holo_file, tmp_path,
                                                                        caplog):
    cfg = _config(holo_file, 2)
    with caplog.at_level(logging.INFO, logger="slicewise"):
        msgs = _run(tmp_path, cfg, cfg.copy())
    kinds = [m[0] for m in msgs]
    assert "finished" in kinds and "failed" not in kinds, msgs
    assert "built while the window started" in caplog.text
    assert read_result(tmp_path / "out" / "result.h5")["epoch"] == 2

    caplog.clear()
    other = cfg.copy()
    other.run.epochs = 3            # the form changed before Start: built afresh
    with caplog.at_level(logging.INFO, logger="slicewise"):
        msgs = _run(tmp_path / "b", cfg, other)
    assert "finished" in [m[0] for m in msgs], msgs
    assert "built while the window started" not in caplog.text
    assert read_result(tmp_path / "b" / "out" / "result.h5")["epoch"] == 3


def test_gui_start_spawns_and_builds_the_run_before_the_window(qtbot, holo_file, tmp_path,
                                                                dialogs, caplog):
    """``slicewise gui CONFIG --start``: the solver process is started (and builds the run)
    before the window exists; the window's first Start uses it."""
    from slicewise.app.main_window import MainWindow
    from slicewise.app.worker import early_solver

    from .conftest import wait_idle

    cfgmod.to_toml(_config(holo_file, 2), tmp_path / "run.toml")
    client = early_solver(str(tmp_path / "run.toml"))
    assert client is not None and client.alive()   # running before any window exists
    with caplog.at_level(logging.INFO, logger="slicewise"):
        w = MainWindow(solver=client)
        qtbot.addWidget(w)
        assert w.controller._spare is client
        w.request_autostart()
        w.open_path(str(tmp_path / "run.toml"))
        qtbot.waitUntil(lambda: w.controller.is_active() or w.result_path is not None,
                        timeout=30000)
        wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
    assert "built while the window started" in caplog.text
    assert read_result(tmp_path / "out" / "result.h5")["epoch"] == 2
    w.close()
