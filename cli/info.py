"""``slicewise info [FILE]``: backend, versions, and what a data file holds, read as stated.

FILE is a data file or a configuration (``.toml``/``.json``): a configuration's data file is
described as that configuration reads it (its ``data.field``, ``model.kind``,
``data.source_to_sample_m`` and ``data.farfield_order`` decide over the reader's guess). For a
data file the same statements are options (``--field``, ``--source-to-sample-m``,
``--farfield-order``), so that the effect of stating one can be seen before a run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slicewise.engine import __version__

CONFIG_SUFFIXES = (".toml", ".json")


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Backend and versions; with FILE (a data file or a configuration), what the "
                     "data file holds and how it is read: near or far field and where that came "
                     "from (a configuration key or a guess from the frames), geometry, mask, "
                     "counts.")
    p.add_argument("file", nargs="?", help="data file, or a configuration naming one")
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "cupy"))
    p.add_argument("--field", choices=("auto", "near", "far"),
                   help="state the field, as data.field does (default: the configuration's, or "
                        "auto = guessed)")
    p.add_argument("--source-to-sample-m", type=float, metavar="Z1",
                   help="cone beam: focus-to-sample distance (m), as data.source_to_sample_m "
                        "(implies near field); shows the effective geometry")
    p.add_argument("--farfield-order", choices=("auto", "centred", "fft"),
                   help="how far-field frames are stored, as data.farfield_order")
    p.set_defaults(func=run_info)


def _statements(args):
    """(data file, statements, focus distance) from FILE and the options."""
    from slicewise.engine.io.arrays import resolve_path  # noqa: PLC0415
    from slicewise.engine.io.field import statements_from_keys  # noqa: PLC0415

    path = Path(args.file)
    field, kind, z1, order = "auto", "auto", None, "auto"
    if path.suffix.lower() in CONFIG_SUFFIXES:
        from slicewise.cli.reconstruct import load_config  # noqa: PLC0415
        from slicewise.engine.errors import ConfigError  # noqa: PLC0415

        cfg = load_config(path)
        if not cfg.data.path:
            raise ConfigError(f"{path}: data.path is not set; give the data file")
        d = cfg.data
        field, kind, z1, order = d.field, cfg.model.kind, d.source_to_sample_m, d.farfield_order
        path = resolve_path(d.path, path.resolve().parent)
    field = args.field or field
    z1 = args.source_to_sample_m if args.source_to_sample_m is not None else z1
    order = args.farfield_order or order
    return path, statements_from_keys(field, kind, z1, order), z1


def run_info(args: argparse.Namespace) -> int:
    from slicewise.engine.backend import get_backend  # noqa: PLC0415

    print(f"slicewise {__version__}")
    print("backend:", get_backend(args.backend).describe())
    if args.file:
        from slicewise.engine.io.readers import describe_file  # noqa: PLC0415

        path, statements, z1 = _statements(args)
        print(describe_file(path, statements, source_to_sample_m=z1))
    return 0
