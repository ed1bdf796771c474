"""h5py with the compression filters registered, and opening a file with a helpful error."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import DataFileError


def h5py_module():
    """Import h5py with the compression filters registered (Blosc, LZ4, Zstd, bitshuffle ...)."""
    import h5py  # noqa: PLC0415 - deferred: `slicewise --help` and signal set-up come first
    import hdf5plugin  # noqa: F401, PLC0415 - registers the filters with HDF5 on import

    return h5py


def open_h5(path, *, allow_external: bool | None = None):
    """Open ``path`` read-only; :class:`DataFileError` when it is missing or not HDF5.

    ``allow_external``: False refuses a file that would make HDF5 read other files
    (:func:`refuse_external`), True allows it; None leaves the check to the caller (the data
    readers, once :func:`~.readers.open_dataset` has checked the file with the user's setting).
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{path}: no such data file")
    try:
        f = h5py_module().File(p, "r")
    except OSError as exc:
        raise DataFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    if allow_external is not None:
        try:
            refuse_external(f, path, allow_external)
        except BaseException:
            f.close()
            raise
    return f


def external_references(h5) -> list[str]:
    """Everything in the open file ``h5`` that makes HDF5 read *other* files: external links,
    datasets with external raw storage, virtual datasets with sources elsewhere. One line each."""
    h5py = h5py_module()
    found: list[str] = []

    def on_link(name, link):
        if isinstance(link, h5py.ExternalLink):
            found.append(f"/{name} is an external link to {link.filename}:{link.path}")

    def on_object(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        if obj.external:
            found.append(f"/{name} keeps its data in external file(s) "
                         f"{', '.join(str(e[0]) for e in obj.external)}")
        if obj.is_virtual:
            files = sorted({vs.file_name for vs in obj.virtual_sources()} - {"."})
            if files:
                found.append(f"/{name} is a virtual dataset reading {', '.join(files)}")

    h5.visititems_links(on_link)
    h5.visititems(on_object)
    return found


def refuse_external(h5, path, allow: bool) -> None:
    """Refuse a file that would make Slicewise read other files, unless the user allows it.

    The one rule for every HDF5 file a run reads -- the data, ``init.object_path``, ``--resume``,
    ``loss.mask_path``, ``init.probe_path``, ``constraints.support`` -- and for ``slicewise
    info``: ``data.allow_external_links`` decides for all of them."""
    if allow:
        return
    found = external_references(h5)
    if found:
        raise DataFileError(f"{path}: {found[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1
                                                      else "")
                            + "; links that leave the file are not followed: set "
                            "data.allow_external_links = true if you trust this file")


def check_format_version(attrs, known: int, path, what: str) -> None:
    """Refuse a file whose ``format_version`` attribute is not one this Slicewise reads: newer
    (written by a later Slicewise) or not a positive integer. A file without one is version 1."""
    raw = attrs.get("format_version", 1)
    try:
        version = int(raw)
        valid = version == raw and version >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise DataFileError(f"{path}: format_version {raw!r} of this {what} is not a version "
                            f"number; the files Slicewise writes have format_version {known}")
    if version > known:
        raise DataFileError(f"{path}: format_version {version} of this {what} is newer than this "
                            f"Slicewise reads (up to {known}); update Slicewise "
                            "(pip install -U slicewise)")


def attr_text(attrs, key, default=None):
    """A string attribute (bytes decoded), or ``default``."""
    v = attrs.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


def compression_kwargs(compression) -> dict:
    """h5py dataset keywords for ``None``, ``"gzip"``, ``"blosc"``/``"lz4"`` or a ready dict."""
    if compression is None:
        return {}
    if isinstance(compression, Mapping):
        return dict(compression)
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    import hdf5plugin  # noqa: PLC0415 - deferred like h5py_module's (the command line starts fast)

    if compression == "blosc":
        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if compression == "lz4":
        return dict(hdf5plugin.LZ4())
    raise DataFileError(f"compression must be None, 'gzip', 'blosc' or 'lz4', got {compression!r}")

