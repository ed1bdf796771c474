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
    # the machinery under test runs every epoch on every frame unless a test asks for held-out
    # data (the weight search and early stopping are tested in test_validation.py)
    cfg.run.validation_share = 0.0
    for path, value in (overrides or {}).items():
        set_value(cfg, path, value)
    return cfg


def weak_glass_cone_ptychotomo(path: Path, n_angles: int, with_probe: bool) -> dict:
    """Ptychotomography of a hollow SiO2 cone, 24^3 voxels of 1 nm, at 5 keV (a weak object:
    frames within ~0.1 % of their mean), by Slicewise's own simulator (a flat-phase Gaussian probe
    of 16^2 pixels centred at p // 2, 3 px raster steps), written in Adorym's layout with or
    without the probe. Returns the simulator's arrays (``truth``, ``probe``, ...)."""
    from slicewise.engine.geometry import Geometry  # noqa: PLC0415
    from slicewise.engine.io.adorym import write_adorym  # noqa: PLC0415
    from slicewise.engine.simulate import simulate_arrays  # noqa: PLC0415

    sc = SimulationConfig(modality="ptycho", phantom=PhantomSpec(kind="cone"), material="SiO2 glass",
                          energy_ev=5000, pixel_size_m=1e-9, object_shape=(24, 24, 24),
                          n_angles=n_angles, probe_kind="gaussian", probe_shape=(16, 16),
                          probe_size_px=6, scan_step_px=3, seed=5)
    d = simulate_arrays(sc, "numpy")
    geo = Geometry(modality="farfield", energy_ev=sc.energy_ev, pixel_size_m=sc.pixel_size_m,
                   angles_rad=d["angles_rad"], positions_px=d["positions_px"],
                   slice_thickness_m=d["slice_thickness_m"])
    write_adorym(path, d["intensities"], geo, probe=d["probe"] if with_probe else None,
                 truth=d["truth"])
    return d
