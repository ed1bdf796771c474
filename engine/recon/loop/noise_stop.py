"""Stopping a fit that has no held-out data once its progress drops below what the noise resolves.

Fitting pure noise, each extra degree of freedom lowers the misfit summed over the data, in units
of one measurement's expected noise misfit, by about 1. So an epoch that lowers the objective by
less than that has stopped finding structure the data can tell from noise, and further epochs
mostly fit noise in directions the data barely constrain. In held-out-pixel holography, the
final fit on every pixel has no validation loss to watch, and this is what happens there: the
objective changes by well under 1 % while the estimate drifts away from the truth. Four distances,
a weak cell at 1e4 photons per pixel: the correlation is 0.325 at epoch 55 and 0.10 at epoch 200.
The rule stops it at epoch 60 (0.324). Fits that still resolve structure run on: strong phase at
1e4 photons kept above the threshold for all 200 epochs (0.77 -> 0.97). The evidence is in
benchmarks/README.md, "Counting noise".

The noise level must be known (counts, scaled counts or stated): one estimated from the frames
is an upper bound, and on noise-free data the rule would stop a fit that still improves
(:attr:`...io.noise.NoiseEstimate.known`).

The decrease is averaged over :data:`WINDOW` epochs. L-BFGS has single epochs with little
progress, or even a rise, between productive ones.
"""

from __future__ import annotations

import math

__all__ = ["WINDOW", "NoiseResolutionStop"]

#: Epochs over which the objective's decrease is averaged.
WINDOW = 10


class NoiseResolutionStop:
    """Decides, after each epoch, whether the fit's recent progress is below the noise's resolution.

    ``n_measurements``: the number of measured values the data term averages over (pixels times
    frames, masked pixels excluded). The objective is the loss the run records per epoch, which is
    a mean per measurement. ``expected`` (see :meth:`after_epoch`) is the data loss expected at the
    noise level, in the same units.
    """

    def __init__(self, n_measurements: int, window: int = WINDOW):
        if n_measurements <= 0 or window < 1:
            raise ValueError(f"need n_measurements > 0 and window >= 1, got {n_measurements}, "
                             f"{window}")
        self.n, self.window = int(n_measurements), int(window)
        self.losses: list[float] = []
        #: the last known noise level (a resumed fit has no held-out data left to measure it on)
        self.expected = float("nan")
        self.stopped = False
        self.reason = ""

    def state_dict(self) -> dict:
        """What a checkpoint keeps, so that a resumed fit stops where an uninterrupted one would."""
        return {"n": self.n, "window": self.window, "losses": list(self.losses),
                "expected": float(self.expected), "stopped": bool(self.stopped),
                "reason": self.reason}

    @classmethod
    def from_state(cls, state: dict) -> "NoiseResolutionStop":
        """The rule as :meth:`state_dict` left it."""
        stop = cls(int(state["n"]), int(state["window"]))
        stop.losses = [float(x) for x in state.get("losses", [])]
        stop.expected = float(state.get("expected", float("nan")))
        stop.stopped, stop.reason = bool(state.get("stopped", False)), str(state.get("reason", ""))
        return stop

    def gain(self) -> float:
        """The objective's mean decrease per epoch over the last :attr:`window` epochs, in noise
        degrees of freedom (NaN until ``window + 1`` epochs are recorded, or while the noise
        level is unknown)."""
        expected = self.expected
        if len(self.losses) <= self.window or not (math.isfinite(expected) and expected > 0):
            return float("nan")
        drop = (self.losses[-1 - self.window] - self.losses[-1]) / self.window
        return drop / expected * self.n

    def after_epoch(self, loss: float, expected: float) -> str:
        """Record an epoch's objective ``loss``; ``expected`` (NaN: the last one given).
        Returns why the fit stops, or ""."""
        self.losses.append(float(loss))
        if math.isfinite(expected):
            self.expected = float(expected)
        g = self.gain()
        if self.stopped or not g < 1.0:   # NaN (unknown) never stops
            return ""
        self.stopped = True
        self.reason = (f"over the last {self.window} epochs the objective fell by {g:.2g} noise "
                       f"degrees of freedom per epoch (below 1: what is left to fit is noise; "
                       f"{self.n} measurements)")
        return self.reason
