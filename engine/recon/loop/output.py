"""The output folder of a run: checked before anything is computed, locked while the run writes.

A run never destroys a file it did not write: a folder that already holds a result or a checkpoint
is refused unless the run continues that folder's own checkpoint (``--resume`` of the file in it)
or the user asked for ``run.overwrite`` -- and that replaces only Slicewise results; a file the run
reads (its data, a starting object, a mask...) or a ``config.toml`` that no run wrote (the user's
own configuration) is never written over. A folder another run is writing into is refused: the
lock file :data:`LOCK_NAME` holds the owner's process id and host, and a lock whose process is
gone (same host) is stale and replaced. A folder that cannot be written (a file in the way, a
read-only folder) or whose disk cannot hold the run's files is refused with the field to change,
and temporary files left behind by killed writes are removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from ...errors import ConfigError, OutputError
from ...io.atomic import FREE_SPACE_MARGIN_BYTES, remove_stale_temp_files
from ...io.arrays import is_array_file, resolve_path
from ...io.results import FILE_OVERHEAD_BYTES, RESULT_FORMAT
from ...io.hdf5 import attr_text, h5py_module
from .. import config as cfgmod

log = logging.getLogger(__name__)

#: Files whose presence marks a folder as holding an earlier run's products.
PRODUCTS = ("result.h5", "checkpoint.h5")
#: Every file a run writes into its output folder (TIFF stacks of a delta/beta or complex object).
RUN_FILES = PRODUCTS + ("config.toml", "delta.tif", "beta.tif", "object_amplitude.tif",
                        "object_phase.tif")
#: The lock file of a run writing into a folder (JSON: pid, host, start time).
LOCK_NAME = ".slicewise.lock"
#: First line of the config.toml a run writes: how a later run tells it from the user's own file.
RUN_CONFIG_HEADER = "The configuration of the Slicewise run in this folder, written by the run."


def check_output_dir(out: Path, *, overwrite: bool, resume: str | os.PathLike | None,
                     inputs: dict | None = None) -> None:
    """Refuse an output folder that is not usable, that another run is writing into, or where
    files the run did not write would be replaced (see the module docstring).

    ``out``: the resolved ``run.output_dir``; ``resume``: the checkpoint the run continues from;
    ``inputs``: the files the run reads (:func:`run_inputs`). Raises :class:`ConfigError` naming
    ``run.output_dir`` (``--out``) and the way out.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"run.output_dir (--out) {out} is an existing file, not a folder; "
                          "give a folder path")
    ancestor = out
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ConfigError(f"run.output_dir (--out) {out}: {ancestor} is a file, so no folder can be "
                          "made under it; give another path")
    if not _writable(ancestor):
        raise ConfigError(f"run.output_dir (--out) {out}: {ancestor} is not writable; give a folder "
                          "you can write to")
    if not out.is_dir():
        return
    _refuse_inputs(out, inputs or {})
    _refuse_live_lock(out)
    existing = [name for name in PRODUCTS if (out / name).exists()]
    if not existing:
        _refuse_foreign_config(out)
        return
    if overwrite:
        _refuse_non_results(out, existing)
        return
    if resume is not None and Path(resume).resolve().parent == out.resolve():
        return  # continuing this folder's own run: its products advance, none is lost
    raise ConfigError(f"run.output_dir (--out) {out} already holds {' and '.join(existing)} of an "
                      "earlier run; choose a new folder (--out NEW), continue it with --resume "
                      f"{out / 'checkpoint.h5'}, or replace it with --overwrite (run.overwrite = true)")


def run_inputs(config, base_dir) -> dict[str, Path]:
    """The files a run reads, by the field that names them: the data, and the optional starting
    object, probe, mask and support files (``--resume`` is not one: its own folder's checkpoint
    is the one file a run may advance)."""
    fields = {"data.path": config.data.path, "init.object_path": config.init.object_path,
              "init.probe_path": config.init.probe_path, "loss.mask_path": config.loss.mask_path}
    if is_array_file(config.constraints.support):
        fields["constraints.support"] = config.constraints.support
    return {k: resolve_path(v, base_dir) for k, v in fields.items() if v}


def _refuse_inputs(out: Path, inputs: dict) -> None:
    """Never write over a file the run reads (e.g. a data file named result.h5 in the folder)."""
    for name in RUN_FILES:
        target = out / name
        for field, path in inputs.items():
            if target.exists() and Path(path).exists() and os.path.samefile(target, path):
                raise ConfigError(f"run.output_dir (--out) {out}: the run writes {name} there, which "
                                  f"is the file {field} reads; choose another output folder")


def _refuse_foreign_config(out: Path) -> None:
    """A config.toml no run wrote is the user's (e.g. ``output_dir = "."`` beside it)."""
    path = out / "config.toml"
    if path.exists() and not is_run_config(path):
        raise ConfigError(f"run.output_dir (--out) {out} holds a config.toml that no Slicewise run "
                          "wrote (your configuration?); a run writes its configuration there, so "
                          "choose another output folder (e.g. output_dir = \"results\")")


def is_run_config(path: Path) -> bool:
    """Whether ``path`` is a configuration a run wrote (it starts with :data:`RUN_CONFIG_HEADER`)."""
    first = "# " + RUN_CONFIG_HEADER.splitlines()[0]
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\r\n") == first
    except OSError:
        return False


def _refuse_non_results(out: Path, names: list[str]) -> None:
    """``--overwrite`` replaces Slicewise results and checkpoints only, never other files that
    happen to carry their names."""
    for name in names:
        path = out / name
        try:
            with h5py_module().File(path, "r") as f:
                ours = attr_text(f.attrs, "format") == RESULT_FORMAT
        except OSError:
            ours = False
        if not ours:
            raise ConfigError(f"run.output_dir (--out) {out}: {name} there is not a Slicewise result, "
                              "and --overwrite (run.overwrite) replaces only results; move the file "
                              "or choose another output folder")


def _writable(folder: Path) -> bool:
    """Try it: permission bits do not tell for root, read-only mounts or special file systems."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".slicewise-probe-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def prepare_output_dir(out: Path) -> None:
    """Create the folder and remove temporary files of writes that were killed."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"run.output_dir (--out) {out}: cannot create the folder ({exc.strerror}); "
                          "give a writable folder") from None
    for path in remove_stale_temp_files(out):
        log.info("removed %s, left by an interrupted write", path)


def write_run_config(out: Path, config, header: str = "") -> None:
    """The configuration in use as ``out/config.toml``, marked as a run's (:func:`is_run_config`),
    then ``header`` (comment lines: e.g. what the run chose and why)."""
    cfgmod.to_toml(config, out / "config.toml",
                   header=RUN_CONFIG_HEADER + ("\n" + header if header else ""))


# ---- free space ---------------------------------------------------------------------------------

def run_file_bytes(params: dict, config) -> int:
    """About the size of the run's checkpoint or result: the unknowns and the optimiser's state
    (Adam: two moments; momentum: one; L-BFGS: its curvature pairs, last point and gradient)."""
    o = config.optimizer
    slots = {"adam": 2, "momentum": 1}.get(o.kind, 2 * o.lbfgs_history + 2)
    return (1 + slots) * sum(int(getattr(v, "nbytes", 0)) for v in params.values()) \
        + FILE_OVERHEAD_BYTES


def check_output_space(out: Path, file_bytes: int, n_files: int) -> None:
    """Refuse, before the run starts, an output folder whose disk cannot hold its files:
    ``n_files`` files of about ``file_bytes`` each, one more of that size (an atomic write keeps
    the old file until the new one is complete), and :data:`FREE_SPACE_MARGIN_BYTES`."""
    try:
        free = shutil.disk_usage(out).free
    except OSError:
        return  # unknown: each write checks again
    need = (n_files + 1) * int(file_bytes) + FREE_SPACE_MARGIN_BYTES
    if need > free:
        raise OutputError(f"run.output_dir (--out) {out}: the run's files need about "
                          f"{need / 2**20:.0f} MiB ({n_files} files of {file_bytes / 2**20:.1f} MiB, "
                          f"one more while a file is replaced, and a margin of "
                          f"{FREE_SPACE_MARGIN_BYTES / 2**20:.0f} MiB) but only {free / 2**20:.0f} MiB "
                          "are free; free some space or choose a folder on another disk")


# ---- the lock -----------------------------------------------------------------------------------

def _this_host() -> str:
    return socket.gethostname()


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks since boot), to tell a reused process id
    from the lock's owner; None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: dict) -> bool:
    """Whether the lock's owner (on this host) still runs."""
    pid = int(owner.get("pid", -1))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = owner.get("process_start")
    return started is None or _process_start(pid) in (None, started)


def _read_lock(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treated as held by an unknown owner


def _owner_text(owner: dict) -> str:
    return (f"process {owner.get('pid', '?')} on host {owner.get('host', '?')}, started "
            f"{owner.get('started', '?')}")


def _stale(owner: dict) -> bool:
    return owner.get("host") == _this_host() and not _alive(owner)


def _refuse_live_lock(out: Path) -> None:
    path = out / LOCK_NAME
    owner = _read_lock(path)
    if owner is None or _stale(owner):
        return
    raise ConfigError(f"run.output_dir (--out) {out}: another run is writing into this folder "
                      f"({_owner_text(owner)}); choose another folder, or wait for it. If no such "
                      f"run exists any more, delete {path}")


@contextlib.contextmanager
def output_lock(out: Path, enabled: bool = True):
    """Hold :data:`LOCK_NAME` in ``out`` while the body runs (the folder must exist): refuse a
    live lock of another run, replace a stale one (its process is gone), remove ours at the end."""
    if not enabled:
        yield
        return
    path = out / LOCK_NAME
    mine = {"pid": os.getpid(), "host": _this_host(), "process_start": _process_start(os.getpid()),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(3):  # a stale lock is removed and the creation tried again
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = _read_lock(path)
            if owner is not None and not _stale(owner):
                _refuse_live_lock(out)
            log.info("removed the stale lock %s of %s", path, _owner_text(owner or {}))
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        except OSError as exc:
            raise OutputError(f"run.output_dir (--out) {out}: cannot create the lock file "
                              f"({exc.strerror}); give a writable folder") from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(mine, f)
        break
    else:
        raise ConfigError(f"run.output_dir (--out) {out}: cannot take the lock {path} (other runs "
                          "keep starting in this folder); choose another folder")
    try:
        yield
    finally:
        if _read_lock(path) == mine:  # never remove a lock another run took over
            with contextlib.suppress(OSError):
                path.unlink()
