"""The window's session as a plain model (no Qt): what is open, what is running, what may start.

Like napari's ``components`` (models) versus ``_qt`` (widgets): :class:`Session` holds the
state and the rules; the main window and its widgets observe it (:meth:`observe`) and send it the
user's actions. Tests can drive it without a window.

- the data set shown (its lifetime: a new one closes the old one),
- the configuration file and the rule for what relative paths are relative to,
- the run's state machine: ``idle`` -> ``starting`` -> ``running`` <-> ``paused`` ->
  ``stopping`` -> ``idle`` (``stopping`` is never undone by a late ``running`` from the solver),
- the rules for when a run may start, and why not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from slicewise.engine.io.arrays import resolve_path

RUN_STATES = ("idle", "starting", "running", "paused", "stopping")
_NEXT = {"idle": {"starting"}, "starting": {"running", "paused", "stopping", "idle"},
         "running": {"paused", "stopping", "idle"}, "paused": {"running", "stopping", "idle"},
         "stopping": {"idle"}}


class Session:
    """State of one window: data set, configuration file, result, run state."""

    def __init__(self):
        self.dataset = None                 # engine Dataset shown (a run opens its own)
        self.config_path: str | None = None
        self.result_path: Path | None = None
        self.run_state = "idle"
        self.run_info = None                # RunInfo of the active (or last) run
        self.last_snapshot = None
        self.form_error = ""                # first invalid field of the form, "" when valid
        self.data_path = ""                 # data.path as written in the form
        self._observers: list[Callable[[str], None]] = []

    # ---- observers ---------------------------------------------------------------------------
    def observe(self, fn: Callable[[str], None]) -> None:
        """``fn(what)`` after each change; ``what`` is "dataset", "run_state", "form",
        "config_path" or "result"."""
        self._observers.append(fn)

    def _changed(self, what: str) -> None:
        for fn in list(self._observers):
            fn(what)

    # ---- data and configuration --------------------------------------------------------------
    def set_dataset(self, ds) -> None:
        """Show ``ds``; the data set shown before is closed (its file handle released)."""
        if self.dataset is not None and self.dataset is not ds:
            self.dataset.close()
        self.dataset = ds
        self._changed("dataset")

    def set_form(self, first_error: str, data_path: str) -> None:
        self.form_error, self.data_path = first_error, data_path or ""
        self._changed("form")

    def set_config_path(self, path: str | None) -> None:
        self.config_path = str(Path(path).resolve()) if path else None
        self._changed("config_path")

    def set_result(self, path) -> None:
        self.result_path = Path(path) if path else None
        self._changed("result")

    def base_dir(self) -> str:
        """Relative paths in the configuration are relative to its file, else to the data
        file's folder (when data.path is absolute), else to the current folder."""
        if self.config_path:
            return str(Path(self.config_path).parent)
        dp = Path(self.data_path).expanduser() if self.data_path else None
        if dp is not None and dp.is_absolute():
            return str(dp.parent)
        return str(Path.cwd())

    def resolved_data_path(self) -> Path | None:
        """data.path as an absolute path (see :meth:`base_dir`), None when unset."""
        if not self.data_path:
            return None
        return resolve_path(self.data_path, self.base_dir())

    def data_path_problem(self) -> str:
        """Why data.path cannot be used, "" when it names an existing file (or is unset)."""
        p = self.resolved_data_path()
        if p is None or p.is_file():
            return ""
        if p.is_dir():
            return f"data.path: {p} is a folder; choose the data file (HDF5) in it"
        return f"data.path: no file {p}"

    def output_dir_problem(self, output_dir: str) -> str:
        """Why the output folder cannot be used, "" when it exists and is writable or can be
        created (checked without creating anything)."""
        import os  # noqa: PLC0415

        p = resolve_path(output_dir or ".", self.base_dir())
        if p.exists():
            if not p.is_dir():
                return f"run.output_dir: {p} is a file, not a folder; choose another output folder"
            if not os.access(p, os.W_OK | os.X_OK):
                return f"run.output_dir: no permission to write in {p}; choose another folder"
            return ""
        parent = p.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            return (f"run.output_dir: {p} cannot be created because {parent} is a file; choose "
                    "another output folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            return (f"run.output_dir: {p} cannot be created: no permission to write in "
                    f"{parent}; choose another output folder")
        return ""

    def showing(self, path: Path) -> bool:
        """Whether the data set shown is the file ``path``."""
        src = self.dataset.source_path if self.dataset is not None else None
        return bool(src) and Path(src).resolve() == Path(path).resolve()

    # ---- run state ---------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.run_state != "idle"

    def set_run_state(self, state: str) -> bool:
        """Move to ``state`` if the state machine allows it; returns whether it moved."""
        if state == self.run_state:
            return False
        if state not in _NEXT[self.run_state]:
            return False
        self.run_state = state
        self._changed("run_state")
        return True

    def can_start(self) -> tuple[bool, str]:
        """Whether Start is possible now, and the reason shown when it is not ("" when the only
        reason is that a run is active)."""
        if self.run_state != "idle":
            return False, ""
        if self.form_error:
            return False, "fix the parameters: " + self.form_error
        if not self.data_path:
            return False, "open a data file (File \u203a Open) or set data.path"
        problem = self.data_path_problem()
        if problem:
            return False, problem
        return True, ""

    def title(self) -> str:
        name = Path(self.dataset.source_path).name if self.dataset is not None and \
            self.dataset.source_path else "no data"
        if self.result_path is not None and self.run_state == "idle":
            name += f" \u2013 result {self.result_path.parent.name}/{self.result_path.name}"
        state = "" if self.run_state == "idle" else f" [{self.run_state}]"
        return f"Slicewise \u2013 {name}{state}"

    def close(self) -> None:
        if self.dataset is not None:
            self.dataset.close()
            self.dataset = None
