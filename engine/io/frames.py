"""Frames as stored -> frames in model convention, and where frames come from.

:class:`FrameConversion` maps stored frames (intensities or magnitudes, centred or not, unitary
or unnormalised FFT scale) to the model convention of docs/ARCHITECTURE.md. A *frame source* is
anything with ``shape`` ``(A, S, fy, fx)``, ``label``, ``conversion``, ``read(a_idx, s_idx,
check=True)`` returning model-convention float32 frames, and ``close()``: :class:`ArraySource`
(memory) and :class:`H5Source` (an HDF5 dataset, read lazily) are the two here; a reader of a
new format may bring its own. :class:`LazyTruth` reads ground-truth arrays on first access.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import BadFrameError, DataFileError
from .hdf5 import h5py_module

@dataclass(frozen=True)
class FrameConversion:
    """How stored frames map to model-convention intensities.

    quantity: ``"intensity"`` or ``"magnitude"`` (square it).
    centered: zero frequency stored at ``(fy//2, fx//2)`` (``fftshift``-ed); undone by ifftshift.
    fft_norm: ``"ortho"`` (unitary FFT) or ``"backward"`` (unnormalised forward FFT, as Adorym:
        ``sum(I) = fy fx sum|psi|^2``); the latter is divided by ``fy * fx``.
    """

    quantity: str = "intensity"
    centered: bool = False
    fft_norm: str = "ortho"

    def to_model(self, raw: np.ndarray) -> np.ndarray:
        a = np.asarray(raw, dtype=np.float32)
        if self.quantity == "magnitude":
            a = a * a
        if self.centered:
            a = np.fft.ifftshift(a, axes=(-2, -1))
        if self.fft_norm == "backward":
            a = a / np.float32(a.shape[-1] * a.shape[-2])
        return np.ascontiguousarray(a, dtype=np.float32)

    def from_model(self, intensity: np.ndarray) -> np.ndarray:
        a = np.asarray(intensity, dtype=np.float64)
        if self.fft_norm == "backward":
            a = a * (a.shape[-1] * a.shape[-2])
        if self.centered:
            a = np.fft.fftshift(a, axes=(-2, -1))
        if self.quantity == "magnitude":
            a = np.sqrt(np.maximum(a, 0.0))
        return a.astype(np.float32)

    def describe(self) -> str:
        parts = ["magnitudes" if self.quantity == "magnitude" else "intensities"]
        if self.centered:
            parts.append("centred")
        if self.fft_norm == "backward":
            parts.append("unnormalised FFT")
        return ", ".join(parts)


MODEL_CONVENTION = FrameConversion()


def check_raw(raw: np.ndarray, label: str, where: str, frame_name=None) -> None:
    """Refuse frames that are not finite, negative, or zero everywhere, naming the first bad one.

    ``raw``: ``(..., fy, fx)`` as read; ``frame_name(i)`` names frame ``i`` of the leading axes
    flattened (e.g. ``"angle 0, spot 50"``); without it the frame is counted within ``where``.
    A frame that is zero everywhere is a chunk the file never stored, a file truncated while it
    was read, or a dead detector frame: fitting it would fit nothing.
    """
    if raw.size == 0:
        return
    frames = raw.reshape(-1, raw.shape[-2] * raw.shape[-1]) if raw.ndim >= 2 else raw.reshape(1, -1)

    def name(i: int) -> str:
        return frame_name(i) if frame_name is not None else f"{i + 1} of those read {where}"

    finite = np.isfinite(frames).all(axis=1)
    if not finite.all():
        raise BadFrameError(f"{label}: frame {name(int(np.argmin(finite)))} contains NaN or infinite "
                            "values; measured frames must be finite", label)
    low = frames.min(axis=1)
    if low.min() < 0:
        i = int(np.argmax(low < 0))
        raise BadFrameError(f"{label}: frame {name(i)} contains negative values (min {low[i]:g}); "
                            "frames must be non-negative intensities or magnitudes "
                            "(clip after background subtraction)", label)
    empty = ~frames.any(axis=1)
    if empty.any():
        i = int(np.argmax(empty))
        raise BadFrameError(f"{label}: frame {name(i)} is zero everywhere ({int(empty.sum())} of "
                            f"{len(empty)} frames read{' ' + where if where else ''}): a frame the "
                            "file never stored, "
                            "a file truncated while being read, or a detector that saw nothing; "
                            "repair the file or remove those frames", label)


def grid_names(a_idx, s_idx):
    """``frame_name`` for frames read as ``(len(a_idx), len(s_idx), fy, fx)``."""
    a_idx, s_idx = np.asarray(a_idx).ravel(), np.asarray(s_idx).ravel()
    return lambda i: f"(angle {int(a_idx[i // len(s_idx)])}, spot {int(s_idx[i % len(s_idx)])})"


def refuse_complex(dtype, label: str) -> None:
    """Refuse frames that are not real numbers: complex ones would lose their imaginary part when
    converted to intensities; booleans are a mask or a thresholded image, not measurements."""
    kind = np.dtype(dtype).kind
    if kind == "c":
        raise DataFileError(f"{label}: frames are complex ({np.dtype(dtype)}); store measured "
                            "intensities or magnitudes (|field|) as real numbers")
    if kind not in "iuf":
        what = "booleans (a mask?)" if kind == "b" else f"not numbers ({np.dtype(dtype)})"
        raise DataFileError(f"{label}: frames are {what}; store the measured intensities (or "
                            "magnitudes) as integers or floating-point numbers")


class ArraySource:
    """Frames held in memory, shape ``(A, S, fy, fx)``, in ``conversion`` (default model)."""

    def __init__(self, frames: np.ndarray, label: str = "intensities",
                 conversion: FrameConversion = MODEL_CONVENTION):
        self.array, self.label, self.conversion = frames, label, conversion
        self.shape = tuple(frames.shape)

    def read(self, a_idx: np.ndarray, s_idx: np.ndarray, check: bool = True) -> np.ndarray:
        raw = self.array[np.ix_(a_idx, s_idx)]
        if check:
            check_raw(raw, self.label, "", grid_names(a_idx, s_idx))
        return self.conversion.to_model(raw)

    def close(self) -> None:
        pass


class LazyH5File:
    """Mixin of the file-backed frame sources: ``self.path`` opened on first use and kept open,
    reopened in a forked or unpickled copy (an h5py handle survives neither). Needs ``path`` and
    ``name`` (the dataset named in messages)."""

    _file = None
    _pid = None

    def _h5(self):
        if self._file is None or self._pid != os.getpid():
            try:
                self._file = h5py_module().File(self.path, "r")
            except (OSError, RuntimeError, ValueError) as exc:
                raise DataFileError(f"{self.name}: cannot open {self.path} "
                                    f"({' '.join(str(exc).split())[:160]}); the file is damaged, or "
                                    "was changed or moved during the run") from None
            self._pid = os.getpid()
        return self._file

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None
        return state


class SubsetSource:
    """Some angles and spots of another frame source (e.g. the odd scan positions, for a
    split-half reconstruction); frames are read from ``parent`` on demand."""

    def __init__(self, parent, angles: np.ndarray, spots: np.ndarray):
        self.parent = parent
        self.angles, self.spots = np.asarray(angles, int), np.asarray(spots, int)
        self.shape = (len(self.angles), len(self.spots)) + tuple(parent.shape[2:])
        self.label, self.conversion = parent.label, parent.conversion

    def read(self, a_idx: np.ndarray, s_idx: np.ndarray, check: bool = True) -> np.ndarray:
        return self.parent.read(self.angles[np.asarray(a_idx)], self.spots[np.asarray(s_idx)],
                                check)

    def close(self) -> None:
        self.parent.close()


class H5Source(LazyH5File):
    """Frames read lazily from an HDF5 dataset ``(A, S, fy, fx)`` (or ``(A, fy, fx)``, S = 1).

    The file is opened on first use and kept open (reopened after a fork or pickling). h5py
    needs increasing indices, so reads are per angle over the sorted unique spots (a slice when
    they are contiguous) and reordered afterwards.
    """

    def __init__(self, path: str, name: str, shape: tuple[int, ...], conversion: FrameConversion):
        self.path, self.name, self.conversion = path, name, conversion
        self.has_spot_axis = len(shape) == 4
        self.shape = tuple(shape) if self.has_spot_axis else (shape[0], 1, shape[1], shape[2])
        self.label = name
        self._size = 0

    def _dataset(self):
        if self._file is None or self._pid != os.getpid():
            try:
                dset = self._h5()[self.name]
            except (OSError, KeyError, RuntimeError, ValueError) as exc:
                raise DataFileError(f"{self.name}: cannot open the frames in {self.path} "
                                    f"({' '.join(str(exc).split())[:160]}); the file is damaged, or "
                                    "was changed or moved during the run") from None
            refuse_complex(dset.dtype, self.name)
            self._size = os.path.getsize(self.path)
            check_storage(dset, self.path, self._size)
        return self._file[self.name]

    def _check_size(self) -> None:
        """A file that shrank since it was opened returns zeros past its new end: refuse."""
        try:
            now = os.path.getsize(self.path)
        except OSError as exc:
            raise DataFileError(f"{self.name}: the data file {self.path} can no longer be read "
                                f"({exc.strerror}); it was moved or deleted during the run") from None
        if now < self._size:
            raise DataFileError(f"{self.name}: the data file {self.path} shrank from {self._size} to "
                                f"{now} bytes while being read (truncated or rewritten); restore it "
                                "and resume from the last checkpoint")

    def read(self, a_idx: np.ndarray, s_idx: np.ndarray, check: bool = True) -> np.ndarray:
        dset = self._dataset()
        fy, fx = self.shape[-2:]
        s_u, s_inv = np.unique(s_idx, return_inverse=True)
        contiguous = s_u[-1] - s_u[0] + 1 == len(s_u)
        a_u, a_inv = np.unique(a_idx, return_inverse=True)
        raw = np.empty((len(a_u), len(s_u), fy, fx), dtype=np.float32)
        try:
            for i, a in enumerate(a_u):
                if not self.has_spot_axis:
                    raw[i, 0] = dset[int(a)]
                elif contiguous:
                    raw[i] = dset[int(a), int(s_u[0]):int(s_u[-1]) + 1]
                else:
                    raw[i] = dset[int(a), s_u.tolist()]
        except (OSError, RuntimeError, ValueError) as exc:  # damaged chunks, a vanished file
            raise DataFileError(f"{self.name}: frames at angles {a_u.tolist()[:4]} cannot be read from "
                                f"{self.path} ({' '.join(str(exc).split())[:160]}); the file is "
                                "damaged or was changed during the run") from None
        self._check_size()
        if check:
            check_raw(raw, self.name, "", grid_names(a_u, s_u))
        return self.conversion.to_model(raw[np.ix_(a_inv.ravel(), s_inv.ravel())])



def check_storage(dset, path, file_size: int) -> None:
    """A contiguous dataset must lie inside the file: one that claims more frames than the file
    holds would read zeros (chunked datasets are caught frame by frame: missing chunks are zero)."""
    if dset.chunks is not None or dset.id.get_storage_size() == 0:
        return
    try:
        end = dset.id.get_offset() + dset.id.get_storage_size()
    except (TypeError, ValueError, RuntimeError):  # no offset (e.g. compact or external storage)
        return
    if end > file_size:
        raise DataFileError(f"{dset.name}: the dataset {dset.shape} claims {end} bytes but {path} "
                            f"holds only {file_size}: the file is truncated; copy it again")


class LazyTruth(Mapping):
    """Ground-truth arrays of a file, loaded (and cached) on first access.

    ``transform(name, array)`` converts the stored array (e.g. Adorym ``[y,x,z]`` -> ``(z,y,x)``).
    """

    def __init__(self, path: str, group: str, names: list[str], transform=None):
        self._path, self._group, self._names = path, group, list(names)
        self._transform = transform or (lambda name, a: a)
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, key):
        if key not in self._names:
            raise KeyError(f"no ground truth {key!r} in {self._path}; available: {self._names}")
        if key not in self._cache:
            with h5py_module().File(self._path, "r") as f:
                self._cache[key] = self._transform(key, np.asarray(f[self._group][key][()]))
        return self._cache[key]

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

