"""MPI data parallelism: two ranks give the same reconstruction as one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.simulate import SimulationConfig, simulate
from small_runs import gold_star

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (install the 'mpi' extra)")
WORKER = Path(__file__).parent / "helpers" / "mpi_reconstruct.py"


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env, cwd=tmp_path)  # a hang fails here
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("overrides", [{}, {"regularization.tv_weight": 0.01}],
                         ids=["plain", "relative tv weight"])
def test_two_ranks_match_one_process(overrides, tmp_path):
    """With a penalty too: its weight is relative to the data loss, which each rank sees only a
    part of; the scale must be the whole minibatch's, as in one process."""
    data = simulate(SimulationConfig(modality="holo", n_angles=12, object_shape=(16, 16, 16)),
                    tmp_path / "holo.h5", "numpy")
    extra = [json.dumps(overrides)] if overrides else []
    _run([sys.executable, str(WORKER), str(data), str(tmp_path / "one"), str(tmp_path / "one.json"),
          *extra], tmp_path)
    _run([MPIEXEC, "-n", "2", sys.executable, str(WORKER), str(data), str(tmp_path / "two"),
          str(tmp_path / "two.json"), *extra], tmp_path)
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert one["ranks"] == 1 and two["ranks"] == 2
    # same minibatches split over ranks and summed: identical up to summation order
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-9)
    np.testing.assert_allclose(two["delta"], one["delta"], rtol=1e-8, atol=1e-15)
    assert max(one["delta"]) > 0  # the reconstruction moved away from the empty start
    if overrides:  # the penalty took part, at the same scale on both
        assert one["terms"]["tv"] > 0
        assert two["terms"]["tv"] == pytest.approx(one["terms"]["tv"], rel=1e-9)
    # only rank 0 wrote results
    assert (tmp_path / "two" / "result.h5").exists()


def _data(tmp_path, modality):
    if modality == "holo":
        return simulate(SimulationConfig(modality="holo", n_angles=3, object_shape=(8, 8, 8)),
                        tmp_path / "holo.h5", "numpy")
    return gold_star(tmp_path / "ptycho.h5")


# minibatches smaller than the number of ranks leave some ranks without frames in some steps
UNEVEN = {
    "holo, 2 ranks, batch_angles 1": ("holo", 2, {"run.batch_angles": 1}),
    "holo, 3 ranks, batch_angles 2, tv": ("holo", 3, {"run.batch_angles": 2,
                                                      "regularization.tv_weight": 1e-3}),
    "ptycho, 2 ranks, batch_spots 1": ("ptycho", 2, {"run.batch_spots": 1, "run.epochs": 1}),
    "ptycho, 3 ranks, batch_spots 2, tv": ("ptycho", 3, {"run.batch_spots": 2, "run.epochs": 1,
                                                         "regularization.tv_weight": 1e-3}),
}


@pytest.mark.parametrize("case", sorted(UNEVEN))
def test_ranks_without_frames_do_not_hang(case, tmp_path):
    """Every rank makes the same collective calls, so empty shares neither hang nor change the result."""
    modality, ranks, overrides = UNEVEN[case]
    data = _data(tmp_path, modality)
    extra = json.dumps(overrides)
    _run([sys.executable, str(WORKER), str(data), str(tmp_path / "one"), str(tmp_path / "one.json"),
          extra], tmp_path)
    _run([MPIEXEC, "-n", str(ranks), sys.executable, str(WORKER), str(data), str(tmp_path / "many"),
          str(tmp_path / "many.json"), extra], tmp_path)
    one = json.loads((tmp_path / "one.json").read_text())
    many = json.loads((tmp_path / "many.json").read_text())
    assert many["ranks"] == ranks
    assert many["loss"] == pytest.approx(one["loss"], rel=1e-9)
    assert many["terms"].keys() == one["terms"].keys()
    np.testing.assert_allclose(many["delta"], one["delta"], rtol=1e-7, atol=1e-15)
    assert max(one["delta"]) > 0


LAUNCH = "import sys\nfrom slicewise.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"


STOPS = {"Ctrl-C in the terminal": 130, "SIGTERM to mpiexec": 143,
         "SIGHUP to slicewise --ranks and its mpiexec": 129}


@pytest.mark.parametrize("ranks, how", [(2, "Ctrl-C in the terminal"), (3, "Ctrl-C in the terminal"),
                                        (3, "SIGTERM to mpiexec"),
                                        (2, "SIGHUP to slicewise --ranks and its mpiexec")])
def test_ctrl_c_stops_every_rank_after_the_checkpoint(ranks, how, tmp_path):
    """A terminal's Ctrl-C reaches mpiexec and every rank (some twice); a scheduler signals mpiexec.
    Either way all ranks agree to stop after the same minibatch, rank 0 writes the checkpoint and
    every process exits with 128 + the signal (no "BAD TERMINATION", nothing left waiting).
    mpiexec itself dies on SIGHUP, and its ranks with it: ``slicewise reconstruct --ranks N``
    starts it immune to SIGHUP and relays the hangup (a closed terminal, a scheduler) as SIGTERM."""
    import signal
    import time

    _data(tmp_path, "ptycho")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\npath = "ptycho.h5"\n[run]\nepochs = 100000\nbatch_spots = 2\n'
                   'checkpoint_every = 1\nbackend = "numpy"\nsave_tiff = false\n')
    out = tmp_path / "out"
    launcher = [sys.executable, "-c", LAUNCH, "reconstruct", str(cfg), "--ranks", str(ranks)] \
        if "--ranks" in how else [MPIEXEC, "-n", str(ranks), sys.executable, "-c", LAUNCH,
                                  "reconstruct", str(cfg)]
    proc = subprocess.Popen(launcher + ["--out", str(out)], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 90
        while not (out / "checkpoint.h5").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert (out / "checkpoint.h5").exists(), "no checkpoint within 90 s"
        time.sleep(0.2)  # into the middle of an epoch
        if how.startswith("Ctrl-C"):
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole process group
        elif how.startswith("SIGTERM"):
            proc.send_signal(signal.SIGTERM)
        else:  # a hangup of the launcher's terminal, and one sent to mpiexec (the launcher's child)
            mpiexec = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
            os.killpg(proc.pid, signal.SIGHUP)
            os.kill(mpiexec, signal.SIGHUP)
        text, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == STOPS[how], text[-3000:]
    assert "BAD TERMINATION" not in text and "Traceback" not in text, text[-3000:]
    assert "stopped:" in text
    from slicewise.engine.io.results import read_result

    res = read_result(out / "checkpoint.h5")
    assert res["epoch"] >= 1 and read_result(out / "result.h5")["epoch"] == res["epoch"]


@pytest.mark.parametrize("modality", ["holo", "ptycho"])
def test_each_rank_preloads_only_its_own_frames(modality, tmp_path):
    """Holotomography: ranks own every other angle; ptychography: every other scan position."""
    from slicewise.engine.io.readers import open_dataset

    data = _data(tmp_path, modality)
    with open_dataset(data) as ds:
        n_angles, n_spots = ds.n_angles, ds.n_spots
    _run([MPIEXEC, "-n", "2", sys.executable, str(WORKER), str(data), str(tmp_path / "two"),
          str(tmp_path / "two.json"), json.dumps({"run.batch_angles": 0, "run.epochs": 1})], tmp_path)
    shares = [json.loads((tmp_path / f"two.json.rank{r}").read_text())["preloaded"][:2] for r in (0, 1)]
    if modality == "holo":  # ranks 0 and 1 own angles 0, 2, ... and 1, 3, ...
        expected = [[(n_angles + 1) // 2, n_spots], [n_angles // 2, n_spots]]
    else:  # scan positions 0, 2, ... and 1, 3, ...
        expected = [[n_angles, (n_spots + 1) // 2], [n_angles, n_spots // 2]]
    assert n_angles > 1 if modality == "holo" else n_spots > 1
    assert shares == expected
    assert sum(a * s for a, s in shares) == n_angles * n_spots  # together: every frame once


def test_ranks_stop_the_final_fit_below_the_noise_together(tmp_path):
    """Four-distance holography with counting noise: the weight search holds pixels out, and the
    final fit on every pixel stops once its progress is below the noise. Two ranks (two distances
    each) stop together, at the epoch one process stops at."""
    sys.path.insert(0, str(Path(__file__).parent / "helpers"))
    from noise_sweep import NoiseCase, make_data  # noqa: PLC0415

    data = make_data(NoiseCase("holo4", 1e4, "weak", "floats", "tiny")).write(tmp_path / "h.h5")
    extra = json.dumps({"run.epochs": 100, "run.batch_angles": 0})
    _run([sys.executable, str(WORKER), str(data), str(tmp_path / "one"), str(tmp_path / "one.json"),
          extra], tmp_path)
    _run([MPIEXEC, "-n", "2", sys.executable, str(WORKER), str(data), str(tmp_path / "two"),
          str(tmp_path / "two.json"), extra], tmp_path)
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["ranks"] == 2 and one["stopped_early"] and two["stopped_early"]
    assert one["epochs"] < 100 and abs(two["epochs"] - one["epochs"]) <= 2
    assert np.corrcoef(one["delta"], two["delta"])[0, 1] > 0.99
