"""Stop signals before a run is under way: Ctrl-C, SIGTERM and SIGHUP end the command quietly.

A command ended by a stop signal exits with ``128 + the signal's number`` (Ctrl-C 130, SIGTERM
143, SIGHUP 129), during a run too (after its checkpoint), so that batch scripts can tell.

:func:`install` makes each raise :class:`Interrupted` (a ``KeyboardInterrupt``) and also records
it: an exception raised while Python runs a finaliser is swallowed ("Exception ignored in ..."),
and the record lets the command notice the signal anyway before it starts computing
(:func:`received`). Runs replace these handlers with ones that stop after the current minibatch.
"""

from __future__ import annotations

import signal
import sys

NAMES = ("SIGINT", "SIGTERM", "SIGHUP")
_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived before the run began."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    def describe(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


class RunInterrupted(Interrupted):
    """A stop signal ended a run before it could stop cleanly (a second Ctrl-C within an update,
    or during the final writes): ``checkpoint`` is the run's checkpoint file, which may exist."""

    def __init__(self, signum: int, checkpoint):
        super().__init__(signum)
        self.checkpoint = checkpoint

    def message(self, epoch: int | None) -> str:
        """One line for the user; ``epoch``: the checkpoint's epoch, None when there is none."""
        head = f"interrupted ({self.describe()}) during the run"
        if epoch is None:
            return f"{head}, before its first checkpoint; nothing was written"
        return (f"{head}; its last checkpoint, after epoch {epoch}, is {self.checkpoint}: continue "
                f"with --resume {self.checkpoint}")


def _handler(signum, frame):
    _received.append(signum)
    raise Interrupted(signum)


def _quiet_unraisable(unraisable) -> None:
    """``sys.unraisablehook`` while the start-up handlers are in place: a stop signal that lands
    inside a finaliser or an import-lock callback is recorded (see :func:`_handler`), so Python's
    "Exception ignored ... Traceback" print would only add noise to the one-line exit."""
    if isinstance(unraisable.exc_value, Interrupted):
        return
    sys.__unraisablehook__(unraisable)


def install() -> dict:
    """Install the start-up handlers; returns the previous ones for :func:`restore`."""
    _received.clear()
    old = {"unraisablehook": sys.unraisablehook}
    sys.unraisablehook = _quiet_unraisable
    for name in NAMES:
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            old[sig] = signal.signal(sig, _handler)
        except ValueError:  # not the main thread: leave signals alone
            break
    return old


def restore(old: dict) -> None:
    for sig, handler in old.items():
        if sig == "unraisablehook":
            sys.unraisablehook = handler
        else:
            signal.signal(sig, handler)


def raise_if_received() -> None:
    """Raise :class:`Interrupted` for a stop signal whose exception was swallowed."""
    if _received:
        raise Interrupted(_received[0])
