"""Run by tests/test_mpi_faults.py under mpiexec: one rank made different, then a step or a run.

``python mpi_faults.py SCENARIO ARGS...``

* ``combine REPORT``: rank 0 hands :meth:`Distributed.combine` a double-precision gradient, the
  others single-precision zeros (an empty share); every rank writes what it got to
  ``REPORT.rank<r>``.
* ``memory -- slicewise reconstruct ...``: rank 0 sees 64 GiB of free memory, the others 64 KiB,
  then the command line runs (automatic choices must agree all the same).
* ``raise RANK BATCH -- slicewise reconstruct ...``: the command line runs, and rank ``RANK``
  raises an unexpected exception (a bug) when it evaluates its ``BATCH``-th minibatch (1-based).
"""

import json
import sys

import numpy as np


def _rank() -> int:
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank()


def combine(report: str) -> int:
    from mpi4py import MPI

    from slicewise.engine.recon.loop.distributed import Distributed

    dist = Distributed(MPI.COMM_WORLD)
    if dist.rank == 0:
        grads = {"beta": np.full((2, 3), 2.0, np.float64),
                 "probe": np.full((1, 2), 1 + 1j, np.complex64)}
        loss, terms, weight = 4.0, {"data": 4.0}, 1.0
    else:
        grads = {"beta": np.zeros((2, 3), np.float32), "probe": np.zeros((1, 2), np.complex64)}
        loss, terms, weight = 0.0, {}, 0.0
    loss, terms, out = dist.combine(loss, terms, grads, weight)
    with open(f"{report}.rank{dist.rank}", "w") as f:
        json.dump({"loss": loss, "terms": terms,
                   "dtypes": {k: str(v.dtype) for k, v in out.items()},
                   "beta": out["beta"].tolist(), "probe_real": out["probe"].real.tolist()}, f)
    return 0


def _cli(argv: list[str]) -> int:
    from slicewise.cli.main import main

    return main(argv)


def memory(argv: list[str]) -> int:
    from slicewise.engine.recon.loop import distributed
    from slicewise.engine.recon.setup import prepare

    fake = (64 * 2**30) if _rank() == 0 else (64 * 2**10)
    for module in (prepare, distributed):  # wherever the set-up may look it up
        module.available_memory_bytes = lambda backend: fake
    return _cli(argv)


def raise_on(rank: int, batch: int, argv: list[str]) -> int:
    from slicewise.engine.recon.loop import solver

    original = solver.Solver._evaluator
    calls = {"n": 0}

    def evaluator(self, a_idx, s_idx):
        evaluate = original(self, a_idx, s_idx)

        def faulty(trial):
            calls["n"] += 1
            if _rank() == rank and calls["n"] == batch:
                raise RuntimeError("injected bug on one rank")
            return evaluate(trial)

        return faulty

    solver.Solver._evaluator = evaluator
    return _cli(argv)


if __name__ == "__main__":
    scenario, rest = sys.argv[1], sys.argv[2:]
    if scenario == "combine":
        sys.exit(combine(rest[0]))
    cut = rest.index("--")
    head, argv = rest[:cut], rest[cut + 1:]
    if scenario == "memory":
        sys.exit(memory(argv))
    sys.exit(raise_on(int(head[0]), int(head[1]), argv))
