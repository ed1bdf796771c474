"""Loss curve: total and per-term losses per epoch, and the per-minibatch loss, on a log scale;
the validation loss (held-out frames) and its best epoch when the run has them.

The x axis is in epochs. Minibatch ``b`` of ``n`` in (1-based) epoch ``e`` sits at
``e - 1 + b / n``, so the last minibatch of an epoch lines up with that epoch's mean.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

_TERM_COLOURS = ("#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _positive(values) -> np.ndarray:
    # a log axis cannot show zero or negative values; NaN leaves a gap instead of a wrong point
    a = np.asarray(values, dtype=np.float64)
    return np.where(a > 0, a, np.nan)


class _LogAxis(pg.AxisItem):
    """Log axis that labels decades and the 2 and 5 in between (as matplotlib does), instead of
    every minor tick, whose labels overlap within a decade."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph name
        strings = super().logTickStrings(values, scale, spacing)
        out = []
        for v, text in zip(values, strings):
            mantissa = 10 ** (v - np.floor(v + 1e-9))
            out.append(text if min(abs(mantissa - k) for k in (1, 2, 5, 10)) < 1e-3 else "")
        # a range within one decade may hold one 1/2/5 tick or none: then label every tick
        return out if sum(1 for t in out if t) >= 2 else strings


class LossView(QWidget):
    """Accumulates progress events; :meth:`refresh` redraws (called on a timer, not per event)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = pg.PlotWidget(axisItems={"left": _LogAxis(orientation="left")})
        self.plot.setLogMode(y=True)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "epoch")
        self.plot.setLabel("left", "loss")
        # plain powers of ten on the log axis, and epochs as they are (minibatches of the first
        # epoch sit at 0.001..1: "epoch (x0.001)" otherwise), not an SI-prefix factor
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.addLegend(offset=(-10, 10))
        self._batch_curve = self.plot.plot([], [], pen=pg.mkPen("#9bb7d4", width=1),
                                           name="minibatch")
        self._total_curve = self.plot.plot([], [], pen=pg.mkPen("#1f4e96", width=2.5),
                                           symbol="o", symbolSize=5, symbolBrush="#1f4e96",
                                           symbolPen=None, name="total (epoch mean)")
        self._term_curves: dict[str, pg.PlotDataItem] = {}
        self.validation_curve: pg.PlotDataItem | None = None  # made when the first value comes
        self.best_line = pg.InfiniteLine(angle=90, movable=False,
                                         pen=pg.mkPen("#e67e22", width=1.2,
                                                      style=pg.QtCore.Qt.PenStyle.DashLine),
                                         label="best", labelOpts={"position": 0.9,
                                                                  "color": "#e67e22"})
        self.best_line.setVisible(False)
        self.plot.addItem(self.best_line, ignoreBounds=True)
        self.show_batches = QCheckBox("minibatches")
        self.show_batches.setChecked(True)
        self.show_terms = QCheckBox("terms")
        self.show_terms.setChecked(True)
        self.summary = QLabel("no run yet")
        for box in (self.show_batches, self.show_terms):
            box.toggled.connect(self._apply_visibility)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.show_batches)
        top.addWidget(self.show_terms)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        self.clear()

    # ---- data ----------------------------------------------------------------------------------
    def clear(self) -> None:
        self.batch_x: list[float] = []
        self.batch_loss: list[float] = []
        self.epochs: list[int] = []
        self.epoch_loss: list[float] = []
        self.terms: dict[str, list[float]] = {}
        self.validation: dict[int, float] = {}   # epoch -> validation loss
        self.best_epoch = 0                      # 0: none
        self._dirty = True
        for c in self._term_curves.values():
            self.plot.removeItem(c)
            self.plot.getPlotItem().legend.removeItem(c)
        self._term_curves.clear()
        if self.validation_curve is not None:
            self.plot.removeItem(self.validation_curve)
            self.plot.getPlotItem().legend.removeItem(self.validation_curve)
            self.validation_curve = None
        self.refresh()
        self.summary.setText("no run yet")

    def add_event(self, ev) -> None:
        """A ProgressEvent ("batch" and "epoch" kinds are plotted; others are ignored)."""
        if ev.kind == "batch" and ev.n_batches:
            self.batch_x.append(ev.epoch - 1 + ev.batch / ev.n_batches)
            self.batch_loss.append(float(ev.loss))
            self._dirty = True
        elif ev.kind == "epoch":
            if self.epochs and ev.epoch <= self.epochs[-1]:
                return  # already known (e.g. from a resumed history)
            self.epochs.append(int(ev.epoch))
            self.epoch_loss.append(float(ev.loss))
            val = getattr(ev, "validation", None)   # the held-out data's loss (NaN: none)
            if val is not None and np.isfinite(val):
                self.validation[int(ev.epoch)] = float(val)
                self.best_epoch = min(self.validation, key=self.validation.get)
            for name, v in (ev.terms or {}).items():
                col = self.terms.setdefault(name, [np.nan] * (len(self.epochs) - 1))
                col.append(float(v))
            for col in self.terms.values():  # a term missing this epoch
                while len(col) < len(self.epochs):
                    col.append(np.nan)
            self._dirty = True

    def set_history(self, history: list[dict], batch_losses: list[float] | None = None,
                    n_batches: int | None = None, best_epoch: int = 0) -> None:
        """Replace everything by a run's history (a resumed run or a result file);
        ``best_epoch``: the epoch of the lowest validation loss as the run recorded it (0: the
        lowest of the records' ``"validation"`` values, if any)."""
        self.clear()
        self.set_validation(history, best_epoch)
        for rec in history:
            self.epochs.append(int(rec["epoch"]))
            self.epoch_loss.append(float(rec["loss"]))
            for name, v in rec.get("terms", {}).items():
                col = self.terms.setdefault(name, [np.nan] * (len(self.epochs) - 1))
                col.append(float(v))
            for col in self.terms.values():
                while len(col) < len(self.epochs):
                    col.append(np.nan)
        if batch_losses and self.epochs:
            nb = n_batches or max(1, round(len(batch_losses) / max(len(self.epochs), 1)))
            self.batch_x = [(i + 1) / nb for i in range(len(batch_losses))]
            self.batch_loss = [float(v) for v in batch_losses]
        self._dirty = True
        self.refresh()

    def set_validation(self, history: list[dict], best_epoch: int = 0) -> None:
        """The validation losses of a history's records (``"validation"``, where present) and
        the best epoch (``best_epoch``, else the one of the lowest validation loss)."""
        vals = {int(r["epoch"]): float(r["validation"]) for r in history
                if r.get("validation") is not None and np.isfinite(r["validation"])}
        if not best_epoch and vals:
            best_epoch = min(vals, key=vals.get)
        if vals != self.validation or best_epoch != self.best_epoch:
            self.validation, self.best_epoch = vals, int(best_epoch)
            self._dirty = True

    def has_data(self) -> bool:
        return bool(self.batch_loss or self.epoch_loss)

    # ---- drawing -------------------------------------------------------------------------------
    def refresh(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self._batch_curve.setData(np.asarray(self.batch_x, float), _positive(self.batch_loss),
                                  connect="finite")
        self._total_curve.setData(np.asarray(self.epochs, float), _positive(self.epoch_loss),
                                  connect="finite")
        # one extra curve per loss term, but only when there is more than one term (a single
        # "data" term equals the total and would just hide it)
        if len(self.terms) > 1:
            for i, (name, values) in enumerate(self.terms.items()):
                curve = self._term_curves.get(name)
                if curve is None:
                    pen = pg.mkPen(_TERM_COLOURS[i % len(_TERM_COLOURS)], width=1.5,
                                   style=pg.QtCore.Qt.PenStyle.DashLine)
                    curve = self.plot.plot([], [], pen=pen, name=name)
                    self._term_curves[name] = curve
                curve.setData(np.asarray(self.epochs, float), _positive(values), connect="finite")
        self._draw_validation()
        self._apply_visibility()
        if self.epoch_loss:
            first, last = self.epoch_loss[0], self.epoch_loss[-1]
            change = f" ({last / first:.3g} \u00d7 epoch 1)" if first > 0 else ""
            text = f"epoch {self.epochs[-1]}: loss {last:.4g}{change}"
            if self.validation:
                text += f"; validation {self.validation[max(self.validation)]:.4g}"
            if self.best_epoch:
                text += f"; best epoch {self.best_epoch}"
            self.summary.setText(text)
        elif self.batch_loss:
            self.summary.setText(f"minibatch loss {self.batch_loss[-1]:.4g}")

    def _draw_validation(self) -> None:
        if self.validation and self.validation_curve is None:
            self.validation_curve = self.plot.plot(
                [], [], pen=pg.mkPen("#e67e22", width=2), symbol="s", symbolSize=5,
                symbolBrush="#e67e22", symbolPen=None, name="validation (held-out frames)")
        if self.validation_curve is not None:
            x = np.asarray(self.epochs, float)
            y = [self.validation.get(int(e), np.nan) for e in self.epochs]
            self.validation_curve.setData(x, _positive(y), connect="finite")
        self.best_line.setVisible(self.best_epoch > 0)
        if self.best_epoch:
            self.best_line.setValue(self.best_epoch)

    def _apply_visibility(self) -> None:
        self._batch_curve.setVisible(self.show_batches.isChecked())
        for c in self._term_curves.values():
            c.setVisible(self.show_terms.isChecked())
