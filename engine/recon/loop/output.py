"""The output folder of a run: checked before anything is computed or written.

A run never destroys an earlier result: a folder that already holds a result or a checkpoint is
refused unless the run continues that folder's own checkpoint (``--resume`` of the file in it) or
the user asked for ``run.overwrite``. A folder that cannot be written (a file in the way, a
read-only folder) is refused with the field to change, and temporary files left behind by killed
writes are removed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from ...errors import ConfigError, OutputError
from ...io.atomic import remove_stale_temp_files

log = logging.getLogger(__name__)

#: Files whose presence marks a folder as holding an earlier run's products.
PRODUCTS = ("result.h5", "checkpoint.h5")


def check_output_dir(out: Path, *, overwrite: bool, resume: str | os.PathLike | None) -> None:
    """Refuse an output folder that is not usable, or whose earlier results would be replaced.

    ``out``: the resolved ``run.output_dir``; ``resume``: the checkpoint the run continues from.
    Raises :class:`ConfigError` naming ``run.output_dir`` (``--out``) and the way out.
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
    existing = [name for name in PRODUCTS if (out / name).exists()]
    if not existing or overwrite:
        return
    if resume is not None and Path(resume).resolve().parent == out.resolve():
        return  # continuing this folder's own run: its products advance, none is lost
    raise ConfigError(f"run.output_dir (--out) {out} already holds {' and '.join(existing)} of an "
                      "earlier run; choose a new folder (--out NEW), continue it with --resume "
                      f"{out / 'checkpoint.h5'}, or replace it with --overwrite (run.overwrite = true)")


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
