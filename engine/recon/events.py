"""What a run tells its observers: :class:`ProgressEvent` (callbacks, after each minibatch and
epoch and on state changes) and :class:`Snapshot` (host copies of the estimate for live views).
Both are plain data, picklable (the GUI's solver process sends them to the window)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ProgressEvent", "Snapshot"]


@dataclass
class ProgressEvent:
    """What a callback receives after each minibatch/epoch and on state changes."""

    kind: str                      # "batch" | "epoch" | "state" | "checkpoint" | "config"
    epoch: int
    n_epochs: int
    batch: int = 0
    n_batches: int = 0
    loss: float = float("nan")
    terms: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    eta_s: float = float("nan")
    state: str = "running"
    message: str = ""
    validation: float = float("nan")             # "epoch": the held-out data's loss (NaN: none)
    changes: dict = field(default_factory=dict)   # "config": dotted path -> value chosen by the run
    reasons: dict = field(default_factory=dict)   # "config": dotted path -> why it was chosen


@dataclass
class Snapshot:
    """Host copies of the current estimate, for live views (see docs/ARCHITECTURE.md)."""

    epoch: int
    delta: np.ndarray | None
    beta: np.ndarray | None
    object: np.ndarray | None
    probe: np.ndarray | None
    positions: np.ndarray | None
    initial_positions: np.ndarray | None
    distances: np.ndarray | None
    history: list
    batch_losses: list
    measured: np.ndarray | None
    modelled: np.ndarray | None
    pixel_size_m: float
    slice_thickness_m: float
    truth: dict
