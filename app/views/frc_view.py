"""The split-half Fourier ring correlation (FRC) of a result: the curve, its 1/7 and half-bit
thresholds, and the resolution where the curve crosses each (``engine/quality/frc.py``; the table
``OUT/frc.h5`` of ``slicewise reconstruct --halves``).

The x axis is the spatial frequency in cycles per um (per nm for pixels under 5 nm); a frequency
``f`` is a full period, a resolution, of ``1 / f``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from slicewise.engine.quality.frc import ONE_SEVENTH

from .common import format_length

NO_FRC = ("No resolution estimate yet. `slicewise reconstruct CONFIG --halves --out OUT` "
          "reconstructs the odd and the even frames apart and writes OUT/frc.h5; open it (or a "
          "result in OUT) here.")


class FRCView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result = None
        self.summary = QLabel(NO_FRC)
        self.summary.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        for name in ("bottom", "left"):
            self.plot.getAxis(name).enableAutoSIPrefix(False)
        self.plot.setLabel("left", "Fourier ring correlation")
        self.plot.addLegend(offset=(10, -10))   # lower left: the curves start high
        self.plot.setYRange(-0.1, 1.05)
        self.curve = self.plot.plot([], [], pen=pg.mkPen("#1f4e96", width=2.5), symbol="o",
                                    symbolSize=4, symbolBrush="#1f4e96", symbolPen=None,
                                    name="FRC of the two halves")
        self.half_bit = self.plot.plot([], [], pen=pg.mkPen("#e67e22", width=1.5,
                                                            style=pg.QtCore.Qt.PenStyle.DashLine),
                                       name="half-bit threshold")
        self.seventh = self.plot.plot([], [], pen=pg.mkPen("#7f7f7f", width=1.5,
                                                           style=pg.QtCore.Qt.PenStyle.DotLine),
                                      name="1/7 threshold")
        self.marks: list[pg.InfiniteLine] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.summary)
        lay.addWidget(self.plot, 1)

    def has_data(self) -> bool:
        return self.result is not None

    def set_result(self, res, sources=(), title: str = "") -> None:
        """Draw an :class:`~slicewise.engine.quality.frc.FRCResult`; ``sources``: the two files
        compared; ``title``: where it came from (the table's file)."""
        self.result = res
        # Nyquist (0.5 / pixel) of a few units at least: per nm below 5 nm pixels
        unit, per_m = ("nm", 1e-9) if res.pixel_size_m < 5e-9 else ("\u00b5m", 1e-6)
        f = np.asarray(res.frequency, float) / res.pixel_size_m * per_m   # cycles per unit
        self.curve.setData(f, np.asarray(res.frc, float))
        self.half_bit.setData(f, np.asarray(res.half_bit, float))
        self.seventh.setData(f, np.full_like(f, ONE_SEVENTH))
        self.plot.setLabel("bottom", f"spatial frequency (1/{unit}); resolution = 1 / frequency")
        for m in self.marks:
            self.plot.removeItem(m)
        self.marks = []
        for key, colour in (("half-bit", "#e67e22"), ("1/7", "#7f7f7f")):
            r = res.resolution_m[key]
            if res.reached[key] and r > 0:
                line = pg.InfiniteLine(per_m / r, angle=90, movable=False,
                                       pen=pg.mkPen(colour, width=1),
                                       label=f"{key}: {format_length(r)}",
                                       labelOpts={"position": 0.85 if key == "1/7" else 0.7,
                                                  "color": colour})
                self.plot.addItem(line)
                self.marks.append(line)
        self.plot.setXRange(0, float(f.max()) if f.size else 1.0)
        parts = []
        for key in ("half-bit", "1/7"):
            r = res.resolution_m[key]
            parts.append(f"{key}: {format_length(r)}" if res.reached[key] else
                         f"{key}: not reached before Nyquist ({format_length(r)})")
        names = " and ".join(Path(s).parent.name + "/" + Path(s).name for s in sources)
        self.summary.setText(
            f"<b>Resolution {', '.join(parts)}</b> (full period, pixel "
            f"{format_length(res.pixel_size_m)}; half B shifted by "
            f"({', '.join(f'{s:.2f}' if abs(s) >= 0.005 else '0' for s in res.shift_px)}) px "
            "onto A)"
            + (f"<br>{names}" if names else "") + (f"<br>{title}" if title else ""))
