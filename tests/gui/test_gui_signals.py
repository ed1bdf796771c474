"""Stop signals reach the desktop application as they reach ``slicewise reconstruct`` (issue 23,
defect 3): SIGTERM (``kill``), SIGINT (Ctrl-C in the terminal: the whole process group) and
SIGHUP (the terminal closed) stop the run after the current minibatch, write its checkpoint and
result, close the window and end with exit code 0, leaving no child process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from slicewise.engine.io.results import read_result
from slicewise.engine.recon import config as cfgmod

from .test_dialogs_and_entry import _gui_command_line


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signame, to_group", [("SIGTERM", False), ("SIGINT", True),
                                               ("SIGHUP", True)])
def test_stop_signal_checkpoints_closes_and_exits_0(holo_file, tmp_path, signame, to_group):
    cfg = cfgmod.ReconConfig()
    cfg.data.path = str(holo_file)
    cfg.run.epochs, cfg.run.backend, cfg.run.output_dir = 100000, "numpy", "out"
    cfg.run.save_tiff, cfg.run.checkpoint_every = False, 0
    cfgmod.to_toml(cfg, tmp_path / "run.toml")
    cmd, env = _gui_command_line(str(tmp_path / "run.toml"), "--start", cwd=tmp_path)
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    log = tmp_path / "out" / "slicewise-run.log"
    try:
        t0 = time.monotonic()
        while not (log.is_file() and "run started" in log.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - t0 < 90, "the run did not start"
            time.sleep(0.2)
        time.sleep(1.0)  # a few minibatches
        sig = getattr(signal, signame)
        if to_group:     # as the terminal sends it: to the window and its child processes
            os.killpg(proc.pid, sig)
        else:            # kill PID: to the window alone
            os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    res = read_result(tmp_path / "out" / "result.h5")
    assert 0 < res["epoch"] < 100000 or len(res["extra"]["batch_losses"]) > 0
    assert (tmp_path / "out" / "checkpoint.h5").is_file()
    said = "Ctrl-C" if signame == "SIGINT" else signame
    assert f"{said}: stopping after this minibatch and writing a checkpoint" in err
    deadline = time.monotonic() + 10
    while _group_alive(proc.pid) and time.monotonic() < deadline:  # solver, 3D view: gone
        time.sleep(0.1)
    assert not _group_alive(proc.pid)
    assert Path(tmp_path / "out" / "result.h5").stat().st_size > 0
