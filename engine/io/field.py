"""Near or far field: the user's statements decide, the guess only fills the gap.

The field (near: holography, near-field ptychography; far: ptychography, CDI) decides how frames
are read (far-field patterns are re-ordered into the model's FFT convention, the object pixel is
``lambda z / (N p)``), so it must be settled when the file is opened -- before anything else is
decided from it. Three configuration keys state it:

* ``data.field = "near" | "far"`` (``"auto"``: not stated);
* ``model.kind``: ``nfptycho`` and ``holo`` are near-field models, ``ptycho`` a far-field one;
* ``data.source_to_sample_m``: a cone beam (a focus before the sample) exists only in the near
  field;

and ``data.farfield_order = "fft"`` states far-field frames stored with the direct beam in the
corners. Two statements that disagree are a one-line error naming both
(:func:`statements_from_keys`). :func:`decide_field` turns the statements, or else the frames'
guess (:mod:`.field_guess`), into a :class:`FieldDecision` that says where it came from; readers
whose format fixes the field (DXchange, Adorym, Slicewise files) are checked against the
statements by :func:`check_file_field`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from .field_guess import is_fft_order

log = logging.getLogger(__name__)

__all__ = ["DataStatements", "FieldDecision", "statements_from_keys", "decide_field",
           "check_file_field", "decide_order", "MODALITY_OF", "FIELD_OF", "MODEL_FIELDS"]

#: ``data.field`` value -> Dataset modality, and back.
MODALITY_OF = {"near": "nearfield", "far": "farfield"}
FIELD_OF = {v: k for k, v in MODALITY_OF.items()}
#: The field each forward model takes (``model.kind``).
MODEL_FIELDS = {"ptycho": "far", "holo": "near", "nfptycho": "near"}
#: ``data.farfield_order`` values.
ORDERS = ("auto", "centred", "fft")


@dataclass(frozen=True)
class DataStatements:
    """What the user stated about the data, for the readers.

    ``field``: ``"near"``, ``"far"`` or None (not stated); ``field_from``: the key(s) that stated
    it, e.g. ``"data.field"`` or ``"model.kind = 'nfptycho'"``; ``farfield_order``: how far-field
    frames are stored, ``"auto"`` (detected), ``"centred"`` or ``"fft"``.
    """

    field: str | None = None
    field_from: str = ""
    farfield_order: str = "auto"

    def __post_init__(self):
        if self.field not in (None, "near", "far"):
            raise ConfigError(f"data.field = {self.field!r}: choose auto, near or far")
        if self.farfield_order not in ORDERS:
            raise ConfigError(f"data.farfield_order = {self.farfield_order!r}: choose one of "
                              f"{', '.join(ORDERS)}")


@dataclass(frozen=True)
class FieldDecision:
    """How the field was settled: ``modality`` ("nearfield" | "farfield"), ``source`` (the
    configuration key that stated it, ``"guess"`` or ``"file"``) and ``reason`` (words)."""

    modality: str
    source: str
    reason: str
    magnification: float | None = None   # guessed: the scale at which features follow the scan

    @property
    def field(self) -> str:
        return FIELD_OF[self.modality]

    def describe(self) -> str:
        """``near field (data.field)``, ``far field (guessed from ...)``, ``near field (file:
        ...)``."""
        words = f"{self.field} field"
        if self.source == "guess":
            return f"{words} (guessed from {self.reason}; state data.field to override)"
        if self.source == "file":
            return f"{words} (the file's layout: {self.reason})"
        return f"{words} ({self.source})"

    def short(self) -> str:
        """Where the decision came from, in a few words (for the GUI's data summary)."""
        if self.source == "guess":
            return "guessed from the frames (data.field overrides)"
        if self.source == "file":
            return "fixed by the file's layout"
        return f"stated by {self.source}"

    def as_meta(self) -> dict:
        out = {"modality": self.modality, "source": self.source, "reason": self.reason}
        if self.magnification is not None:
            out["magnification"] = float(self.magnification)
        return out


def statements_from_keys(field: str = "auto", model_kind: str = "auto",
                         source_to_sample_m=None, farfield_order: str = "auto") -> DataStatements:
    """The statements made by the configuration keys (see the module docstring); two that
    disagree raise :class:`ConfigError` naming both."""
    said = []  # (field, key, the key with its value)
    if field not in ("auto", None):
        said.append((field, "data.field", f"data.field = {field!r}"))
    if model_kind in MODEL_FIELDS:
        said.append((MODEL_FIELDS[model_kind], f"model.kind = {model_kind!r}",
                     f"model.kind = {model_kind!r}"))
    if source_to_sample_m is not None:
        said.append(("near", "data.source_to_sample_m",
                     "data.source_to_sample_m (a cone beam, which exists only in the near field)"))
    if farfield_order == "fft":
        said.append(("far", "data.farfield_order = 'fft'", "data.farfield_order = 'fft'"))
    for (f1, _, w1), (f2, _, w2) in zip(said, said[1:]):
        if f1 != f2:
            raise ConfigError(f"{w1} states {f1}-field data but {w2} states {f2}-field data; "
                              "change one of them")
    if not said:
        return DataStatements(farfield_order=farfield_order)
    return DataStatements(said[0][0], " and ".join(k for _, k, _ in said), farfield_order)


def decide_field(statements: DataStatements | None, guess: Callable) -> FieldDecision:
    """The statements' field, else ``guess()`` (a :class:`~.field_guess.FieldGuess`)."""
    if statements is not None and statements.field is not None:
        return FieldDecision(MODALITY_OF[statements.field], statements.field_from, "stated")
    g = guess()
    return FieldDecision(MODALITY_OF[g.field], "guess", g.reason(),
                         g.magnification if g.field == "near" else None)


def decide_order(statements: DataStatements | None, mean_frame, label: str) -> tuple[bool, str]:
    """How far-field frames are stored: ``(fft, words)``; ``fft`` True when the direct beam sits
    in the corners (FFT order). The statement ``data.farfield_order`` decides; ``auto`` looks at
    the mean frame (:func:`~.field_guess.is_fft_order`)."""
    stated = statements.farfield_order if statements is not None else "auto"
    fft, ratio = is_fft_order(mean_frame)
    if stated == "fft":
        return True, "FFT order (data.farfield_order)"
    if stated == "centred":
        if fft:
            log.warning("%s: data.farfield_order = 'centred', but the direct beam sits in the "
                        "corners (%.3gx more compact after fftshift); read centred as stated",
                        label, 1 / max(ratio, 1e-3))
        return False, "centred (data.farfield_order)"
    if fft:
        log.info("%s: far-field frames stored in FFT order (direct beam in the corners, %.3gx "
                 "more compact after fftshift): read as such; data.farfield_order = 'centred' "
                 "reads them centred", label, 1 / max(ratio, 1e-3))
        return True, (f"FFT order, detected (the direct beam in the corners); state "
                      "data.farfield_order to override")
    return False, "centred (CXI's convention; data.farfield_order = 'fft' if not)"


def check_file_field(modality: str, where: str, statements: DataStatements | None) -> None:
    """For formats whose layout fixes the field: a statement that disagrees is an error naming
    both (the file cannot be read the other way): a :class:`ConfigError`, the configuration
    being inconsistent with the data."""
    if statements is None or statements.field is None or MODALITY_OF[statements.field] == modality:
        return
    raise ConfigError(f"{statements.field_from} states {statements.field}-field data but the "
                        f"file holds {FIELD_OF[modality]}-field data ({where}); unset "
                        f"{statements.field_from.split(' ')[0]} or give the other file")
