"""Split-half validation from the command line.

``slicewise reconstruct CONFIG --halves --out OUT`` reconstructs the even and the odd frames
(scan positions; angles for a tomogram) separately into ``OUT/even`` and ``OUT/odd`` and writes
their Fourier ring correlation: ``OUT/frc.h5`` (the table, :func:`~slicewise.engine.quality.frc.
write_frc`) and ``OUT/frc.png`` (the plot). ``slicewise frc A.h5 B.h5 [--out DIR]`` does the
comparison for two existing results. How to read the curve: docs/real-data.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_frc_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Fourier ring correlation of two reconstructions of the same data (e.g. "
                     "from the odd and the even frames): resolution by the 1/7 and half-bit "
                     "criteria, a table (frc.h5) and a plot (frc.png).")
    p.add_argument("a", help="first result file (result.h5 or checkpoint.h5)")
    p.add_argument("b", help="second result file")
    p.add_argument("--out", help="folder for frc.h5 and frc.png (default: the folder holding "
                                 "both results' folders)")
    p.add_argument("--compare", choices=("auto", "projection", "volume"), default="auto",
                   help="projected phase/delta of a 2D or multislice object, or the volume of a "
                        "tomogram (FSC); auto: volume when the object grid is a tomogram's")
    p.set_defaults(func=run_frc_cli)


def write_frc_outputs(a, b, out: Path, compare: str = "auto", say=print) -> Path:
    """Compare results ``a`` and ``b``; write ``out/frc.h5`` and ``out/frc.png``; print the
    resolution. Returns the table's path."""
    from slicewise.engine.quality.frc import write_frc  # noqa: PLC0415
    from slicewise.engine.quality.frc_plot import plot_frc  # noqa: PLC0415
    from slicewise.engine.quality.halves import dip_note, frc_of_results  # noqa: PLC0415

    result, what = frc_of_results(a, b, compare)
    out.mkdir(parents=True, exist_ok=True)
    write_frc(out / "frc.h5", result, sources=(str(a), str(b)))
    plot_frc(result, out / "frc.png", f"{what}: {result.summary()}")
    say(f"compared {what}, pixel {result.pixel_size_m * 1e9:.4g} nm")
    say(result.summary())
    note = dip_note(result)
    if note:
        say(f"note: {note}")
    say(f"FRC table: {out / 'frc.h5'}\nFRC plot: {out / 'frc.png'}")
    return out / "frc.h5"


def run_frc_cli(args: argparse.Namespace) -> int:
    a, b = Path(args.a).resolve(), Path(args.b).resolve()
    out = Path(args.out) if args.out else Path(os.path.commonpath([a.parent, b.parent]))
    write_frc_outputs(a, b, out, args.compare)
    return 0


def run_halves(cfg, base_dir: Path, reconstruct, tqdm=None) -> int:
    """Reconstruct the two halves of ``cfg``'s data into ``run.output_dir``/even and /odd with
    ``reconstruct(cfg, base_dir, dataset=..., tqdm=...)`` (the command's progress-bar runner),
    then write their FRC there."""
    from slicewise.engine.io.arrays import resolve_path  # noqa: PLC0415
    from slicewise.engine.io.readers import open_dataset  # noqa: PLC0415
    from slicewise.engine.errors import ConfigError  # noqa: PLC0415
    from slicewise.engine.quality.halves import split_halves  # noqa: PLC0415
    from slicewise.engine.recon.setup.data_field import data_statements  # noqa: PLC0415

    if not cfg.data.path:
        raise ConfigError("data.path is not set: give the measured data file (HDF5)")
    out = resolve_path(cfg.run.output_dir, base_dir)
    ds = open_dataset(resolve_path(cfg.data.path, base_dir),
                      allow_external=cfg.data.allow_external_links, statements=data_statements(cfg))
    try:
        even, odd, what = split_halves(ds)
        print(f"split-half validation: the even and the odd {what} ({even.n_angles * even.n_spots}"
              f" and {odd.n_angles * odd.n_spots} frames), reconstructed separately")
        for name, half in (("even", even), ("odd", odd)):
            half_cfg = cfg.copy()
            half_cfg.run.output_dir = str(out / name)
            print(f"--- {name} {what} -> {out / name}")
            code = reconstruct(half_cfg, base_dir, dataset=half, tqdm=tqdm)
            if code != 0:
                return code
    finally:
        ds.close()
    write_frc_outputs(out / "even" / "result.h5", out / "odd" / "result.h5", out)
    return 0
