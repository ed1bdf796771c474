"""Nothing lost: an earlier result is never replaced silently, unusable output folders and a full
disk are clear one-line errors (exit code 2), and temporary files of killed writes are removed."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from slicewise.cli.main import main
from slicewise.engine.errors import ConfigError, OutputError
from slicewise.engine.io import atomic
from slicewise.engine.io.results import read_result, write_result
from slicewise.engine.recon.run import Reconstruction
from small_runs import gold_star, quick_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return gold_star(tmp_path_factory.mktemp("d") / "p.h5")


config = quick_config


def cli_config(tmp_path, data):
    path = tmp_path / "c.toml"
    path.write_text(f'[data]\npath = "{data.as_posix()}"\n[run]\nepochs = 1\nbackend = "numpy"\n'
                    'save_tiff = false\n')
    return path


def assert_one_line_exit_2(code, capsys, *words):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in captured.err + captured.out
    for w in words:
        assert w in err, err
    return err


def test_second_run_into_a_used_folder_is_refused(data, tmp_path):
    out = tmp_path / "out"
    Reconstruction(config(data, out, epochs=3)).run()
    before = {p: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ConfigError) as info:
        Reconstruction(config(data, out, epochs=1))
    msg = str(info.value)
    assert "run.output_dir" in msg and "--overwrite" in msg and "--resume" in msg, msg
    assert {p: p.read_bytes() for p in out.iterdir()} == before
    assert read_result(out / "result.h5")["epoch"] == 3

    # continuing the folder's own checkpoint is allowed, and so is an explicit overwrite
    rec = Reconstruction(config(data, out, epochs=4), resume=out / "checkpoint.h5")
    rec.run()
    assert read_result(out / "result.h5")["epoch"] == 4
    cfg = config(data, out, epochs=1)
    cfg.run.overwrite = True
    Reconstruction(cfg).run()
    assert read_result(out / "result.h5")["epoch"] == 1


def test_cli_refuses_a_used_folder_and_overwrite_replaces(data, tmp_path, capsys):
    cfg = cli_config(tmp_path, data)
    out = tmp_path / "o"
    assert main(["reconstruct", str(cfg), "--out", str(out)]) == 0
    capsys.readouterr()
    assert_one_line_exit_2(main(["reconstruct", str(cfg), "--out", str(out), "--epochs", "2"]),
                           capsys, "--overwrite", str(out))
    assert read_result(out / "result.h5")["epoch"] == 1
    assert main(["reconstruct", str(cfg), "--out", str(out), "--epochs", "2", "--overwrite"]) == 0
    assert read_result(out / "result.h5")["epoch"] == 2


def _read_only_folder(tmp_path):
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro
    if os.access("/sys", os.W_OK) and os.path.isdir("/sys/kernel"):
        return "/sys/kernel"  # root ignores permission bits; sysfs still refuses new files
    pytest.skip("no read-only folder available")


@pytest.mark.parametrize("kind", ["existing file", "under a file", "read-only folder"])
def test_unusable_output_folder_is_one_line(kind, data, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = {"existing file": blocker, "under a file": blocker / "sub" / "out",
           "read-only folder": None}[kind]
    if out is None:
        out = os.path.join(_read_only_folder(tmp_path), "slicewise-out")
    assert_one_line_exit_2(main(["reconstruct", str(cli_config(tmp_path, data)), "--out", str(out)]),
                           capsys, "run.output_dir", "--out")
    assert blocker.read_text() == "x"


def test_too_little_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.h5"
    write_result(path, {"delta": np.ones((4, 4), np.float32)}, epoch=1)
    before = path.read_bytes()

    class Usage:
        free = 1024 * 1024  # 1 MiB free
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda d: Usage)
    with pytest.raises(OutputError) as info:
        write_result(path, {"delta": np.ones((64, 64, 64), np.float32)}, epoch=2)
    msg = str(info.value)
    assert "MiB" in msg and "run.output_dir" in msg and "\n" not in msg, msg
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.h5"]


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))


def test_disk_full_during_a_checkpoint_is_a_clear_error(data, tmp_path):
    """A write that fails half-way (here: a file-size limit, as a full disk) ends the run with one
    line and exit code 2, no crash, the earlier checkpoint intact and no temporary file left."""
    out = tmp_path / "full"
    cfg = config(data, out, epochs=1)
    Reconstruction(cfg).run()
    before = (out / "checkpoint.h5").read_bytes()
    toml = cli_config(tmp_path, data)
    proc = subprocess.run([sys.executable, "-m", "slicewise.cli", "reconstruct", str(toml),
                           "--out", str(out), "--resume", str(out / "checkpoint.h5"), "--epochs", "3"],
                          capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert err[-1].startswith("error: ") and "run.output_dir" in err[-1], err
    assert (out / "checkpoint.h5").read_bytes() == before
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_stale_temporary_files_are_removed_at_start(data, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer runs
    stale = out / f".checkpoint.h5.{atomic._host()}-{dead.pid}.abc123.tmp"
    live = out / f".checkpoint.h5.{atomic._host()}-{os.getpid()}.abc123.tmp"
    foreign = out / ".notes.tmp"
    for p in (stale, live, foreign):
        p.write_bytes(b"partial")
    Reconstruction(config(data, out, epochs=1)).run()
    assert not stale.exists()
    assert live.exists() and foreign.exists()  # a running writer's file and files not ours stay


def test_failed_final_write_marks_the_run_failed(data, tmp_path, monkeypatch):
    """The GUI reads the state: a result that cannot be written is a failed run, with the message."""
    rec = Reconstruction(config(data, tmp_path / "o", epochs=1))

    class Usage:
        free = 0
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda d: Usage)
    with pytest.raises(OutputError, match="run.output_dir"):
        rec.run()
    assert rec.state == "failed"


# ---- one run per folder, and only files a run wrote are replaced ----------------------------

def _lock(out, **owner):
    import json
    import socket

    out.mkdir(parents=True, exist_ok=True)
    (out / ".slicewise.lock").write_text(json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "started": "earlier", **owner}))


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_a_folder_another_run_writes_into_is_refused(data, tmp_path):
    out = tmp_path / "out"
    _lock(out)  # held by a live process (this one) on this host
    with pytest.raises(ConfigError) as info:
        Reconstruction(config(data, out, epochs=1))
    msg = str(info.value)
    assert "another run is writing" in msg and f"process {os.getpid()}" in msg, msg
    assert str(out / ".slicewise.lock") in msg and not (out / "result.h5").exists()
    _lock(out, host="some-other-node")  # cannot be checked from here: refused as well
    with pytest.raises(ConfigError, match="some-other-node"):
        Reconstruction(config(data, out, epochs=1))


def test_a_stale_lock_is_replaced_and_a_run_removes_its_own(data, tmp_path):
    out = tmp_path / "out"
    _lock(out, pid=_dead_pid())  # a run killed on this host
    rec = Reconstruction(config(data, out, epochs=1))
    seen = []
    rec.add_callback(lambda ev: seen.append((out / ".slicewise.lock").read_text())
                     if ev.kind == "epoch" else None)
    rec.run()
    assert rec.state == "finished" and f'"pid": {os.getpid()}' in seen[0]
    assert not (out / ".slicewise.lock").exists()


def test_two_command_line_runs_into_one_folder_at_once(data, tmp_path):
    """The second is refused while the first writes; the first finishes undisturbed."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[data]\npath = "{data.as_posix()}"\n[run]\nepochs = 100000\nbackend = "numpy"\n'
                   'save_tiff = false\ncheckpoint_every = 1\nbatch_spots = 2\n')
    out = tmp_path / "o"
    launch = [sys.executable, "-m", "slicewise.cli", "reconstruct", str(cfg), "--out", str(out)]
    first = subprocess.Popen(launch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while not (out / ".slicewise.lock").exists() and time.time() < deadline:
            time.sleep(0.05)
        second = subprocess.run(launch + ["--overwrite"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert "another run is writing" in second.stderr and f"process {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        text, _ = first.communicate(timeout=60)
    assert "stopped:" in text, text[-2000:]
    assert read_result(out / "result.h5")["epoch"] >= 1
    assert not (out / ".slicewise.lock").exists()


def test_output_dir_dot_beside_config_toml_leaves_the_configuration_alone(data, tmp_path, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'# my notes\n[data]\npath = "{data.as_posix()}"\n[run]\nepochs = 1\n'
                   'backend = "numpy"\nsave_tiff = false\noutput_dir = "."\n')
    before = cfg.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert_one_line_exit_2(main(["reconstruct", str(cfg), *extra]), capsys, "config.toml")
    assert cfg.read_bytes() == before and not (tmp_path / "result.h5").exists()
    # the engine alone (e.g. the GUI) refuses a config.toml that no run wrote, too
    with pytest.raises(ConfigError, match="no Slicewise run wrote"):
        Reconstruction(config(data, tmp_path, epochs=1))
    # a configuration a run wrote is its own to rewrite: rerunning it continues its folder
    out = tmp_path / "run"
    Reconstruction(config(data, out, epochs=1, overrides={"run.output_dir": "."}), base_dir=out).run()
    written = out / "config.toml"
    assert main(["reconstruct", str(written), "--epochs", "2", "--resume",
                 str(out / "checkpoint.h5")]) == 0
    assert read_result(out / "result.h5")["epoch"] == 2


@pytest.mark.parametrize("how", ["the run's data file", "another file"])
def test_overwrite_replaces_only_slicewise_results(how, data, tmp_path, capsys):
    """--overwrite with a data file named result.h5 inside the output folder must not delete it."""
    out = tmp_path / "o"
    out.mkdir()
    import shutil

    shutil.copy(data, out / "result.h5")
    before = (out / "result.h5").read_bytes()
    cfg = cli_config(tmp_path, out / "result.h5" if how == "the run's data file" else data)
    err = assert_one_line_exit_2(main(["reconstruct", str(cfg), "--out", str(out), "--overwrite"]),
                                 capsys, "result.h5")
    assert ("data.path reads" in err) if how == "the run's data file" else ("not a Slicewise result"
                                                                             in err), err
    assert (out / "result.h5").read_bytes() == before


def test_free_disk_is_checked_before_the_first_epoch_with_a_stated_margin(data, tmp_path,
                                                                           monkeypatch):
    out = tmp_path / "o"
    rec = Reconstruction(config(data, out, epochs=3))

    class Usage:
        free = 17 * 2**20  # enough for each small file alone, not for the margin as well
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda d: Usage)
    steps = []
    rec.add_callback(lambda ev: steps.append(ev) if ev.kind == "batch" else None)
    with pytest.raises(OutputError) as info:
        rec.run()
    assert "margin of 16 MiB" in str(info.value) and "17 MiB are free" in str(info.value)
    assert steps == [] and rec.state == "failed" and not (out / "checkpoint.h5").exists()
