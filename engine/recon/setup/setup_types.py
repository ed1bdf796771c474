"""The types of model set-ups (:mod:`.model_setup`): what a builder gets and returns, and how a
model kind is described. Builders import these, not the registry, so the registry can import the
builders to register them without an import cycle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...backend import Backend
from ...io.datafile import Dataset
from ...models.base import ForwardModel
from ...models.common import Optics
from ..config import ReconConfig


@dataclass
class SetupContext:
    """What a model builder gets: the configuration, the data, where the arrays live, the optics
    (energy, pixel, slice spacing and propagator after configuration overrides), the object grid,
    the distances (near field, metres) and a few measured frames for intensity scales."""

    config: ReconConfig
    dataset: Dataset
    backend: Backend
    base_dir: Path
    optics: Optics
    object_shape: tuple
    distances_m: np.ndarray | None
    sample: np.ndarray            # a few frames (A', S', fy, fx), model convention

    @property
    def mean_frame_photons(self) -> float:
        return float(self.sample.sum(axis=(-2, -1)).mean())


@dataclass
class ModelStart:
    """A built model with its initial unknowns (on the backend) and what the solver keeps."""

    model: ForwardModel
    params: dict
    probe_power: float | None = None          # photons per frame of the initial probe
    initial_positions: np.ndarray | None = None
    probe_known: bool = False   # the starting probe came from the data file or init.probe_path


@dataclass(frozen=True)
class ModelSetup:
    """How to choose and build one kind of forward model (see the module docstring)."""

    name: str
    fits: Callable[[Dataset], bool]
    scanned: bool                   # object grid from the scan positions (else: the frame)
    build: Callable[[SetupContext], ModelStart]
    data_words: str                 # the data it fits, for messages: "far-field data"
