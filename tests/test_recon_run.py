"""The Reconstruction run object: events, threads, checkpoints, resume, divergence, products."""

from __future__ import annotations

import math
import shutil
import threading
import time

import numpy as np
import pytest
import tifffile

from slicewise.engine.errors import ConfigError, DataFileError, DivergenceError
from slicewise.engine.geometry import Geometry
from slicewise.engine.io.datafile import Dataset
from slicewise.engine.io.results import read_result
from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.recon.loop import checkpoint as checkpoint_mod
from slicewise.engine.recon.config import ReconConfig
from slicewise.engine.recon.run import ProgressEvent, Reconstruction
from slicewise.engine.simulate import SimulationConfig, simulate_arrays

N_SPOTS = 25          # 5 x 5 raster
BATCH = 5             # -> 5 minibatches per epoch


@pytest.fixture(scope="module")
def small_ptycho():
    """A tiny gold Siemens star (32x32, 16x16 frames, 25 spots): ~10 ms per epoch."""
    sim = SimulationConfig(modality="ptycho", phantom=PhantomSpec(kind="siemens"),
                           object_shape=(1, 32, 32), material="gold", pixel_size_m=10e-9,
                           slice_thickness_m=200e-9, probe_shape=(16, 16), probe_size_px=3.0,
                           probe_defocus_m=50e-6, scan_step_px=4.0, photons=1e5, seed=1)
    s = simulate_arrays(sim, "numpy")
    assert s["intensities"].shape == (1, N_SPOTS, 16, 16)
    return s


def dataset(s) -> Dataset:
    return Dataset.from_arrays(s["intensities"],
                               Geometry(modality="farfield", energy_ev=s["energy_ev"],
                                        pixel_size_m=s["pixel_size_m"],
                                        slice_thickness_m=s["slice_thickness_m"],
                                        positions_px=s["positions_px"], object_shape_yx=(32, 32)),
                               probe=s["probe"], truth=s["truth"])


def config(out, **kw) -> ReconConfig:
    cfg = ReconConfig()
    cfg.run.backend = "numpy"
    cfg.run.output_dir = str(out)
    cfg.run.batch_spots = BATCH
    cfg.run.epochs = 6
    cfg.run.checkpoint_every = 2
    cfg.run.save_tiff = False
    cfg.optimizer.lr_delta = 1e-6
    for path, value in kw.items():
        group, key = path.split("__")
        setattr(getattr(cfg, group), key, value)
    return cfg


def leftovers(folder) -> list[str]:
    """Temporary files of atomic writes (``.name.XXXX.tmp``) left in ``folder``."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_events_checkpoints_and_products(tmp_path, small_ptycho):
    out = tmp_path / "out"
    rec = Reconstruction(config(out, run__save_tiff=True), dataset(small_ptycho))
    assert rec.state == "ready" and rec.epoch == 0
    events: list[ProgressEvent] = []
    ckpt_epochs = []

    def on_event(ev):
        events.append(ev)
        if ev.kind == "checkpoint":  # complete and readable when announced
            res = read_result(rec.checkpoint_path)
            ckpt_epochs.append(res["epoch"])
            assert res["kind"] == "checkpoint" and ev.message == str(rec.checkpoint_path)
            assert np.all(np.isfinite(res["params"]["delta"]))

    rec.add_callback(on_event)
    rec.add_callback(lambda ev: 1 / 0)  # a broken observer must not stop the run
    assert rec.run() == rec.result_path
    assert rec.state == "finished" and rec.epoch == 6

    batches = [e for e in events if e.kind == "batch"]
    epochs = [e for e in events if e.kind == "epoch"]
    states = [e.state for e in events if e.kind == "state"]
    assert len(batches) == 6 * N_SPOTS // BATCH
    assert [(e.epoch, e.batch) for e in batches[:6]] == [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 1)]
    assert all(e.n_batches == 5 and e.n_epochs == 6 and math.isfinite(e.loss) and "data" in e.terms
               for e in batches)
    assert [e.epoch for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert all(b.elapsed_s <= a.elapsed_s for b, a in zip(epochs, epochs[1:]))
    assert all(math.isfinite(e.eta_s) for e in epochs) and epochs[-1].eta_s == 0
    assert states[0] == "running" and states[-1] == "finished"
    assert ckpt_epochs == [2, 4]  # every 2 epochs; the end writes checkpoint + result anyway

    # the loss decreases (noisy 1e5-photon data: the data term halves within 6 epochs)
    losses = [h["loss"] for h in rec.history]
    print("losses", [f"{v:.4g}" for v in losses])
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]
    assert rec.batch_losses[-1] < rec.batch_losses[0]

    res = read_result(rec.result_path)
    assert res["kind"] == "result" and res["epoch"] == 6 and len(res["loss"]["total"]) == 6
    np.testing.assert_allclose(res["loss"]["total"], losses)
    assert read_result(rec.checkpoint_path)["epoch"] == 6
    assert rec.peak_memory_bytes > 0 and res["extra"]["peak_memory_bytes"] == rec.peak_memory_bytes
    for name in ("delta", "beta"):
        vol = tifffile.imread(out / f"{name}.tif")  # a single slice reads back squeezed
        assert vol.dtype == np.float32 and vol.size == 32 * 32
        np.testing.assert_array_equal(vol.reshape(1, 32, 32), res["params"][name].astype(np.float32))
    assert (out / "config.toml").is_file()
    assert leftovers(out) == []

    snap = rec.snapshot(frame=(0, 3))
    assert snap.epoch == 6 and snap.measured.shape == snap.modelled.shape == (16, 16)
    assert snap.truth["delta"].shape == (1, 32, 32) and len(snap.history) == 6


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, small_ptycho, monkeypatch):
    """A crash while writing a checkpoint leaves the previous one intact (temporary file +
    rename): the write after epoch 4 fails half-way, the epoch-2 checkpoint survives."""
    out = tmp_path / "out"
    real = checkpoint_mod.write_result
    calls = []

    def flaky(path, params, **kw):
        calls.append(kw["epoch"])
        if kw["epoch"] == 4:  # an unstorable value makes h5py fail in the middle of the file
            kw = {**kw, "extra": {**kw["extra"], "zz_broken": np.array([object()])}}
        return real(path, params, **kw)

    monkeypatch.setattr(checkpoint_mod, "write_result", flaky)
    rec = Reconstruction(config(out), dataset(small_ptycho))
    with pytest.raises(DataFileError):
        rec.run()
    assert calls == [2, 4] and rec.state == "failed"
    res = read_result(rec.checkpoint_path)
    assert res["epoch"] == 2 and res["kind"] == "checkpoint"
    assert leftovers(out) == [] and not rec.result_path.exists()


def _wait(cond, timeout=10.0):
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > timeout:
            raise AssertionError("timed out waiting")
        time.sleep(0.002)


def test_pause_resume_stop_from_another_thread(tmp_path, small_ptycho):
    rec = Reconstruction(config(tmp_path / "out", run__epochs=10_000), dataset(small_ptycho))
    batches = []
    states = []

    def on_event(ev):
        if ev.kind == "batch":
            batches.append((ev.epoch, ev.batch))
            time.sleep(0.002)  # a few ms per minibatch, as in a real run
        elif ev.kind == "state":
            states.append(ev.state)

    rec.add_callback(on_event)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("path", rec.run()), daemon=True)
    worker.start()
    _wait(lambda: len(batches) >= 3)

    rec.pause()
    n_at_pause = len(batches)
    _wait(lambda: rec.state == "paused")
    n_paused = len(batches)
    assert n_paused - n_at_pause <= 1  # the minibatch in flight finishes, no more
    time.sleep(0.3)
    assert len(batches) == n_paused and rec.state == "paused"
    snap = rec.snapshot(frame=None)  # live views keep working while paused
    assert snap.delta.shape == (1, 32, 32)

    rec.resume()
    _wait(lambda: len(batches) >= n_paused + 3)
    assert rec.state == "running"

    rec.pause()
    _wait(lambda: rec.state == "paused")
    rec.stop()  # stopping a paused run releases it
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert rec.state == "stopped" and result["path"] == rec.result_path
    assert states[:2] == ["running", "paused"] and states[-1] == "stopped"
    res = read_result(rec.result_path)
    assert res["epoch"] == rec.epoch < 10_000

    # stop while running: at most the minibatch in flight completes
    rec2 = Reconstruction(config(tmp_path / "out2", run__epochs=10_000), dataset(small_ptycho))
    seen = []
    rec2.add_callback(lambda ev: (seen.append(ev.batch), time.sleep(0.002)) if ev.kind == "batch" else None)
    worker = threading.Thread(target=rec2.run, daemon=True)
    worker.start()
    _wait(lambda: len(seen) >= 7)
    rec2.stop()
    n_stop = len(seen)
    worker.join(timeout=10)
    assert not worker.is_alive() and rec2.state == "stopped"
    assert len(seen) - n_stop <= 1
    # a partial epoch is not counted: the files hold whole epochs
    assert read_result(rec2.checkpoint_path)["epoch"] == rec2.epoch == len(rec2.history)


def test_resume_continues_with_identical_parameters(tmp_path, small_ptycho):
    """Resuming from the epoch-2 checkpoint of a 4-epoch run (object, probe and positions refined,
    Adam moments restored, same minibatch order) reproduces the uninterrupted run bit for bit."""
    # positions by gradient steps (position_search_px = 0), so that the optimiser holds them;
    # registration passes are resumed in tests/test_position_correction.py
    kw = dict(run__epochs=4, refine__probe=True, refine__probe_start_epoch=1, refine__positions=True,
              refine__positions_start_epoch=1, refine__position_search_px=0.0)
    a_out = tmp_path / "a"
    rec_a = Reconstruction(config(a_out, **kw), dataset(small_ptycho))
    saved = tmp_path / "epoch2.h5"
    rec_a.add_callback(lambda ev: shutil.copy(rec_a.checkpoint_path, saved)
                       if ev.kind == "checkpoint" else None)
    rec_a.run()
    final_a = rec_a.snapshot(None)
    assert not (a_out / "delta.tif").exists()  # run.save_tiff = false

    ck = read_result(saved)
    assert ck["epoch"] == 2 and set(ck["optimizer"]["state"]) >= {"delta", "probe", "positions"}
    rec_b = Reconstruction(config(tmp_path / "b", **kw), dataset(small_ptycho), resume=saved)
    assert rec_b.epoch == 2 and len(rec_b.history) == 2
    start = rec_b.snapshot(None)
    for name in ("delta", "beta", "probe", "positions"):
        np.testing.assert_array_equal(getattr(start, name), ck["params"][name])
    epochs_seen = []
    rec_b.add_callback(lambda ev: epochs_seen.append(ev.epoch) if ev.kind == "epoch" else None)
    rec_b.run()
    assert epochs_seen == [3, 4] and rec_b.epoch == 4
    final_b = rec_b.snapshot(None)
    for name in ("delta", "beta", "probe", "positions"):
        np.testing.assert_array_equal(getattr(final_b, name), getattr(final_a, name), err_msg=name)
    np.testing.assert_allclose([h["loss"] for h in rec_b.history], [h["loss"] for h in rec_a.history],
                               rtol=1e-6)
    assert not np.array_equal(final_b.positions, final_b.initial_positions)  # positions did move


def test_divergence_raises_and_keeps_the_last_good_checkpoint(tmp_path, small_ptycho):
    """After epoch 2 the delta learning rate becomes absurd (1e37: the phase overflows float32 and
    the loss turns NaN). The run raises DivergenceError naming the learning rates; the checkpoint
    holds the finite epoch-2 estimate, and a resumed run with a sane rate carries on."""
    out = tmp_path / "out"
    rec = Reconstruction(config(out, run__epochs=6, run__checkpoint_every=1), dataset(small_ptycho))
    good = {}

    def on_event(ev):
        if ev.kind == "epoch" and ev.epoch == 2:
            good["delta"] = rec.snapshot(None).delta
            rec.apply_changes({"optimizer.lr_delta": 1e37})

    rec.add_callback(on_event)
    with pytest.raises(DivergenceError, match="optimizer.lr") as info:
        rec.run()
    assert str(rec.checkpoint_path) in str(info.value)
    assert rec.state == "failed" and not rec.result_path.exists()
    ck = read_result(rec.checkpoint_path)
    assert ck["epoch"] == 2 and np.all(np.isfinite(ck["params"]["delta"]))
    np.testing.assert_array_equal(ck["params"]["delta"], good["delta"])

    rec2 = Reconstruction(config(tmp_path / "again", run__epochs=4), dataset(small_ptycho),
                          resume=rec.checkpoint_path)
    rec2.run()
    assert rec2.epoch == 4 and np.all(np.isfinite(rec2.snapshot(None).delta))
    assert rec2.history[-1]["loss"] < rec2.history[0]["loss"]


def test_apply_changes_only_for_safe_fields(tmp_path, small_ptycho):
    rec = Reconstruction(config(tmp_path / "out"), dataset(small_ptycho))
    rec.apply_changes({"optimizer.lr_delta": 5e-7, "run.epochs": 3})
    assert rec.optimizer.lrs["delta"] == 5e-7 and rec.n_epochs == 3
    with pytest.raises(ConfigError, match="run.backend"):
        rec.apply_changes({"run.backend": "numpy"})
    with pytest.raises(ConfigError, match="optimizer.lr_delat"):
        rec.apply_changes({"optimizer.lr_delat": 1.0})


def test_lbfgs_reuses_the_evaluation_at_the_accepted_point(tmp_path, small_ptycho):
    """L-BFGS on full batches: the loss and gradient at the point a step accepted are the next
    step's first evaluation, so 10 steps cost 1 + (line-search evaluations), not 10 more."""
    cfg = config(tmp_path / "out", optimizer__kind="lbfgs", run__batch_spots=0, run__batch_angles=0,
                 run__epochs=10, run__checkpoint_every=0, optimizer__lr_beta=1e-8,
                 constraints__nonneg=False)  # no projection moves the accepted point
    rec = Reconstruction(cfg, dataset(small_ptycho), distributed=None)
    line_search = []
    real_step = rec.optimizer.step

    def counting_step(params, grads, closure=None, loss=None):
        def counted(trial):
            line_search.append(1)
            return closure(trial)
        return real_step(params, grads, closure=counted, loss=loss)

    rec.optimizer.step = counting_step
    rec.run()
    assert len(rec.batch_losses) == 10
    assert rec.solver.n_evaluations == 1 + len(line_search)
    # measured: 14 evaluations (10 accepted trials, 4 backtracks); 24 without the reuse
    assert rec.solver.n_evaluations <= 16
    assert rec.history[-1]["loss"] < 0.5 * rec.history[0]["loss"]


def test_lbfgs_evaluates_again_when_a_projection_moved_the_point(tmp_path, small_ptycho):
    cfg = config(tmp_path / "out", optimizer__kind="lbfgs", run__batch_spots=0, run__batch_angles=0,
                 run__epochs=4, run__checkpoint_every=0, optimizer__lr_beta=1e-8,
                 constraints__nonneg=True)
    rec = Reconstruction(cfg, dataset(small_ptycho), distributed=None)
    clipped = []
    real_apply = rec.projections.apply

    def watching_apply(params, old_positions=None):
        before = params["delta"].copy()
        real_apply(params, old_positions)
        clipped.append(not np.array_equal(before, params["delta"]))

    rec.projections.apply = watching_apply
    rec.run()
    assert all(clipped)  # delta < 0 appeared in every step (measured) and was clipped ...
    # ... so every step evaluated its own starting point again
    assert rec.solver.n_evaluations >= 4 + 4


def test_apply_changes_from_another_thread_while_running(tmp_path, small_ptycho):
    """A change made while the solver runs (not paused) applies from the next step: with the
    object's rates set to 0 the object stops changing, and the result file records the values."""
    rec = Reconstruction(config(tmp_path / "out", run__epochs=10_000, run__checkpoint_every=0),
                         dataset(small_ptycho))
    batches = []
    rec.add_callback(lambda ev: batches.append(ev.batch) if ev.kind == "batch" else None)
    worker = threading.Thread(target=rec.run, daemon=True)
    worker.start()
    try:
        _wait(lambda: len(batches) >= 3)
        assert rec.snapshot(None).delta.max() > 0  # the object moved away from the empty start
        assert rec.state == "running"
        rec.apply_changes({"optimizer.lr_delta": 0.0, "optimizer.lr_beta": 0.0})
        n = len(batches)
        _wait(lambda: len(batches) >= n + 2)  # the step in flight when the change came, and one more
        frozen = rec.snapshot(None).delta
        _wait(lambda: len(batches) >= n + 6)
        np.testing.assert_array_equal(rec.snapshot(None).delta, frozen)
        assert rec.optimizer.lrs["delta"] == 0.0 and rec.state == "running"
    finally:
        rec.stop()
        worker.join(timeout=20)
    assert rec.state == "stopped"
    assert "lr_delta = 0.0" in read_result(rec.result_path)["config_toml"]


def test_lazy_frames_give_the_same_run_as_preloaded_ones(tmp_path, small_ptycho, monkeypatch):
    """Data sets above the preload limit are read minibatch by minibatch from the data set: the
    same minibatches, the same steps, the same estimate."""
    from slicewise.engine.recon import problem as problem_mod

    ds = dataset(small_ptycho)
    eager = Reconstruction(config(tmp_path / "eager", run__epochs=3), ds)
    assert eager.problem.measured is not None
    eager.run()
    reads = []
    real_frames = ds.frames
    monkeypatch.setattr(ds, "frames", lambda a=None, s=None: reads.append(1) or real_frames(a, s))
    monkeypatch.setattr(problem_mod, "PRELOAD_LIMIT_BYTES", 0)
    lazy = Reconstruction(config(tmp_path / "lazy", run__epochs=3), ds)
    assert lazy.problem.measured is None
    n_setup = len(reads)
    lazy.run()
    assert len(reads) - n_setup >= 3 * N_SPOTS // BATCH  # one read per minibatch at least
    np.testing.assert_allclose(lazy.snapshot(None).delta, eager.snapshot(None).delta, rtol=1e-5,
                               atol=1e-12)
    assert [h["loss"] for h in lazy.history] == pytest.approx([h["loss"] for h in eager.history],
                                                              rel=1e-5)


def test_auto_support_inside_a_run(tmp_path, small_ptycho):
    """constraints.support = auto: from support_start_epoch on, delta and beta are zero outside
    the thresholded, smoothed estimate; the star's support is part of the grid, not all of it."""
    rec = Reconstruction(config(tmp_path / "out", run__epochs=5, constraints__support="auto",
                                constraints__support_start_epoch=2,
                                constraints__support_threshold=0.3),
                         dataset(small_ptycho))
    supports = []
    rec.add_callback(lambda ev: supports.append(None if rec.projections.support is None
                                                else np.array(rec.projections.support))
                     if ev.kind == "epoch" else None)
    rec.run()
    assert supports[0] is None and supports[1] is not None  # computed after epoch 2
    support = supports[-2]  # the one computed after epoch 4, applied through epoch 5
    assert 0.05 < support.mean() < 0.95
    snap = rec.snapshot(None)
    assert np.all(snap.delta[~support] == 0) and np.all(snap.beta[~support] == 0)
    assert snap.delta[support].max() > 0


def test_complex_object_is_exported_as_amplitude_and_phase_tiffs(tmp_path, small_ptycho):
    rec = Reconstruction(config(tmp_path / "out", run__epochs=2, run__save_tiff=True,
                                model__object_param="complex", optimizer__lr_object=1e-2),
                         dataset(small_ptycho))
    rec.run()
    obj = rec.snapshot(None).object
    amp = tifffile.imread(tmp_path / "out" / "object_amplitude.tif")
    phase = tifffile.imread(tmp_path / "out" / "object_phase.tif")
    np.testing.assert_allclose(amp, np.abs(obj).squeeze(), rtol=1e-6)
    np.testing.assert_allclose(phase, np.angle(obj).squeeze(), atol=1e-6)
    assert np.ptp(phase) > 0  # the reconstruction moved the phase away from the flat start
