"""Parameter forms generated from the configuration metadata (``iter_fields``).

One foldable section per metadata ``group``; each row is labelled with the field name and unit, its tooltip is
the help text, and every edit is validated as it is typed through the engine's own ``set_value``
(so the GUI and the TOML reader accept exactly the same values). Invalid rows turn red, the page
title gets a warning mark, and :attr:`validityChanged` tells the window why Start is disabled.

While a run is paused only fields marked ``safe_while_paused`` are editable; the window sends
:meth:`pending_changes` to ``run.apply_changes`` on resume.
"""

from __future__ import annotations

import os

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                             QLineEdit, QScrollArea, QToolButton, QVBoxLayout, QWidget)

from slicewise.engine.config_schema import Schema
from slicewise.engine.errors import ConfigError
from slicewise.engine.recon import config as cfgmod

from . import settings

GROUP_TITLES = {"data": "Data and geometry", "model": "Forward model", "init": "Initial guess",
                "refine": "Refinement", "loss": "Loss", "optimizer": "Optimiser",
                "regularization": "Regularisation", "constraints": "Constraints", "run": "Run"}
_UNIT_SUFFIXES = ("_ev", "_m", "_px", "_s", "_deg")
_INVALID = "QLineEdit { background: #ffe0e0; border: 1px solid #c0392b; }"
WARN = "\u26a0 "


def field_label(info: cfgmod.FieldInfo) -> str:
    """``energy_ev`` + unit eV -> "energy [eV]": the unit once, in brackets, not in the name."""
    name = info.path.rsplit(".", 1)[-1]
    for suf in _UNIT_SUFFIXES:
        if info.unit and name.endswith(suf):
            name = name[: -len(suf)]
            break
    name = name.replace("_", " ")
    if not info.unit or info.unit.rstrip("s") in name:  # "epochs", not "epochs [epoch]"
        return name
    return f"{name} [{info.unit}]"


def format_value(v) -> str:
    """Text for a line edit that ``set_value`` reads back to the same value."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(format_value(x) for x in v)
    return str(v)


def _tooltip(info: cfgmod.FieldInfo, run_note: bool = True) -> str:
    lines = [info.help, "", f"key: {info.path}   type: {info.type_name}"]
    if info.unit:
        lines.append(f"unit: {info.unit}")
    if info.range_text():
        lines.append("range: " + info.range_text())
    lines.append(f"default: {format_value(info.default) or 'unset'}")
    if info.optional:
        lines.append("leave empty to leave it unset")
    if run_note:  # only the reconstruction's form is locked during a run
        lines.append("can be changed while a run is paused" if info.safe_while_paused
                     else "fixed during a run")
    return "\n".join(lines)


class _Section(QWidget):
    """A group of fields under a header button that folds it away."""

    def __init__(self, title: str, tooltip: str):
        super().__init__()
        self.title = title
        self.button = QToolButton()
        self.button.setCheckable(True)
        self.button.setChecked(True)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setArrowType(Qt.ArrowType.DownArrow)
        self.button.setAutoRaise(True)
        self.button.setStyleSheet("QToolButton { font-weight: bold; }")
        self.button.setToolTip(tooltip)
        self.button.toggled.connect(self.set_expanded)
        self.body = QWidget()
        self.form = QFormLayout(self.body)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.form.setContentsMargins(8, 0, 2, 6)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.button)
        lay.addWidget(self.body)
        self.set_marked(False)

    def set_expanded(self, on: bool) -> None:
        self.button.blockSignals(True)
        self.button.setChecked(on)
        self.button.blockSignals(False)
        self.button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)

    def set_marked(self, bad: bool) -> None:
        self.button.setText((WARN if bad else "") + self.title)

    def text(self) -> str:
        return self.button.text()


class _Row:
    """One field: its editor widget and how to read/write it as text."""

    def __init__(self, info: cfgmod.FieldInfo, editor: QWidget, line: QLineEdit | None,
                 label: QLabel):
        self.info, self.editor, self.line, self.label = info, editor, line, label


class ParamsPanel(QWidget):
    validityChanged = pyqtSignal(bool, str)   # ok, reason (first problem) when not ok
    configChanged = pyqtSignal()               # any accepted edit

    def __init__(self, config: cfgmod.ReconConfig | None = None, parent: QWidget | None = None,
                 schema: Schema = cfgmod.SCHEMA, titles: dict[str, str] | None = None):
        """A form over any schema-described configuration (``schema``; the reconstruction's by
        default), one section per metadata group titled by ``titles``."""
        super().__init__(parent)
        self._schema = schema
        self._titles = GROUP_TITLES if titles is None else titles
        self._cfg = (config or schema.root()).copy()
        self._baseline = self._cfg.copy()
        self._rows: dict[str, _Row] = {}
        self._errors: dict[str, str] = {}
        self._chosen: set[str] = set()   # fields whose label shows what the last run chose
        self._external: dict[str, str] = {}   # problems found outside the form (missing file)
        self._cross_error: tuple[str, str] | None = None
        self._state = "idle"
        self._sections: dict[str, _Section] = {}

        self.header = QHBoxLayout()
        self.header.setContentsMargins(0, 0, 0, 0)
        # all groups in one scrolling column: everything can be seen, each group can be folded
        content = QWidget()
        self._column = QVBoxLayout(content)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._column.setSpacing(2)
        self._column.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(content)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c0392b;")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(self.header)
        lay.addWidget(self.scroll, 1)
        lay.addWidget(self.message)
        self._build()
        self._revalidate()

    # ---- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        for info in self._schema.fields(self._cfg):
            section = self._sections.get(info.group)
            if section is None:
                owner = getattr(self._cfg, info.path.split(".")[0])
                doc = (type(owner).__doc__ or "") if "." in info.path else ""
                section = _Section(self._titles.get(info.group, info.group),
                                   doc.strip().splitlines()[0] if doc else "")
                self._sections[info.group] = section
                self._column.insertWidget(self._column.count() - 1, section)
            row = self._make_row(info)
            self._rows[info.path] = row
            section.form.addRow(row.label, row.editor)
            self._style_label(row)

    def group_title(self, group: str) -> str:
        """The header text of a group (with a warning mark when a field in it is invalid)."""
        return self._sections[group].text()

    def set_expanded(self, group: str, on: bool) -> None:
        self._sections[group].set_expanded(on)

    def _make_row(self, info: cfgmod.FieldInfo) -> _Row:
        tip = _tooltip(info, self._schema is cfgmod.SCHEMA)
        label = QLabel(field_label(info))
        label.setToolTip(tip)
        line = None
        if info.choices:
            editor = QComboBox()
            editor.addItems([str(c) for c in info.choices])
            editor.setCurrentText(str(info.value))
            editor.currentTextChanged.connect(lambda t, p=info.path: self._edited(p, t))
        elif info.type is bool:
            editor = QCheckBox()
            editor.setChecked(bool(info.value))
            editor.toggled.connect(lambda on, p=info.path: self._edited(p, on))
        else:
            line = QLineEdit(format_value(info.value))
            if info.optional:
                line.setPlaceholderText("unset")
            line.textEdited.connect(lambda t, p=info.path: self._edited(p, t))
            editor = line
            if info.path_kind:
                editor = QWidget()
                h = QHBoxLayout(editor)
                h.setContentsMargins(0, 0, 0, 0)
                h.addWidget(line, 1)
                btn = QToolButton()
                btn.setText("\u2026")
                btn.setToolTip("choose a folder" if info.path_kind == "dir" else "choose a file")
                btn.clicked.connect(lambda _=False, p=info.path: self._browse(p))
                h.addWidget(btn)
        editor.setToolTip(tip)
        if line is not None:
            line.setToolTip(tip)
        return _Row(info, editor, line, label)

    def _browse(self, path: str) -> None:
        row = self._rows[path]
        start = row.line.text() or settings.last_dir()
        if os.path.isfile(start):
            start = os.path.dirname(start)
        if row.info.path_kind == "dir":
            chosen = QFileDialog.getExistingDirectory(self, field_label(row.info), start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, field_label(row.info), start)
        if chosen:
            self.set_value(path, chosen)

    # ---- editing -----------------------------------------------------------------------------
    def _edited(self, path: str, value) -> None:
        try:
            self._schema.set(self._cfg, path, value)
        except ConfigError as exc:
            self._errors[path] = str(exc)
        else:
            self._errors.pop(path, None)
            self.configChanged.emit()
        self._style_label(self._rows[path])
        self._revalidate()

    def set_value(self, path: str, value) -> None:
        """Set a field programmatically (typed value or text) and show it; invalid values are
        marked like a bad edit."""
        row = self._rows[path]
        self._show(row, value)
        self._edited(path, value)

    @staticmethod
    def _show(row: _Row, value) -> None:
        ed = row.editor
        for w in (ed, row.line):
            if w is not None:
                w.blockSignals(True)
        if isinstance(ed, QComboBox):
            ed.setCurrentText(str(value))
        elif isinstance(ed, QCheckBox):
            on = value.strip().lower() in ("true", "yes", "on", "1") if isinstance(value, str) \
                else bool(value)
            ed.setChecked(on)
        else:
            row.line.setText(value if isinstance(value, str) else format_value(value))
        for w in (ed, row.line):
            if w is not None:
                w.blockSignals(False)

    def set_config(self, cfg: cfgmod.ReconConfig) -> None:
        """Show ``cfg`` (a copy is kept); clears all errors."""
        self._cfg = cfg.copy()
        self._baseline = self._cfg.copy()
        self._errors.clear()
        for path in self._chosen:  # another configuration: the last run's choices no longer apply
            row = self._rows[path]
            row.label.setText(field_label(row.info))
            tip = _tooltip(row.info, self._schema is cfgmod.SCHEMA)
            for w in (row.label, row.editor):
                w.setToolTip(tip)
            if row.line is not None:
                row.line.setPlaceholderText("unset")
        self._chosen = set()
        for info in self._schema.fields(self._cfg):
            row = self._rows[info.path]
            self._show(row, info.value)
            self._style_label(row)
        self._revalidate()
        self.configChanged.emit()

    def config(self) -> cfgmod.ReconConfig:
        """A copy of the configuration as shown (the last valid value of each field)."""
        return self._cfg.copy()

    def value(self, path: str):
        return self._schema.get(self._cfg, path)

    def editor(self, path: str) -> QWidget:
        """The input widget of ``path`` (the line edit for text fields)."""
        row = self._rows[path]
        return row.line if row.line is not None else row.editor

    # ---- validity ----------------------------------------------------------------------------
    def errors(self) -> dict[str, str]:
        out = dict(self._errors)
        for k, v in self._external.items():
            out.setdefault(k, v)
        if self._cross_error:
            out.setdefault(*self._cross_error)
        return out

    def is_valid(self) -> bool:
        return not self.errors()

    def first_error(self) -> str:
        errs = self.errors()
        return next(iter(errs.values())) if errs else ""

    def _revalidate(self) -> None:
        self._cross_error = None
        if not self._errors:
            try:
                self._schema.validate(self._cfg)
            except ConfigError as exc:  # a rule between fields: blame the field it names
                msg = str(exc)
                path = msg.split(":", 1)[0].strip()
                self._cross_error = (path if path in self._rows else "", msg)
        bad = set(self.errors())
        for path, row in self._rows.items():
            if row.line is not None:
                row.line.setStyleSheet(_INVALID if path in bad else "")
                row.line.setToolTip((self.errors()[path] + "\n\n" if path in bad else "")
                                    + _tooltip(row.info, self._schema is cfgmod.SCHEMA))
            elif path in bad:
                row.editor.setStyleSheet("background: #ffe0e0;")
            else:
                row.editor.setStyleSheet("")
        for group, section in self._sections.items():
            section.set_marked(any(r.info.group == group for p, r in self._rows.items()
                                   if p in bad))
        reason = self.first_error()
        self.message.setText(reason)
        self.message.setVisible(bool(reason))
        self.validityChanged.emit(not reason, reason)

    def _style_label(self, row: _Row) -> None:
        # bold = differs from the default, so a scientist sees at a glance what was changed
        f = QFont(row.label.font())
        try:
            changed = self._schema.get(self._cfg, row.info.path) != row.info.default
        except ConfigError:
            changed = False
        f.setBold(bool(changed))
        row.label.setFont(f)

    # ---- run states --------------------------------------------------------------------------
    def set_run_state(self, state: str) -> None:
        """``idle`` (all editable), ``running`` (read-only), ``paused`` (only fields that are safe
        while paused)."""
        if state == "paused" and self._state != "paused":
            self._baseline = self._cfg.copy()
        self._state = state
        for row in self._rows.values():
            editable = state == "idle" or (state == "paused" and row.info.safe_while_paused)
            row.editor.setEnabled(editable)
            row.label.setEnabled(editable)

    def set_group_enabled(self, group: str, on: bool) -> None:
        """Grey out a group that does not apply (e.g. the probe when simulating holography)."""
        for row in self._rows.values():
            if row.info.group == group:
                row.editor.setEnabled(on)
                row.label.setEnabled(on)

    def pending_changes(self) -> dict:
        """Safe fields changed since the run was paused: ``{dotted path: value}``."""
        out = {}
        for path, row in self._rows.items():
            if row.info.safe_while_paused and path not in self._errors:
                v = self._schema.get(self._cfg, path)
                if v != self._schema.get(self._baseline, path):
                    out[path] = v
        return out

    def mark_applied(self) -> None:
        self._baseline = self._cfg.copy()

    def set_external_error(self, path: str, message: str | None) -> None:
        """Mark ``path`` invalid for a reason the configuration cannot see (e.g. data.path names
        no file); None clears it."""
        if (self._external.get(path) or None) == (message or None):
            return
        if message:
            self._external[path] = message
        else:
            self._external.pop(path, None)
        self._revalidate()

    def revert_invalid(self) -> None:
        """Fields holding text that was never accepted show their last valid value again (e.g.
        after a run ended with a refused value typed while paused)."""
        for path in list(self._errors):
            self._show(self._rows[path], self._schema.get(self._cfg, path))
            self._errors.pop(path)
            self._style_label(self._rows[path])
        self._revalidate()

    def show_run_choices(self, changes: dict, reasons: dict | None = None) -> None:
        """Show what a run chose for fields left to it (measured learning rates, the optimiser and
        minibatches of ``auto``). An unset field stays unset -- the next run measures again -- and
        shows the value as its placeholder; a choice field names it in its tooltip and label.
        ``reasons``: dotted path -> why the run chose it (one line), shown in the tooltips."""
        reasons = reasons or {}
        for path, value in changes.items():
            row = self._rows.get(path)
            if row is None:
                continue
            self._chosen.add(path)
            text = f"run chose: {format_value(value)}"
            why = f"\nwhy: {reasons[path]}" if reasons.get(path) else ""
            if row.line is not None and self._schema.get(self._cfg, path) is None:
                row.line.setPlaceholderText(text)
            row.editor.setToolTip(f"{text}{why}\n\n{row.info.help}")
            row.label.setText(f"{field_label(row.info)} \u2192 {format_value(value)}")
            row.label.setToolTip(f"{text}{why}")

    def set_file_values(self, ds) -> None:
        """Unset geometry fields show the values read from the data file (as placeholders: the
        field stays unset, so the file keeps deciding)."""
        values = {"data.energy_ev": ds.energy_ev, "data.pixel_size_m": ds.pixel_size_m,
                  "data.slice_thickness_m": ds.slice_thickness_m,
                  "data.distances_m": None if ds.distances_m is None else list(ds.distances_m)}
        for path, v in values.items():
            row = self._rows.get(path)
            if row is not None and row.line is not None:
                row.line.setPlaceholderText(f"from the file: {format_value(v)}" if v is not None
                                            else "unset")
