"""Stop signals: Ctrl-C, and SIGTERM / SIGHUP that batch schedulers send before killing a job.

During a run each stops cleanly after the current minibatch with a checkpoint that resumes;
during start-up each ends the command with one line and no traceback, writing nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from slicewise.engine.io.results import read_result
from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.simulate import SimulationConfig, simulate

# what the `slicewise` console script does, plus a line once the command line module is loaded
LAUNCH = ("import sys\nimport slicewise.cli.main as cli\nprint('ready', flush=True)\n"
          "sys.exit(cli.main(sys.argv[1:]))\n")


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("sig")
    simulate(SimulationConfig(modality="ptycho", phantom=PhantomSpec(kind="siemens"),
                              object_shape=(1, 24, 24), material="gold", pixel_size_m=10e-9,
                              probe_shape=(8, 8), probe_size_px=2.0, scan_step_px=3.0, photons=1e5),
             d / "p.h5", "numpy")
    cfg = d / "c.toml"
    cfg.write_text('[data]\npath = "p.h5"\n[run]\nepochs = 100000\nbatch_spots = 4\n'
                   'checkpoint_every = 1\nbackend = "numpy"\nsave_tiff = false\n')
    return cfg


def launch(config_file, out, *extra):
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "reconstruct", str(config_file),
                             "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_stop_signal_during_a_run_checkpoints(name, config_file, tmp_path):
    out = tmp_path / "run"
    proc = launch(config_file, out)
    deadline = time.time() + 60
    while not (out / "checkpoint.h5").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (out / "checkpoint.h5").exists(), "no checkpoint within 60 s"
    proc.send_signal(getattr(signal, name))
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + getattr(signal, name), text[-2000:]  # batch scripts can tell
    assert "Traceback" not in text and "stopped:" in text, text[-2000:]
    assert "writing a checkpoint" in text
    res = read_result(out / "checkpoint.h5")
    assert 1 <= res["epoch"] < 100000 and np.isfinite(res["params"]["delta"]).all()
    assert read_result(out / "result.h5")["epoch"] == res["epoch"]


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("delay_s", [0.1, 0.4])
def test_stop_signal_during_start_up_is_one_line(name, delay_s, config_file, tmp_path):
    """Early enough the run has not begun (imports, reading the data): one line, nothing written.

    (Only a signal within the interpreter's own start-up, before any Slicewise code runs, can
    still print Python's traceback; the 0.1 s delay after import keeps this test out of it.)"""
    out = tmp_path / "run"
    proc = launch(config_file, out)
    time.sleep(delay_s)
    sig = getattr(signal, name)
    proc.send_signal(sig)
    text, _ = proc.communicate(timeout=60)
    assert "Traceback" not in text, text
    assert proc.returncode == 128 + sig, text
    if "stopped:" in text:  # the machine was fast: the run began and stopped cleanly
        return
    assert text.strip().splitlines()[-1].startswith("interrupted (")
    assert not (out / "result.h5").exists()


def test_a_recorded_start_up_signal_ends_with_its_line_after_the_bar(config_file, tmp_path,
                                                                       monkeypatch, capsys):
    """A signal swallowed during start-up is raised once the run's handlers are installed, after
    the progress bar exists: the bar is closed first, so the one line stays the last (seen under
    load: the bar, drawn again at exit, came after it)."""
    from slicewise.cli.main import main
    from slicewise.engine import interrupts

    def recorded():
        raise interrupts.Interrupted(signal.SIGTERM)
    monkeypatch.setattr(interrupts, "raise_if_received", recorded)
    code = main(["reconstruct", str(config_file), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("interrupted (SIGTERM)"), err
    assert not (tmp_path / "run" / "result.h5").exists()


def test_a_signal_swallowed_by_a_finaliser_is_recorded_without_a_traceback():
    """A stop signal that lands in a finaliser or an import-lock callback (seen under load during
    start-up) is swallowed by Python, which prints "Exception ignored ... Traceback"; the start-up
    handlers record it and keep that print out of the one-line exit."""
    code = (
        "import gc, os, signal, sys\n"
        "from slicewise.engine import interrupts\n"
        "old = interrupts.install()\n"
        "class Finalised:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"   # its handler runs in here
        "        sum(range(100000))\n"
        "Finalised(); gc.collect()\n"
        "try:\n"
        "    interrupts.raise_if_received()\n"
        "except interrupts.Interrupted as exc:\n"
        "    print('recorded', exc.describe())\n"
        "interrupts.restore(old)\n"
        "class Other:\n"
        "    def __del__(self):\n"
        "        raise ValueError('other errors are still reported')\n"
        "Other(); gc.collect()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "recorded SIGTERM", proc.stdout + proc.stderr
    assert proc.stderr.count("Traceback") == 1 and "other errors are still reported" in proc.stderr


def test_ctrl_c_twice_within_an_update_points_to_the_checkpoint(config_file, tmp_path,
                                                                 monkeypatch, capsys):
    """The second Ctrl-C lands inside the optimiser's update (here: on purpose, in the 20th step):
    the half-updated state is not written, the run ends at once, and the message says which
    checkpoint to resume -- not "before a run was under way"."""
    import os

    from slicewise.cli.main import main
    from slicewise.engine.recon.loop import optimizers

    original, calls = optimizers.Adam.step, []

    def twice_in_the_20th(self, params, grads, closure=None, loss=None):
        calls.append(1)
        if len(calls) == 20:
            os.kill(os.getpid(), signal.SIGINT)  # the first asks for a clean stop
            sum(range(1000))  # its handler runs here
            os.kill(os.getpid(), signal.SIGINT)  # the second aborts, inside the update
            sum(range(1000))
        return original(self, params, grads, closure, loss)

    monkeypatch.setattr(optimizers.Adam, "step", twice_in_the_20th)
    out = tmp_path / "run"
    code = main(["reconstruct", str(config_file), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 130, err
    ckpt = out / "checkpoint.h5"
    res = read_result(ckpt)  # the last scheduled checkpoint, not the half-done step
    assert res["epoch"] >= 1 and "partial" not in res["extra"]["run_state"]
    assert err[-1] == (f"interrupted (Ctrl-C) during the run; its last checkpoint, after epoch "
                       f"{res['epoch']}, is {ckpt}: continue with --resume {ckpt}"), err
    assert not (out / "result.h5").exists() and not (out / ".slicewise.lock").exists()
