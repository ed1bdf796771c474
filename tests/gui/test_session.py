"""The Qt-free session model: run state machine, can-start rules, base folder, data lifetime."""

from __future__ import annotations

import sys

from slicewise.app.session import Session


class _FakeDataset:  # only what the session touches: a path and close()
    def __init__(self, path):
        self.source_path, self.closed = str(path), False

    def close(self):
        self.closed = True


def test_session_imports_no_qt():
    import subprocess
    code = ("import sys, slicewise.app.session, slicewise.app.run_host, "
            "slicewise.app.solver_process; print(any(m.startswith('PyQt') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_run_state_machine_and_can_start(tmp_path):
    s = Session()
    seen = []
    s.observe(seen.append)
    assert s.can_start() == (False, "open a data file (File \u203a Open) or set data.path")
    data = tmp_path / "d.h5"
    data.write_bytes(b"")
    s.set_form("", str(data))
    assert s.can_start() == (True, "")
    s.set_form("optimizer.lr_delta: must be >= 0", str(data))
    ok, why = s.can_start()
    assert not ok and "lr_delta" in why
    s.set_form("", str(tmp_path / "gone.h5"))
    ok, why = s.can_start()
    assert not ok and "gone.h5" in why
    s.set_form("", str(data))

    assert s.set_run_state("starting") and s.set_run_state("running")
    assert s.can_start() == (False, "")           # a run is active: no reason to show
    assert s.set_run_state("stopping")
    assert not s.set_run_state("running")          # a late "running" never undoes Stop
    assert s.run_state == "stopping"
    assert not s.set_run_state("paused")
    assert s.set_run_state("idle") and s.can_start()[0]
    assert not s.set_run_state("running")          # idle -> running skips "starting"
    assert seen.count("run_state") == 4 and "form" in seen


def test_base_dir_rule_and_output_folder(tmp_path):
    s = Session()
    s.set_form("", "relative/d.h5")
    assert s.base_dir() == str(type(tmp_path).cwd())
    s.set_form("", str(tmp_path / "data" / "d.h5"))
    assert s.base_dir() == str(tmp_path / "data")   # absolute data path: its folder
    s.set_config_path(str(tmp_path / "cfg" / "run.toml"))
    assert s.base_dir() == str(tmp_path / "cfg")    # a configuration file wins
    s.set_form("", "d.h5")
    assert s.resolved_data_path() == tmp_path / "cfg" / "d.h5"

    assert s.output_dir_problem("out") == ""        # can be created
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "blocker").write_text("x")
    assert "is a file" in s.output_dir_problem("blocker/out")
    assert "is a file" in s.output_dir_problem("blocker")


def test_dataset_lifetime(tmp_path):
    s = Session()
    a, b = _FakeDataset(tmp_path / "a.h5"), _FakeDataset(tmp_path / "b.h5")
    s.set_dataset(a)
    s.set_dataset(a)
    assert not a.closed                             # the same data set stays open
    s.set_dataset(b)
    assert a.closed and not b.closed and "b.h5" in s.title()
    s.set_result(tmp_path / "out" / "result.h5")
    assert "out/result.h5" in s.title()
    s.close()
    assert b.closed and s.dataset is None
