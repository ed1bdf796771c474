"""Results made on the command line, opened in a fresh window (issue 23, defects 1, 2 and 5):
they show their volume, loss (and validation loss, best epoch), probe, positions and
configuration; their data file is found wherever it can be; a resume that has nothing left to do
says so and offers more epochs."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from slicewise.engine.recon import config as cfgmod
from slicewise.engine.recon.run import Reconstruction

from .conftest import fast_run, open_data, wait_idle


def _cli_run(data: Path, cfg_dir: Path, out: Path, epochs: int = 2, relative: bool = True) -> Path:
    """What ``slicewise reconstruct cfg_dir/run.toml --out out`` does: a configuration beside a
    copy of the data (data.path relative to it, or absolute), a result in ``out``."""
    cfg_dir.mkdir(parents=True, exist_ok=True)
    local = cfg_dir / data.name
    shutil.copy(data, local)
    cfg = cfgmod.ReconConfig()
    cfg.data.path = data.name if relative else str(local)
    cfg.run.output_dir, cfg.run.epochs = str(out), epochs
    cfg.run.backend, cfg.run.save_tiff, cfg.run.checkpoint_every = "numpy", False, 1
    cfgmod.to_toml(cfg, cfg_dir / "run.toml")
    Reconstruction(cfg, base_dir=cfg_dir, distributed=None).run()
    return out / "result.h5"


def _add_validation(result: Path, values, best: int) -> None:
    """The validation loss and best epoch the engine writes once held-out frames exist (the
    shared contract: /loss/validation, NaN where absent; root attribute best_epoch)."""
    with h5py.File(result, "r+") as f:
        f["loss/validation"] = np.asarray(values, np.float64)
        f.attrs["best_epoch"] = best


def test_result_opens_with_everything_in_a_fresh_window(qtbot, window, ptycho_file, tmp_path,
                                                        dialogs):
    result = _cli_run(ptycho_file, tmp_path / "cfg", tmp_path / "cfg" / "out", epochs=3)
    _add_validation(result, [np.nan, 2e-3, 3e-3], best=2)
    w = window
    w.open_path(str(result))
    # the result's data set is opened after it, on a thread: it must not clear the views
    qtbot.waitUntil(lambda: w.dataset is not None and w.result_path is not None, timeout=15000)
    qtbot.wait(200)
    assert not dialogs.errors, dialogs.errors
    assert w.slice_view.has_data(), w.slice_view.plot.titleLabel.text
    assert "after 3 epochs" in w.slice_view.plot.titleLabel.text
    w.loss_view.refresh()
    assert w.loss_view.epochs == [1, 2, 3]
    assert "no run yet" not in w.loss_view.summary.text()
    # validation loss: its own curve (NaN where absent) and the best epoch marked
    x, y = w.loss_view.validation_curve.getData()
    assert list(x[np.isfinite(y)]) == [2.0, 3.0]
    assert w.loss_view.best_line.isVisible() and w.loss_view.best_line.value() == 2
    assert "best epoch 2" in w.loss_view.summary.text()
    assert w.probe_view.has_data() and w.probe_view.amp_img.image.shape == (16, 16)
    assert w.positions_view.has_data() and "25 positions" in w.positions_view.info.text()
    assert w.params.value("run.epochs") == 3
    assert Path(w.params.value("data.path")) == (tmp_path / "cfg" / ptycho_file.name).resolve()
    assert w.act_start.isEnabled()


def test_data_path_found_from_another_folder(qtbot, window, holo_file, tmp_path, dialogs,
                                             monkeypatch):
    """The configuration's folder is neither the result's folder nor its parent (``--out``
    elsewhere): the absolute path stored in the result finds the data."""
    monkeypatch.chdir(tmp_path)
    result = _cli_run(holo_file, tmp_path / "project" / "cfg", tmp_path / "results" / "run1")
    w = window
    w.open_path(str(result))
    qtbot.waitUntil(lambda: w.dataset is not None, timeout=15000)
    assert Path(w.dataset.source_path).resolve() == (tmp_path / "project" / "cfg" /
                                                     holo_file.name).resolve()
    assert w.can_start() == (True, "")
    assert not dialogs.errors, dialogs.errors


def test_data_path_found_next_to_the_result(qtbot, window, holo_file, tmp_path, dialogs):
    """The data moved away (its absolute path is gone) but a copy lies beside the result."""
    result = _cli_run(holo_file, tmp_path / "cfg", tmp_path / "results" / "run1", relative=False)
    shutil.move(tmp_path / "cfg" / holo_file.name, result.parent / holo_file.name)
    w = window
    w.open_path(str(result))
    qtbot.waitUntil(lambda: w.dataset is not None, timeout=15000)
    assert Path(w.dataset.source_path).resolve() == (result.parent / holo_file.name).resolve()
    assert w.can_start() == (True, "")
    assert not dialogs.errors, dialogs.errors


def test_missing_data_asks_for_the_file(qtbot, window, holo_file, tmp_path, dialogs,
                                        monkeypatch):
    from slicewise.app import dialogs as dlg_mod

    result = _cli_run(holo_file, tmp_path / "cfg", tmp_path / "results" / "run1")
    elsewhere = tmp_path / "archive" / "renamed.h5"
    elsewhere.parent.mkdir()
    shutil.move(tmp_path / "cfg" / holo_file.name, elsewhere)
    asked = []

    def choose(parent, title, file_filter):
        asked.append(title)
        return str(elsewhere)

    monkeypatch.setattr(dlg_mod, "open_file", choose)
    w = window
    w.open_path(str(result))
    qtbot.waitUntil(lambda: w.dataset is not None, timeout=15000)
    assert len(asked) == 1 and holo_file.name in asked[0]
    assert Path(w.params.value("data.path")) == elsewhere
    assert w.slice_view.has_data()
    assert w.can_start() == (True, "")


def test_data_found_beside_the_result_asks_nothing(qtbot, window, holo_file, tmp_path,
                                                   monkeypatch):
    from slicewise.app import dialogs as dlg_mod

    result = _cli_run(holo_file, tmp_path / "cfg", tmp_path / "cfg" / "out")
    monkeypatch.setattr(dlg_mod, "open_file", lambda *a: pytest.fail("no dialog expected"))
    window.open_path(str(result))
    qtbot.waitUntil(lambda: window.dataset is not None, timeout=15000)


@pytest.mark.parametrize("answer", [3, None])
def test_resume_past_the_requested_epochs_offers_more(qtbot, window, holo_file, tmp_path,
                                                      monkeypatch, dialogs, answer):
    from slicewise.app import dialogs as dlg_mod

    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=3, **{"run.checkpoint_every": 1})
    w.start_run()
    wait_idle(qtbot, w)
    ckpt = tmp_path / "out" / "checkpoint.h5"
    before = (tmp_path / "out" / "result.h5").read_bytes()

    w.params.set_value("run.epochs", 2)          # fewer than the checkpoint has done
    questions = []

    def ask(parent, done, asked):
        questions.append((done, asked))
        return answer

    monkeypatch.setattr(dlg_mod, "ask_more_epochs", ask, raising=False)  # new in issue 23
    monkeypatch.setattr(dlg_mod, "open_file", lambda *a, **k: str(ckpt))
    w.act_resume_ckpt.trigger()
    assert questions == [(3, 2)]
    if answer is None:                           # declined: nothing runs, nothing is written
        assert w.run_state == "idle" and not w.controller.is_active()
        assert (tmp_path / "out" / "result.h5").read_bytes() == before
        assert "past the 2 epochs" in w.statusBar().currentMessage()
        return
    wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
    assert w.params.value("run.epochs") == 6
    w.loss_view.refresh()
    assert w.loss_view.epochs == [1, 2, 3, 4, 5, 6]


def test_live_validation_loss_and_best_epoch(qtbot, window, holo_file, tmp_path, dialogs):
    """A run whose history records carry "validation" (held-out frames, the shared contract):
    the loss view draws it as the run goes and marks the epoch of the lowest."""
    from dataclasses import replace

    w = window
    open_data(qtbot, w, holo_file)
    fast_run(w, tmp_path / "out", epochs=3)
    w.start_run()
    wait_idle(qtbot, w)
    snap = w.last_snapshot
    history = [dict(rec, validation=v) for rec, v in zip(snap.history, (3e-3, 1e-3, 2e-3))]
    w.show_snapshot(replace(snap, history=history))   # the window's path for a run's snapshot
    w.loss_view.refresh()
    x, y = w.loss_view.validation_curve.getData()
    assert list(x) == [1.0, 2.0, 3.0] and np.allclose(y, np.log10((3e-3, 1e-3, 2e-3)))  # log axis
    assert w.loss_view.best_line.isVisible() and w.loss_view.best_line.value() == 2
    assert "validation 0.002; best epoch 2" in w.loss_view.summary.text()
    assert not dialogs.errors, dialogs.errors


def test_real_validation_loss_live_and_in_the_result(qtbot, window, holo_file, tmp_path,
                                                     make_window, dialogs):
    """A run that holds data out (run.validation_share): its validation loss is drawn while it
    runs, and again, with the best epoch the result records, when the result is opened."""
    w = window
    open_data(qtbot, w, holo_file)
    # a stated weight: no weight search, whose final fit of a single view uses every pixel
    fast_run(w, tmp_path / "out", epochs=4, **{"run.validation_share": 0.25,
                                               "regularization.tv_weight": 0.0})
    w.start_run()
    wait_idle(qtbot, w)
    assert not dialogs.errors, dialogs.errors
    w.loss_view.refresh()
    live = dict(w.loss_view.validation)
    assert sorted(live) == [1, 2, 3, 4] and all(v > 0 for v in live.values())
    w2 = make_window()
    w2.show()
    w2.open_path(str(tmp_path / "out" / "result.h5"))
    qtbot.waitUntil(lambda: w2.loss_view.epochs == [1, 2, 3, 4], timeout=15000)
    w2.loss_view.refresh()
    assert w2.loss_view.validation == pytest.approx(live)
    from slicewise.app.file_jobs import best_epoch_of
    best = best_epoch_of(str(tmp_path / "out" / "result.h5"))
    assert w2.loss_view.best_epoch == (best or min(live, key=live.get))
