"""The FRC curve as a PNG: correlation against spatial frequency, the 1/7 and half-bit
thresholds, and the resolution each gives (drawn with matplotlib's Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write
from .frc import ONE_SEVENTH, FRCResult

__all__ = ["plot_frc"]


def plot_frc(result: FRCResult, path: str | Path, title: str = "") -> Path:
    """Write ``result`` as a PNG plot at ``path`` (atomically); returns the path.

    x axis: spatial frequency in 1/um (full period: resolution = 1 / frequency), with the
    Nyquist frequency ``1 / (2 pixel)`` at the right edge; y axis: the correlation."""
    # matplotlib is imported here only: it costs ~0.3 s, and only this plot needs it
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # noqa: PLC0415

    per_um = result.frequency / result.pixel_size_m * 1e-6
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(per_um, result.frc, color="C0", lw=1.6, label="FRC")
    ax.axhline(ONE_SEVENTH, color="C1", lw=1, ls="--", label="1/7")
    ax.plot(per_um, result.half_bit, color="C2", lw=1, ls=":", label="half-bit")
    for key, color in (("1/7", "C1"), ("half-bit", "C2")):
        if result.reached[key]:
            f = 1e-6 / result.resolution_m[key]
            ax.axvline(f, color=color, lw=0.8, alpha=0.6)
            ax.annotate(f"{result.resolution_m[key] * 1e9:.3g} nm", (f, 0.92), color=color,
                        rotation=90, ha="right", va="top", fontsize=8)
    ax.set_xlim(0, per_um[-1])
    ax.set_ylim(min(-0.1, float(np.min(result.frc)) - 0.05), 1.05)
    ax.set_xlabel("spatial frequency (1/um)")
    ax.set_ylabel("Fourier ring correlation")
    ax.set_title(title or result.summary(), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path
