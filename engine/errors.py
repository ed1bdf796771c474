"""Error types whose messages are meant for the user: they name the field and say what to do."""

from __future__ import annotations


class SlicewiseError(Exception):
    """Base class: the command line prints these as one line, the GUI as a dialog."""


class DataFileError(SlicewiseError):
    """A data file is missing something, or holds values of the wrong shape, type or range."""


class BadFrameError(DataFileError):
    """A measured frame is not finite, negative or zero everywhere.

    ``dataset``: the HDF5 dataset (or label) holding it; ``frame``: ``(angle, spot)`` or None.
    """

    def __init__(self, message: str, dataset: str = "", frame: tuple | None = None):
        super().__init__(message)
        self.dataset, self.frame = dataset, frame


class ConfigError(SlicewiseError):
    """A configuration value is unknown, of the wrong type, or inconsistent with the data."""


class DivergenceError(SlicewiseError):
    """The loss became NaN/inf during a run; the last checkpoint is kept."""


class OutputError(SlicewiseError):
    """A result, checkpoint or export could not be written (disk full, permissions, a file in the way)."""
