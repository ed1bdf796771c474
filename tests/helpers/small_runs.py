"""Small far-field data and quick run configurations shared by the tests of the run machinery
(output safety, resume, memory, CLI messages, MPI): what they check is the machinery, not the
reconstruction's quality, so the data are tiny and the runs write no TIFFs."""
from __future__ import annotations

from pathlib import Path

from slicewise.engine.phantoms import PhantomSpec
from slicewise.engine.recon.config import ReconConfig, set_value
from slicewise.engine.simulate import SimulationConfig, simulate


def gold_star(path: Path, n: int = 16, probe_px: int = 8, probe_size_px: float = 2.0,
              step_px: float = 4.0, **extra) -> Path:
    """Far-field 2D ptychography of a gold Siemens star: n x n object of 10 nm pixels, a probe of
    probe_px^2 pixels (focus ``probe_size_px`` wide), raster step ``step_px``, 1e5 photons per
    frame. ``extra``: further :class:`SimulationConfig` fields. Returns the written file."""
    cfg = SimulationConfig(modality="ptycho", phantom=PhantomSpec(kind="siemens"),
                           object_shape=(1, n, n), material="gold", pixel_size_m=10e-9,
                           probe_shape=(probe_px, probe_px), probe_size_px=probe_size_px,
                           scan_step_px=step_px, photons=1e5, **extra)
    return simulate(cfg, path, "numpy")


def quick_config(data: Path, out: Path, epochs: int = 2,
                 overrides: dict | None = None) -> ReconConfig:
    """A NumPy run of ``data`` into ``out`` without TIFFs; ``overrides``: dotted path -> value."""
    cfg = ReconConfig()
    cfg.data.path = str(data)
    cfg.run.output_dir = str(out)
    cfg.run.backend = "numpy"
    cfg.run.epochs = epochs
    cfg.run.save_tiff = False
    for path, value in (overrides or {}).items():
        set_value(cfg, path, value)
    return cfg
