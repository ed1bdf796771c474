"""The configuration's statements about the data (near or far field, far-field frame order)
reach the data set before anything is decided from it.

* :func:`data_statements` -- the statements of ``data.field``, ``model.kind``,
  ``data.source_to_sample_m`` and ``data.farfield_order`` (:func:`~...io.field.statements_from_keys`;
  contradictions were refused when the configuration was validated);
* :func:`restated_dataset` -- a data set opened without them (the GUI's preview, a caller's) read
  again when a statement overrides what the reader guessed; a file whose layout fixes the field
  the other way is refused, naming the key and the file;
* :func:`field_choices` -- ``data.field`` / ``data.farfield_order`` left at ``auto`` become the
  values the data set was read with (:class:`~..plan.Choice`), so that the run's ``config.toml``
  repeats them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...errors import ConfigError
from ...io.datafile import Dataset
from ...io.field import FIELD_OF, MODALITY_OF, DataStatements, check_file_field, statements_from_keys
from ...io.readers import field_line, open_dataset
from ..plan import Choice

log = logging.getLogger(__name__)

__all__ = ["data_statements", "restated_dataset", "field_choices"]


def data_statements(cfg) -> DataStatements:
    """What ``cfg`` states about the data (see the module docstring)."""
    d = cfg.data
    return statements_from_keys(d.field, cfg.model.kind, d.source_to_sample_m, d.farfield_order)


def _disagrees(ds: Dataset, st: DataStatements) -> bool:
    if st.field is not None and MODALITY_OF[st.field] != ds.modality:
        return True
    fft = ds.meta.get("farfield_fft")
    return ds.modality == "farfield" and fft is not None and st.farfield_order != "auto" \
        and fft != (st.farfield_order == "fft")


def restated_dataset(cfg, ds: Dataset, base_dir: str | Path | None = None) -> Dataset:
    """``ds``, or the same file read again as the configuration states (the caller keeps, and
    closes, the data set it passed)."""
    st = data_statements(cfg)
    if not _disagrees(ds, st):
        return ds
    decided = ds.meta.get("field") or {}
    if decided.get("source") == "file":
        check_file_field(ds.modality, f"{ds.source_path}: {decided.get('reason')}", st)
    if not ds.source_path or decided.get("source") != "guess":
        raise ConfigError(f"{st.field_from or 'data.farfield_order'} disagrees with the data set "
                          f"given ({ds.modality} data, {field_line(ds)}); give a data set read "
                          "that way or change the key")
    path = Path(ds.source_path)
    log.info("%s: read again as %s states (the file alone suggested %s)", path.name,
             st.field_from or "data.farfield_order", field_line(ds))
    return open_dataset(path if path.is_absolute() or base_dir is None else Path(base_dir) / path,
                        allow_external=cfg.data.allow_external_links, statements=st)


def field_choices(cfg, ds: Dataset) -> list[Choice]:
    """``data.field`` and ``data.farfield_order`` settled from the data set, where ``auto``."""
    out = []
    decided = ds.meta.get("field") or {}
    if cfg.data.field == "auto" and ds.modality in FIELD_OF:
        source = decided.get("source")
        why = {"guess": f"guessed from {decided.get('reason')}",
               "file": f"the file's layout: {decided.get('reason')}"}.get(
                   source, f"stated by {source}" if source else "the data set's modality")
        out.append(Choice("data.field", FIELD_OF[ds.modality], why))
    fft = ds.meta.get("farfield_fft")
    if cfg.data.farfield_order == "auto" and ds.modality == "farfield" and fft is not None:
        out.append(Choice("data.farfield_order", "fft" if fft else "centred",
                          ds.meta.get("farfield_order") or "as read"))
    return out
