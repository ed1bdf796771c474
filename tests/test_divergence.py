"""Divergence is handled: roll back, cut the step that hurt, continue; stop naming it otherwise."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.errors import DivergenceError
from slicewise.engine.io.results import read_result
from slicewise.engine.recon.config import from_toml, set_value
from slicewise.engine.recon.loop.divergence import DivergenceGuard
from slicewise.engine.recon.run import Reconstruction

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from scale_sweep import cases, correlation, example_for, write_case  # noqa: E402


def _holo_run(tmp_path, lr_delta, epochs=30):
    case = next(c for c in cases(("mid",)) if c.name == "holo4-mid")
    path, truth = write_case(case, tmp_path)
    cfg = example_for(case, path, epochs)
    for k, v in (("optimizer.kind", "adam"), ("optimizer.lr_delta", lr_delta), ("init.guess", "vacuum"),
                 ("run.checkpoint_every", 1), ("run.validation_share", 0.0)):
        set_value(cfg, k, v)
    return Reconstruction(cfg, base_dir=tmp_path), truth


def test_too_large_step_is_rolled_back_cut_and_the_run_converges(tmp_path, caplog):
    """Adam with lr_delta = 1e-3 on glass at 8 keV (delta ~ 1e-5: 100x too large a step). The
    loss on the check frames jumps 400x after the first epoch; the run goes back, quarters
    lr_delta (the parameter whose update alone hurts) and halves lr_beta, repeats, and after four
    rollbacks (measured) converges: correlation 0.99 (threshold 0.9). The rate used is what the
    saved configuration says, and no checkpoint ever held a diverged estimate."""
    rec, truth = _holo_run(tmp_path, 1e-3)
    seen = []
    rec.add_callback(lambda ev: seen.append(read_result(rec.checkpoint_path)["params"]["delta"].max())
                     if ev.kind == "checkpoint" else None)
    with caplog.at_level(logging.WARNING):
        rec.run()
    assert 1 <= rec._guard.rollbacks <= 5
    assert "optimizer.lr_delta, which moved most" in caplog.text
    lr = rec.config.optimizer.lr_delta
    assert lr < 1e-3 / 16
    assert from_toml(rec.output_dir / "config.toml").optimizer.lr_delta == lr
    c = correlation(rec.snapshot(None).delta, truth["delta"])
    assert c > 0.9, c
    assert seen and max(seen) < 1e-3  # the true delta is ~1e-5; diverged estimates reach 1e-2


def test_hopeless_divergence_stops_naming_the_rate(tmp_path):
    rec, _ = _holo_run(tmp_path, 1e30, epochs=3)
    with pytest.raises(DivergenceError, match=r"optimizer\.lr_delta was cut most") as info:
        rec.run()
    assert "rollbacks" in str(info.value)
    ck = read_result(rec.checkpoint_path)
    assert np.all(np.isfinite(ck["params"]["delta"])) and ck["params"]["delta"].max() == 0  # the start


def test_guard_thresholds_work_for_losses_of_either_sign():
    g = DivergenceGuard(solver=None)
    assert not g.epoch_diverged(-10.0)          # first reference
    assert not g.epoch_diverged(-9.0)           # a little worse than the best: fine
    assert g.epoch_diverged(25.0)               # far above |best| (Poisson likelihoods go negative)
    assert g.epoch_diverged(float("nan"))
    assert not g.batch_diverged(1.0) and g.batch_diverged(1e4) and g.batch_diverged(float("inf"))


def test_round_off_of_a_converged_fit_is_not_a_divergence():
    """Noise-free data fit to 1e-9 of the starting loss: single-precision round-off moves the loss
    by several times its value there (a two-distance cone ran into five rollbacks and stopped)."""
    g = DivergenceGuard(solver=None)
    assert not g.epoch_diverged(1.0)            # the starting estimate
    assert not g.epoch_diverged(1e-9)
    assert not g.epoch_diverged(-3e-10)         # the deviance's own round-off goes below 0
    assert not g.epoch_diverged(7e-9)           # 20x the best, still 1e-8 of the start
    assert g.epoch_diverged(1e-3)               # a real rise from there


class _StubSolver:
    """What DivergenceGuard.roll_back uses of a solver: the configuration, the optimiser's memory
    and the rates hand-over; the backend for the culprit's finiteness check."""

    def __init__(self):
        from types import SimpleNamespace

        from slicewise.engine.recon.config import ReconConfig
        from slicewise.engine.recon.plan import RunPlan
        cfg = ReconConfig()
        cfg.optimizer.lr_delta = 1.0
        self.plan = RunPlan(cfg)
        self.config = self.plan.config
        self.problem = SimpleNamespace(backend=SimpleNamespace(xp=np))

    @property
    def optimizer(self):
        """The configured optimiser's class: the guard reads only what kind of steps it takes."""
        from slicewise.engine.recon.loop.optimizers import OPTIMIZERS, Optimizer
        return OPTIMIZERS.get(self.config.optimizer.kind, Optimizer)

    def restore(self, memory):
        pass

    def update_learning_rates(self):
        pass


def test_rollbacks_separated_by_progress_do_not_stop_a_run():
    """Near convergence a fixed-rate Adam's check loss fluctuates and each rise rolls back, halving
    the rates (the sweep's SiO2 star: 3 rollbacks in 150 epochs, each after a new best): eight of
    them, each followed by a better estimate, go on; six in a row stop the run, naming the rate."""
    g = DivergenceGuard(_StubSolver())
    params, good = {"delta": np.ones(3)}, {"delta": np.ones(3)}
    assert not g.epoch_diverged(1.0)
    loss = 1.0
    for _ in range(8):
        assert g.epoch_diverged(10 * loss)
        g.roll_back(params, good, ["delta"], "test", "-")
        loss /= 2
        assert not g.epoch_diverged(loss)       # a new best: the streak starts again
    assert g.rollbacks == 8 and g.streak == 0
    with pytest.raises(DivergenceError, match=r"optimizer\.lr_delta was cut most"):
        for _ in range(6):
            g.roll_back(params, good, ["delta"], "test", "-")
    assert g.streak == 6


def test_refining_the_file_probe_of_a_weak_object_needs_no_rollback(tmp_path, caplog):
    """Noise-free 2D ptychography of a PMMA foam (2e-5 rad per pixel) with the probe from the file,
    refined from epoch 2 as the example configuration does. A probe rate floored at a thousandth of
    its amplitude diverged when the refinement started and rolled back 4 times in the sweep's 60
    epochs (each rollback halving the object's rate too; correlation
    0.983); the floor is now cut until Adam's first probe step does not raise the loss: no
    rollback, correlation 0.9999 (measured; threshold 0.99)."""
    case = next(c for c in cases(("weak",)) if c.name == "ptycho2d-weak")
    path, truth = write_case(case, tmp_path)
    rec = Reconstruction(example_for(case, path, 30), base_dir=tmp_path)
    with caplog.at_level(logging.INFO):
        rec.run()
    assert rec.config.optimizer.kind == "adam" and rec.config.refine.probe
    assert rec._guard.rollbacks == 0, caplog.text
    assert "kept below the floor" in rec.plan.reasons()["optimizer.lr_probe"]
    c = correlation(rec.snapshot(None).delta, truth["delta"])
    assert c >= 0.99, c


def test_a_rollback_returns_to_the_moments_of_the_good_estimate(tmp_path, caplog):
    """Noise-free 2D ptychography of SiO2 glass with Adam and the file's probe refined: near
    convergence (epoch ~50) the check loss rises 5x once. The rollback used to forget Adam's
    moments, so the repeated epoch began with sign-like steps of the full rate on every element
    and diverged again, 4 rollbacks in a row (measured); it now goes back to the moments of the
    start of the epoch as well: 1 rollback (threshold 2), correlation 1.000 (threshold 0.99)."""
    case = next(c for c in cases(("mid",)) if c.name == "ptycho2d-mid")
    path, truth = write_case(case, tmp_path)
    rec = Reconstruction(example_for(case, path, 60), base_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        rec.run()
    assert rec.config.optimizer.kind == "adam"
    assert rec._guard.rollbacks <= 2, caplog.text
    assert correlation(rec.snapshot(None).delta, truth["delta"]) >= 0.99
    # the mechanism: the memory handed to roll_back is what the optimiser holds afterwards
    solver = rec.solver
    memory = solver.memory()
    good = {k: v.copy() for k, v in rec.problem.params.items()}
    solver.optimizer.state["delta"]["m"] += 1.0
    rec._guard.roll_back(rec.problem.params, good, ["delta"], "test", "-", memory=memory)
    np.testing.assert_array_equal(solver.optimizer.state["delta"]["m"], memory["delta"]["m"])
    assert solver.optimizer.state["delta"]["m"] is not memory["delta"]["m"]
    rec._guard.roll_back(rec.problem.params, good, ["delta"], "test", "-")
    assert solver.optimizer.state == {}


def test_a_plateau_above_the_best_halves_adams_rates():
    """Accepted epochs that wander above the best check loss: after STALL_EPOCHS of them, ending
    more than STALL_RISE above the best, the rates are halved without a rollback; a plateau near
    the best, or L-BFGS (its line search picks the step), is left alone. The guard's memory of it
    survives a checkpoint."""
    from slicewise.engine.recon.loop.divergence import STALL_EPOCHS, STALL_RISE

    solver = _StubSolver()
    solver.config.optimizer.kind = "adam"
    g = DivergenceGuard(solver)
    for loss in (1.0, 0.5):
        assert not g.epoch_diverged(loss) and not g.stalled()
    for k in range(STALL_EPOCHS):                # just above the best: a normal fluctuation
        assert not g.epoch_diverged(0.5 * (1 + 0.5 * (STALL_RISE - 1)))
    assert g.since_best == STALL_EPOCHS and not g.stalled()
    assert not g.epoch_diverged(0.5 * (STALL_RISE + 0.1))   # then well above it
    assert g.stalled()
    fresh = DivergenceGuard(solver)
    for loss in (1.0, 0.5):
        fresh.epoch_diverged(loss)
    for k in range(STALL_EPOCHS):                # well above the best from the start: after
        assert not fresh.stalled()               # STALL_EPOCHS of them
        assert not fresh.epoch_diverged(0.5 * (STALL_RISE + 0.1 * (k + 1)))
    assert fresh.stalled()
    saved = g.state_dict()
    g.cut_for_stall(["delta"], "epoch 7")
    assert solver.config.optimizer.lr_delta == 0.5 and g.cuts == {"delta": 1}
    assert g.rollbacks == 0 and not g.stalled()  # counted again from here

    again = DivergenceGuard(_StubSolver())
    again.solver.config.optimizer.kind = "adam"
    again.load_state_dict(saved)
    assert again.stalled() and again.best == 0.5

    lbfgs = DivergenceGuard(_StubSolver())
    lbfgs.solver.config.optimizer.kind = "lbfgs"
    for loss in (1.0, 0.5, 2.0, 2.0, 2.0, 2.0):
        lbfgs.epoch_diverged(loss)
    assert not lbfgs.stalled()


def test_cone_demo_loss_keeps_falling_after_a_plateau_cut(tmp_path, caplog):
    """The cone demo's Adam rate, right for its first epochs, makes the loss wander up from epoch
    ~10 (measured without the stall rule: epoch losses 4.2e-6 at epoch 10, 5.5e-6 at epoch 20,
    until a rollback at epoch 22). With it, the rates are halved once the check loss has stayed
    above its best for three epochs, and the loss keeps falling (measured: 2.1e-6 at epoch 20,
    the first loss 1.2e-5)."""
    from slicewise.engine import demo

    data = demo.ensure_demo_data(tmp_path / "data", backend="numpy")
    cfg = demo.demo_config(data, tmp_path / "out")
    cfg.run.epochs, cfg.run.backend, cfg.run.save_tiff = 20, "numpy", False
    cfg.run.validation_share = 0.0   # the check-loss rule alone (no held-out data, no search)
    rec = Reconstruction(cfg, base_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        rec.run()
    assert "stayed above its best" in caplog.text and rec._guard.rollbacks == 0
    losses = [h["loss"] for h in rec.history]
    assert losses[-1] < 0.7 * losses[9], losses    # measured 0.50; without the rule 1.3
    saved = from_toml(rec.output_dir / "config.toml").optimizer.lr_delta
    assert saved == rec.config.optimizer.lr_delta and rec._guard.cuts.get("delta", 0) >= 1
