"""Nothing lost: an earlier result is never replaced silently, unusable output folders and a full
disk are clear one-line errors (exit code 2), and temporary files of killed writes are removed."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

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
