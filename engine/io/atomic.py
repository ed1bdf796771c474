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
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path in the same directory as ``path``; on success rename it over ``path``.

    The body must create/close the file at the yielded path. If the body raises, the temporary
    file is deleted and ``path`` is left untouched.
    """
    target = Path(path)
    directory = str(target.parent.resolve())
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)  # writers open the path themselves (h5py needs a path, not a descriptor)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, _final_mode(target))  # mkstemp creates 0o600
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def atomic_write(path: str | os.PathLike, writer_fn: Callable[[str], Any]) -> Any:
    """Call ``writer_fn(tmp_path)`` to write the file, then atomically move it to ``path``.

    Returns whatever ``writer_fn`` returns. Exceptions from ``writer_fn`` propagate after the
    temporary file is removed; the previous content of ``path`` (if any) is intact.
    """
    with atomic_path(path) as tmp:
        return writer_fn(tmp)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write a text file (TOML, JSON, ...) atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding=encoding))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a binary file atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
