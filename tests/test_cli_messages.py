"""Faults a user can cause end as one line naming the field and the fix, exit code 2, no traceback."""

from __future__ import annotations

import importlib.util

import pytest

from slicewise.cli.main import main
from small_runs import gold_star


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return gold_star(tmp_path_factory.mktemp("d") / "p.h5")


def write_config(folder, data, extra=""):
    path = folder / "c.toml"
    path.write_text(f'[data]\npath = "{data.as_posix()}"\n{extra}[run]\nepochs = 1\n'
                    'backend = "numpy"\nsave_tiff = false\n')
    return path


def assert_one_line_exit_2(argv, capsys, *words):
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, captured.err + captured.out[-500:]
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in captured.err + captured.out
    for w in words:
        assert w in err, err
    return err


def test_configuration_not_utf8(tmp_path, capsys):
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes('[data]\npath = "Messung_März.h5"\n'.encode("latin-1"))
    assert_one_line_exit_2(["reconstruct", str(cfg)], capsys, "UTF-8", str(cfg))


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cupy_backend_without_cupy(data, tmp_path, capsys):
    assert_one_line_exit_2(["reconstruct", str(write_config(tmp_path, data)), "--backend", "cupy",
                     "--out", str(tmp_path / "o")], capsys, "--backend", "numpy")
    assert not (tmp_path / "o").exists()


def test_resume_with_another_optimizer(data, tmp_path, capsys):
    cfg = write_config(tmp_path, data, extra='[optimizer]\nkind = "adam"\n')
    assert main(["reconstruct", str(cfg), "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    other = write_config(tmp_path, data, extra='[optimizer]\nkind = "momentum"\n')
    assert_one_line_exit_2(["reconstruct", str(other), "--out", str(tmp_path / "b"), "--resume",
                     str(tmp_path / "a" / "checkpoint.h5")], capsys, "optimizer.kind", "'adam'")
