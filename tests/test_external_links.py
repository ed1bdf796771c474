"""One rule for HDF5 links that leave a file, for every file a run reads.

The data reader and ``slicewise info`` refuse an external link (a file could otherwise make
Slicewise read any local file) unless ``data.allow_external_links = true``; the starting object
(``init.object_path``), the checkpoint (``--resume``), the detector mask (``loss.mask_path``), the
probe (``init.probe_path``) and the support (``constraints.support``) follow the same rule.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from slicewise.engine.errors import ConfigError
from slicewise.engine.io.hdf5 import h5py_module
from slicewise.engine.recon.run import Reconstruction
from small_runs import gold_star, quick_config


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """A small far-field data set and the result/checkpoint of a 1-epoch run on it."""
    d = tmp_path_factory.mktemp("links")
    data = gold_star(d / "star.h5")
    Reconstruction(quick_config(data, d / "run", 1)).run()
    return {"data": data, "run": d / "run"}


def _link_out(path: Path, name: str, target: Path) -> Path:
    """Replace dataset ``name`` of ``path`` by an external link to the same data in ``target``."""
    h5py = h5py_module()
    with h5py.File(path, "a") as f:
        values = f[name][()]
        del f[name]
        with h5py.File(target, "w") as t:
            t["values"] = values
        f[name] = h5py.ExternalLink(str(target), "/values")
    return path


def _array_file(folder: Path, dataset: str, values: np.ndarray) -> Path:
    path = folder / f"{dataset.replace('/', '_')}.h5"
    with h5py_module().File(path, "w") as f:
        f[dataset] = values
    return _link_out(path, dataset, folder / f"{dataset.replace('/', '_')}-target.h5")


def _case(name: str, earlier, tmp_path) -> tuple[dict, str | None]:
    """Configuration overrides (and the --resume file) that make the run read a linked file."""
    if name == "init.object_path":
        res = shutil.copy(earlier["run"] / "result.h5", tmp_path / "start.h5")
        return {"init.object_path": str(_link_out(Path(res), "params/delta", tmp_path / "d.h5"))}, None
    if name == "--resume":
        ckpt = shutil.copy(earlier["run"] / "checkpoint.h5", tmp_path / "ckpt.h5")
        return {}, str(_link_out(Path(ckpt), "params/beta", tmp_path / "b.h5"))
    if name == "loss.mask_path":
        return {"loss.mask_path": str(_array_file(tmp_path, "mask", np.ones((8, 8))))}, None
    if name == "init.probe_path":
        probe = np.ones((1, 8, 8), np.complex128)
        return {"init.probe_path": str(_array_file(tmp_path, "probe", probe))}, None
    support = np.ones((1, 16, 16), bool)  # the object grid
    return {"constraints.support": str(_array_file(tmp_path, "support", support))}, None


FILES = ["init.object_path", "--resume", "loss.mask_path", "init.probe_path", "constraints.support"]


@pytest.mark.parametrize("name", FILES)
def test_every_file_a_run_reads_refuses_external_links(name, earlier, tmp_path):
    overrides, resume = _case(name, earlier, tmp_path)
    with pytest.raises(ConfigError) as info:
        Reconstruction(quick_config(earlier["data"], tmp_path / "out", 1, overrides),
                       resume=resume).run()
    msg = str(info.value)
    assert msg.startswith(name) and "external link" in msg and "data.allow_external_links" in msg
    assert not (tmp_path / "out" / "result.h5").exists()


@pytest.mark.parametrize("name", FILES)
def test_allow_external_links_allows_them_everywhere(name, earlier, tmp_path):
    overrides, resume = _case(name, earlier, tmp_path)
    overrides["data.allow_external_links"] = True
    rec = Reconstruction(quick_config(earlier["data"], tmp_path / "out", 2, overrides),
                         resume=resume)
    rec.run()
    assert rec.state == "finished" and (tmp_path / "out" / "result.h5").exists()
