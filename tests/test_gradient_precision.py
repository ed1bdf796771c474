"""A gradient has its parameter's precision, whatever the minibatch.

Under MPI the ranks sum their gradients in one flat buffer; a gradient that came out in double
precision on one rank (its share of a minibatch took another code path) and in single precision
on another made the ranks' buffers differ in size, and MPI aborted ("Message truncated") on every
preset data set. The cause was NumPy 2's promotion rules: ``np.conj(1j)`` is a complex128 NumPy
scalar, and a complex64 cotangent times it is complex128.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.autodiff import value_and_grad
from slicewise.engine.backend import get_backend
from slicewise.engine.io.readers import open_dataset
from slicewise.engine.recon.plan import RunPlan
from slicewise.engine.recon.problem import build_problem
from slicewise.engine.simulate import SimulationConfig, simulate
from small_runs import gold_star, quick_config

CASES = {  # (data, overrides, frames per minibatch); every unknown is differentiated
    "2D ptychography, whole-object path": ("ptycho2d", {}, 99),
    "2D ptychography, window path": ("ptycho2d", {}, 1),
    "multislice ptychography, complex object": ("ptycho2d", {"model.n_slices": 2,
                                                             "model.object_param": "complex"}, 99),
    "holotomography": ("holotomo", {}, 99),
    "holotomography, one angle": ("holotomo", {}, 1),
}

def _data(kind: str, tmp: Path) -> Path:
    if kind == "ptycho2d":
        return gold_star(tmp / "star.h5")
    return simulate(SimulationConfig(modality="holo", n_angles=3, object_shape=(8, 8, 8)),
                    tmp / "holo.h5", "numpy")


@pytest.mark.parametrize("case", sorted(CASES))
def test_single_precision_gradients_stay_single(case, tmp_path):
    kind, overrides, n_frames = CASES[case]
    cfg = quick_config(_data(kind, tmp_path), tmp_path / "out",
                       overrides={"run.precision": "single", **overrides})
    be = get_backend("numpy", "single")
    with open_dataset(cfg.data.path) as ds:
        prob = build_problem(RunPlan(cfg), ds, be, tmp_path)
        a_idx = np.arange(min(ds.n_angles, n_frames))
        s_idx = np.arange(min(ds.n_spots, n_frames))
        measured = prob.measured_batch(a_idx, s_idx)
        names = sorted(prob.params)
        _, grads = value_and_grad(
            lambda u: prob.loss({**prob.params, **u}, a_idx, s_idx, measured), has_aux=True)(
            {n: prob.params[n] for n in names})
    assert set(grads) == set(names) and len(names) >= 3
    for n in names:
        assert grads[n].dtype == prob.params[n].dtype, (n, grads[n].dtype, prob.params[n].dtype)
        assert np.any(grads[n] != 0) or n in ("positions", "distances")
