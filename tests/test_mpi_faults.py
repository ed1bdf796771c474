"""MPI ranks that differ: in a gradient's precision, in free memory, in an exception.

Every case runs under ``mpiexec`` (tests/helpers/mpi_faults.py makes one rank different); a hang
fails at the subprocess timeout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.io.results import read_result
from small_runs import gold_star

MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (install the 'mpi' extra)")
FAULTS = Path(__file__).parent / "helpers" / "mpi_faults.py"


def _mpiexec(ranks: int, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, str(FAULTS), *map(str, args)],
                          capture_output=True, text=True, timeout=150, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _config(tmp_path: Path, **run) -> Path:
    gold_star(tmp_path / "star.h5")
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in run.items())
    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\npath = "star.h5"\n[run]\nbackend = "numpy"\nsave_tiff = false\n' + lines)
    return cfg


def test_gradients_of_different_precision_on_two_ranks_are_combined(tmp_path):
    """Rank 0's gradient in double precision, rank 1's (an empty share) in single: the ranks
    agree on one layout, so the sum arrives -- the same on both -- instead of MPI's "Message
    truncated" abort."""
    proc = _mpiexec(2, "combine", tmp_path / "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = [json.loads((tmp_path / f"r.json.rank{r}").read_text()) for r in (0, 1)]
    assert got[0] == got[1]
    assert got[0]["dtypes"] == {"beta": "float64", "probe": "complex64"}
    np.testing.assert_array_equal(got[0]["beta"], np.full((2, 3), 2.0))  # weight 1 of 1 in total
    np.testing.assert_array_equal(got[0]["probe_real"], [[1.0, 1.0]])
    assert got[0]["loss"] == 4.0 and got[0]["terms"] == {"data": 4.0}


def test_ranks_with_different_free_memory_make_the_same_automatic_choices(tmp_path):
    """Rank 0 sees 64 GiB free (full-batch L-BFGS would fit), rank 1 64 KiB (Adam on small
    minibatches): choices sized for the smallest, the same on every rank, and the run completes."""
    cfg = _config(tmp_path, epochs=2)
    proc = _mpiexec(2, "memory", "--", "reconstruct", cfg, "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    chosen = tomllib.loads((tmp_path / "out" / "config.toml").read_text())
    assert chosen["optimizer"]["kind"] == "adam" and 0 < chosen["run"]["batch_spots"] < 9
    assert read_result(tmp_path / "out" / "result.h5")["epoch"] == 2


@pytest.mark.parametrize("rank", [0, 1])
def test_an_exception_on_one_rank_ends_every_rank_with_a_checkpoint(rank, tmp_path):
    """A bug on one rank in the 12th evaluation (minibatch 3 of epoch 2: 9 one-frame minibatches
    per epoch): that rank writes the checkpoint of the last finished minibatch, says so, and
    aborts the job -- nobody is left waiting in Allreduce."""
    cfg = _config(tmp_path, epochs=50, batch_spots=1, checkpoint_every=0)
    proc = _mpiexec(2, "raise", rank, 12, "--", "reconstruct", cfg, "--out", tmp_path / "out",
                    cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    assert "RuntimeError: injected bug on one rank" in text, text[-3000:]
    assert f"(MPI rank {rank} of 2)" in text and "--resume" in text, text[-3000:]
    ckpt = read_result(tmp_path / "out" / "checkpoint.h5")
    assert ckpt["epoch"] == 1 and ckpt["extra"]["run_state"]["partial"]["batch"] == 2
    assert not (tmp_path / "out" / "result.h5").exists()
