"""Crash-safe file writing: write a temporary file next to the target, fsync, then rename.

``os.replace`` is atomic on POSIX and Windows when source and target are on the same file system,
which is why the temporary file is created in the target's own directory. A crash (or an exception
in the writer) at any point leaves either the complete old file or the complete new file, never a
truncated one; the temporary file is removed when the writer raises.

Usage::

    atomic_write("result.h5", lambda tmp: write_h5(tmp))      # writer receives the temp path

    with atomic_path("config.toml") as tmp:                   # same, as a context manager
        Path(tmp).write_text(text)

    atomic_write_text("config.toml", text)                     # small text files
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import OutputError

#: Free space kept beyond a file's expected size (HDF5 overhead, other writers, the file system).
FREE_SPACE_MARGIN_BYTES = 16 * 2**20
#: Temporary files without a recognisable owner are stale after this long.
STALE_AFTER_S = 3600.0


def _fsync_file(path: str) -> None:
    # The writer (h5py, tifffile, ...) closed its handle; reopen read-only just to flush to disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: str) -> None:
    """Persist the rename itself (POSIX only; directories cannot be opened on Windows)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (e.g. certain network mounts) refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _final_mode(target: Path) -> int:
    """Keep an existing file's permissions; new files get the usual 0o666 & ~umask."""
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_prefix(name: str) -> str:
    """Temporary names carry host and process id, so a later run can tell which are stale."""
    return f".{name}.{_host()}-{os.getpid()}."


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())


#: ``.<target name>.<host>-<pid>.<random>.tmp``, as made by :func:`atomic_path`.
_TEMP_NAME = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def check_free_space(directory: str | os.PathLike, nbytes: int, what: str) -> None:
    """Refuse a write of about ``nbytes`` that the file system of ``directory`` cannot hold."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return  # unknown: let the write itself report
    if nbytes + FREE_SPACE_MARGIN_BYTES > free:
        raise OutputError(f"{what}: needs about {nbytes / 2**20:.1f} MiB but only {free / 2**20:.1f} MiB "
                          f"are free in {directory}; free some space or set run.output_dir (--out) to "
                          "a folder on another disk")


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:200]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, expected_bytes: int | None = None) -> Iterator[str]:
    """Yield a temporary path in the same directory as ``path``; on success rename it over ``path``.

    The body must create/close the file at the yielded path. If the body raises, the temporary
    file is deleted and ``path`` is left untouched. With ``expected_bytes`` the free space is
    checked first. A failing write (disk full, I/O error) becomes an :class:`OutputError`.
    """
    target = Path(path)
    directory = str(target.parent.resolve())
    if expected_bytes is not None:
        check_free_space(directory, int(expected_bytes), str(target))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=_temp_prefix(target.name), suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"{target}: cannot create a file in {directory} ({_one_line(exc)}); set "
                          "run.output_dir (--out) to a writable folder") from None
    os.close(fd)  # writers open the path themselves (h5py needs a path, not a descriptor)
    try:
        try:
            yield tmp
            _fsync_file(tmp)
            os.chmod(tmp, _final_mode(target))  # mkstemp creates 0o600
            os.replace(tmp, target)
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and "errno" not in str(exc):
                raise  # not an I/O failure (h5py reports some of those as RuntimeError)
            raise OutputError(f"{target}: writing failed ({_one_line(exc)}); the previous file is "
                              "intact. Free some space or set run.output_dir (--out) to another "
                              "folder") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def remove_stale_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete temporary files of atomic writes whose process is gone; returns what was removed.

    A file of this host whose process id is not alive is stale; a file of another host (a shared
    file system) is stale only after :data:`STALE_AFTER_S`. Files not named by
    :func:`atomic_path` are left alone.
    """
    removed = []
    host, now = _host(), time.time()
    for p in Path(directory).glob(".*.tmp"):
        m = _TEMP_NAME.match(p.name)
        if m is None:
            continue  # not ours
        try:
            if m["host"] == host:
                if _alive(int(m["pid"])):
                    continue
            elif now - p.stat().st_mtime < STALE_AFTER_S:
                continue
            p.unlink()
            removed.append(p)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: str | os.PathLike, writer_fn: Callable[[str], Any],
                 expected_bytes: int | None = None) -> Any:
    """Call ``writer_fn(tmp_path)`` to write the file, then atomically move it to ``path``.

    Returns whatever ``writer_fn`` returns. Exceptions from ``writer_fn`` propagate after the
    temporary file is removed; the previous content of ``path`` (if any) is intact.
    """
    with atomic_path(path, expected_bytes) as tmp:
        return writer_fn(tmp)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write a text file (TOML, JSON, ...) atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding=encoding))

