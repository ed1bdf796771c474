"""Array backend selection, and the same numerics on CuPy when a GPU works (skipped otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from slicewise.engine import backend as bk
from slicewise.engine import get_backend, ops, to_host, value_and_grad
from slicewise.engine.backend import BackendError

_CUPY, _WHY = bk._probe_cupy()
needs_gpu = pytest.mark.skipif(_CUPY is None, reason=f"no working CUDA GPU: {_WHY}")


def test_numpy_backend_defaults_to_single_precision():
    be = get_backend("numpy")
    assert be.name == "numpy" and be.complex_dtype == np.complex64 and be.real_dtype == np.float32
    assert get_backend("numpy", "double").complex_dtype == np.complex128
    assert "CPU" in be.describe()


def test_auto_falls_back_to_numpy_without_gpu(monkeypatch):
    monkeypatch.setattr(bk, "_probe_cupy", lambda: (None, "no GPU here"))
    monkeypatch.delenv("SLICEWISE_BACKEND", raising=False)
    bk._auto_choice.cache_clear()
    try:
        assert get_backend("auto").name == "numpy"
    finally:
        bk._auto_choice.cache_clear()


def test_environment_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv("SLICEWISE_BACKEND", "numpy")
    assert get_backend("auto").name == "numpy"
    monkeypatch.setenv("SLICEWISE_BACKEND", "tpu")
    with pytest.raises(BackendError, match="SLICEWISE_BACKEND"):
        get_backend("auto")


def test_asking_for_cupy_without_gpu_says_why(monkeypatch):
    monkeypatch.setattr(bk, "_probe_cupy", lambda: (None, "cupy is installed but no working CUDA GPU"))
    bk._make_backend.cache_clear()
    try:
        with pytest.raises(BackendError, match="no working CUDA GPU"):
            get_backend("cupy")
    finally:
        bk._make_backend.cache_clear()


def test_bad_names_are_refused():
    with pytest.raises(BackendError, match="backend must be one of"):
        get_backend("jax")
    with pytest.raises(BackendError, match="precision"):
        get_backend("numpy", "half")


def test_fft_is_unitary_and_to_host_returns_numpy():
    be = get_backend("numpy")
    x = be.to_complex(np.random.default_rng(0).standard_normal((8, 8)))
    y = be.fft2(x)
    assert np.sum(np.abs(y) ** 2) == pytest.approx(np.sum(np.abs(x) ** 2), rel=1e-5)
    assert isinstance(to_host(y), np.ndarray)


@needs_gpu
def test_cupy_gradients_match_numpy():
    """The tape and an FFT chain give the same loss and gradient on the GPU as on the CPU."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 32)) + 1j * rng.standard_normal((32, 32))
    k = np.exp(1j * rng.standard_normal((32, 32)))
    results = []
    for name in ("numpy", "cupy"):
        be = get_backend(name, "double")
        f = lambda z, kk=be.asarray(k): ops.sum(ops.abs2(ops.ifft2(ops.mul(ops.fft2(z), kk))))  # noqa: E731
        v, g = value_and_grad(f)(be.asarray(x))
        results.append((v, to_host(g)))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-9, atol=1e-12)


@needs_gpu
def test_cupy_forward_models_match_numpy():
    from slicewise.engine.models.common import Optics
    from slicewise.engine.models.holo import HoloModel
    from slicewise.engine.models.ptycho import PtychoModel

    rng = np.random.default_rng(2)
    delta = rng.random((4, 16, 16)) * 1e-6
    beta = delta * 0.1
    probe = rng.standard_normal((1, 8, 8)) + 1j
    pos = np.array([[1.3, 2.0], [6.0, 7.5]])
    optics = Optics(10000, 20e-9, 20e-9)
    out = []
    for name in ("numpy", "cupy"):
        be = get_backend(name, "double")
        p = {"delta": be.asarray(delta), "beta": be.asarray(beta), "probe": be.asarray(probe),
             "positions": be.asarray(pos), "distances": be.asarray(np.array([1e-4]))}
        pt = PtychoModel((4, 16, 16), (8, 8), optics, be, positions_px=pos).predict(p, [0], [0, 1])
        ho = HoloModel((4, 16, 16), optics, be, angles_rad=np.array([0.0, 0.5])).predict(p, [0, 1], [0])
        out.append((to_host(pt), to_host(ho)))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-8, atol=1e-10)


def test_omp_num_threads_caps_the_fft_threads():
    """One thread per MPI rank (OMP_NUM_THREADS=1 mpiexec ...): scipy.fft's workers follow it."""
    code = ("from slicewise.engine.backend import get_backend; b = get_backend('numpy'); "
            "print(b.workers, '|', b.describe())")
    base = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    for env, workers in (({"OMP_NUM_THREADS": "1"}, "1"), ({"OMP_NUM_THREADS": "x"}, "-1"),
                         ({}, "-1")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**base, **env}, check=True).stdout
        assert out.split(" | ")[0] == workers, out
        assert ("1 FFT thread(s)" in out) == (workers == "1"), out
