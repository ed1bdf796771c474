"""``slicewise demo --headless``: simulate the cone demo once, reconstruct it with a progress bar,
print the correlation with the truth; data, result, checkpoint, TIFFs and ``demo_summary.json``
end up in the output folder."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from slicewise.engine.demo import DEMO_SIM, demo_config, demo_summary, ensure_demo_data
from slicewise.engine.recon.config import set_value

from .reconstruct import reconstruct_with_progress


def run_headless_demo(out_dir="slicewise-demo", epochs: int | None = None,
                      backend: str = "auto") -> int:
    """Returns the exit code of the reconstruction (0 on success)."""
    out = Path(out_dir).resolve()
    print(f"Slicewise demo: holotomography of a hollow glass cone {DEMO_SIM.object_shape}, "
          f"{DEMO_SIM.n_angles} angles, {len(DEMO_SIM.distances_m)} distances -> {out}")
    data = ensure_demo_data(out, backend)
    cfg = demo_config(data, out)
    if epochs is not None:
        set_value(cfg, "run.epochs", epochs)
    set_value(cfg, "run.backend", backend)
    rc = reconstruct_with_progress(cfg, out, tqdm=tqdm)
    summary = demo_summary(out, data)
    print(f"3D correlation with the truth: delta {summary.get('correlation_delta', float('nan')):.4f}, "
          f"beta {summary.get('correlation_beta', float('nan')):.4f}")
    return rc
