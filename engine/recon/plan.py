"""The run's automatic choices in one place: :class:`Choice` and :class:`RunPlan`.

Every automatic decision of a run (which model, which loss, the optimiser and its minibatches,
the starting guess, measured learning rates, rate cuts after a divergence, ...) is made by a
function that takes what it needs and returns a :class:`Choice`: the configuration path it
settles, the value, and the reason in words. The :class:`RunPlan` gathers them; the run is built
from :attr:`RunPlan.config`, the user's configuration with every choice filled in. The user's own
configuration object (:attr:`RunPlan.requested`) is never modified.

The plan is logged (one line per choice), written into the run's ``config.toml`` (the values as
fields, so rerunning the file repeats the run; the reasons as a comment block) and into
``result.h5`` (``/extra/plan``), and shown in the GUI ("run chose: ...").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from . import config as cfgmod

log = logging.getLogger(__name__)

__all__ = ["Choice", "RunPlan"]


@dataclass(frozen=True)
class Choice:
    """One automatic decision: ``path`` (dotted configuration path) takes ``value`` because
    ``reason`` (one line, no trailing full stop). ``when``: "setup" or "epoch N" for choices made
    during the run (a rate measured when a refinement starts, a cut after a divergence)."""

    path: str
    value: object
    reason: str
    when: str = "setup"

    def line(self) -> str:
        """``path = value (reason)``, for the log and the GUI."""
        return f"{self.path} = {_text(self.value)} ({self.reason})"


def _text(value) -> str:
    if isinstance(value, bool):   # as TOML writes it
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


class RunPlan:
    """The user's configuration plus the run's choices (see the module docstring).

    ``requested``: a private copy of the configuration as the user wrote it (validated).
    ``config``: what the run uses; changed only through :meth:`adopt` (and
    :meth:`apply_user_changes` for edits made while a run is paused).
    ``choices``: the latest choice per path, in the order first made.
    """

    def __init__(self, requested: cfgmod.ReconConfig, *, log_choices: bool = True):
        self.requested = cfgmod.validate(requested.copy())
        self.config = self.requested.copy()
        self.choices: dict[str, Choice] = {}
        self.log_choices = log_choices   # False for trial fits inside a decision (probe search)

    def adopt(self, choice: Choice | None, *, quiet: bool = False):
        """Apply ``choice`` to :attr:`config`, record and log it; returns its value (None: no
        choice, nothing changes). A path the user set explicitly is still changed when a
        decision overrides it (e.g. a rate cut after a divergence); the reason says so."""
        if choice is None:
            return None
        cfgmod.set_value(self.config, choice.path, choice.value)
        # set_value coerces (e.g. a tuple to a list): keep the stored value
        choice = Choice(choice.path, cfgmod.get_value(self.config, choice.path), choice.reason,
                        choice.when)
        self.choices.pop(choice.path, None)   # re-inserted last: the newest decision
        self.choices[choice.path] = choice
        if self.log_choices and not quiet:
            log.info("%s", choice.line())
        return choice.value

    def apply_user_changes(self, changes: dict) -> None:
        """Edits the user makes during a run: they win over earlier choices for those paths."""
        for path, value in changes.items():
            cfgmod.set_value(self.config, path, value)
            cfgmod.set_value(self.requested, path, value)
            self.choices.pop(path, None)

    def value(self, path: str):
        return cfgmod.get_value(self.config, path)

    def chosen(self) -> dict:
        """Dotted path -> value of every choice (what the GUI shows as "run chose")."""
        return {c.path: c.value for c in self.choices.values()}

    def reasons(self) -> dict:
        """Dotted path -> reason of every choice."""
        return {c.path: c.reason for c in self.choices.values()}

    def lines(self) -> list[str]:
        """One line per choice, in the order made."""
        return [(f"[{c.when}] " if c.when != "setup" else "") + c.line()
                for c in self.choices.values()]

    def toml_header(self) -> str:
        """The comment block of ``config.toml``: what the run chose and why."""
        if not self.choices:
            return "No automatic choices: every value below was set in the configuration."
        return "\n".join(["Chosen by the run (the values are set below; rerunning this file "
                          "repeats them):"] + [f"  {line}" for line in self.lines()])

    def to_dict(self) -> dict:
        """For ``result.h5``'s ``/extra/plan``: path -> {"value": text, "reason", "when"}."""
        return {c.path: {"value": _text(c.value), "reason": c.reason, "when": c.when}
                for c in self.choices.values()}

    # checkpoints keep the plan so that a resumed run still says why its values are what they are
    def state_dict(self) -> dict:
        return {c.path: {"reason": c.reason, "when": c.when,
                         **({"value": c.value} if isinstance(c.value, (bool, int, float, str))
                            else {})}
                for c in self.choices.values()}

    def load_state_dict(self, state: dict) -> None:
        """Restore choices recorded by an earlier run for paths this run did not decide again
        (their values come from the checkpoint's configuration, already in :attr:`config`)."""
        for path, info in (state or {}).items():
            if path not in self.choices:
                self.choices[path] = Choice(path, cfgmod.get_value(self.config, path),
                                            str(info.get("reason", "")), str(info.get("when", "setup")))
