"""Auxiliary arrays named in a configuration (masks, supports, probes) and the path rule.

One rule for relative paths: a relative path in a configuration is relative to the folder of the
configuration file (the *base directory*; for a configuration built in memory, the current
folder); ``~`` is expanded. :func:`resolve_path` applies it; the run, the problem set-up and the
GUI all go through it.

One reader for arrays: ``.npy`` files hold the array itself; HDF5 files (``.h5``, ``.hdf5``,
``.hdf``) hold it under one of a few dataset names (e.g. ``mask``, or ``params/probe`` of a
Slicewise result file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFileError
from .hdf5 import open_h5

#: Suffixes read as HDF5 by :func:`load_array`.
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def resolve_path(p: str | os.PathLike | None, base_dir: str | os.PathLike | None) -> Path | None:
    """``p`` as an absolute-or-base-relative path (see the module docstring); None stays None."""
    if p is None:
        return None
    path = Path(p).expanduser()
    if path.is_absolute():
        return path
    return Path(base_dir or Path.cwd()) / path


def is_array_file(name: str) -> bool:
    """Whether :func:`load_array` can read a file of this name (by its suffix)."""
    return str(name).lower().endswith((".npy",) + HDF5_SUFFIXES)


def load_array(path: str | os.PathLike, field: str, h5_names: tuple[str, ...], *,
               allow_external: bool = False) -> np.ndarray:
    """The array in ``path``: a ``.npy`` file, or the first of ``h5_names`` in an HDF5 file.

    ``field`` is the configuration field that named the file; every failure is a
    :class:`ConfigError` that starts with it and says what the file should hold. An HDF5 file
    that would make HDF5 read other files is refused unless ``allow_external``
    (``data.allow_external_links``, the rule for every file a run reads).
    """
    path = Path(path)
    want = f"a .npy array or an HDF5 file with one of the datasets {', '.join(h5_names)}"
    try:
        if path.suffix.lower() == ".npy":
            return np.asarray(np.load(path, allow_pickle=False))
        if path.suffix.lower() not in HDF5_SUFFIXES:
            raise ValueError(f"unknown file type {path.suffix!r}")
        with open_h5(path, allow_external=allow_external) as f:
            for name in h5_names:
                if name in f:
                    return np.asarray(f[name][()])
        raise KeyError(f"none of {', '.join(h5_names)} in the file")
    except (OSError, KeyError, ValueError, DataFileError) as exc:
        raise ConfigError(f"{field}: cannot read an array from {path} ({want}): {exc}") from None
