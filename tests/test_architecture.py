"""The shape of the code: every engine module imports, no import cycles, the engine is Qt-free.

Imports are read from the source (``ast``), module level and inside functions alike: a lazy
import that closes a cycle is a cycle all the same (it only hides the order dependence).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import slicewise.engine

ENGINE = Path(slicewise.engine.__file__).resolve().parent
PACKAGE = "slicewise.engine"


def _modules() -> dict[str, Path]:
    """``{"slicewise.engine.io.readers": path, ...}`` for every module of the engine."""
    out = {}
    for path in sorted(ENGINE.rglob("*.py")):
        rel = path.relative_to(ENGINE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join([PACKAGE, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Fully qualified names this module imports (anywhere in it)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:  # "from pkg import module" imports the module
                found.add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod)
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {m for m in _imports(name, path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_engine_module_imports(name):
    """Each module imports on its own and says what it is for (a newcomer reads the docstrings)."""
    module = importlib.import_module(name)
    assert (module.__doc__ or "").strip(), f"{name} has no module docstring"


def test_the_import_walk_sees_the_imports():
    """The walk must find real edges, or the cycle test below would pass on an empty graph."""
    g = _graph()
    assert "slicewise.engine.autodiff" in g["slicewise.engine.ops"]
    assert "slicewise.engine.io.datafile" in g["slicewise.engine.io.readers"]
    assert "slicewise.engine.recon.problem" in g["slicewise.engine.recon.run"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_in_the_engine():
    assert _cycles(_graph()) == []


def test_the_engine_imports_nothing_from_the_gui():
    offenders = {name: sorted(m for m in _imports(name, path)
                              if m.split(".")[:2] == ["slicewise", "app"]
                              or m.split(".")[0] in ("PyQt6", "pyqtgraph", "napari"))
                 for name, path in MODULES.items()}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_headless_commands_run_without_the_gui_packages(tmp_path):
    """A compute node without the ``gui`` extra: ``slicewise info`` works, ``slicewise gui`` says
    which extra to install (Qt, pyqtgraph and napari made unimportable in a fresh interpreter)."""
    code = ("import sys\n"
            "for m in ('PyQt6', 'pyqtgraph', 'napari'):\n"
            "    sys.modules[m] = None\n"
            "from slicewise.cli.main import main\n"
            "assert main(['info', '--backend', 'numpy']) == 0\n"
            "assert main(['gui']) == 2\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "slicewise" in proc.stdout and "backend:" in proc.stdout
    assert "'gui' extra" in proc.stderr and "pip install 'slicewise[gui]'" in proc.stderr


def test_each_mpi_rank_takes_the_gpu_of_its_place_on_the_node(monkeypatch):
    from slicewise.engine.recon.loop.distributed import Distributed

    chosen = []
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 4, setDevice=chosen.append)
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime)))

    class Comm:  # ranks 0..7 on two nodes of four GPUs: local ranks 0..3 each
        def __init__(self, rank):
            self.rank = rank

        def Get_rank(self):
            return self.rank

        def Get_size(self):
            return 8

    for rank in range(8):
        d = Distributed(Comm(rank))
        d.local_rank = rank % 4
        assert d.select_gpu() == rank % 4
    assert chosen == [0, 1, 2, 3, 0, 1, 2, 3]
    runtime.getDeviceCount = lambda: 0
    assert Distributed(Comm(5)).select_gpu() is None


def test_mpi_ranks_own_disjoint_frames_covering_the_data():
    from slicewise.engine.recon.loop.distributed import Distributed

    class Comm:
        def __init__(self, rank, size):
            self.rank, self.size = rank, size

        def Get_rank(self):
            return self.rank

        def Get_size(self):
            return self.size

    for splits_spots in (True, False):
        seen = []
        for r in range(3):
            d = Distributed(Comm(r, 3))
            a, s = d.owned(5, 7, splits_spots)
            seen += [(int(i), int(j)) for i in a for j in s]
            # a minibatch's share is exactly the owned frames in it
            ba, bs = d.share(np.array([0, 2, 3]), np.array([1, 4, 5, 6]), splits_spots)
            assert set((int(i), int(j)) for i in ba for j in bs) == \
                {(i, j) for i in (0, 2, 3) for j in (1, 4, 5, 6)} & set(seen[-len(a) * len(s):])
        assert sorted(seen) == [(i, j) for i in range(5) for j in range(7)]


def test_every_package_is_in_the_distribution():
    """pyproject.toml lists packages explicitly: a new folder left out of it is missing from a
    (non-editable) installation."""
    import tomllib

    root = ENGINE.parent
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    setup = project["tool"]["setuptools"]
    listed = set(setup["packages"])
    folders = setup["package-dir"]  # {"slicewise.engine": "engine", ...}
    found = set()
    for name, folder in folders.items():
        for init in (root / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(root / folder).parts
            found.add(".".join([name, *rel]))
    assert found - listed == set()
