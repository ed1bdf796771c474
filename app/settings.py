"""Persistent GUI settings (QSettings, organisation "Slicewise"): recent files, last folder, layout.

One INI file per user, so a scientist can inspect or delete it; tests point QSettings at a
temporary folder with ``QSettings.setPath`` before creating a window.
"""

from __future__ import annotations

import os

from PyQt6.QtCore import QSettings

ORGANISATION = "Slicewise"
APPLICATION = "Slicewise"
MAX_RECENT = 10


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION,
                     APPLICATION)


def _str_list(value) -> list[str]:
    # QSettings returns a str (one entry), a list, or None depending on how many entries exist
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def recent_files() -> list[str]:
    """Recently opened files that still exist, most recent first."""
    return [p for p in _str_list(settings().value("recent_files")) if os.path.exists(p)]


def add_recent_file(path: str) -> list[str]:
    path = os.path.abspath(path)
    files = [path] + [p for p in recent_files() if os.path.abspath(p) != path]
    files = files[:MAX_RECENT]
    s = settings()
    s.setValue("recent_files", files)
    set_last_dir(os.path.dirname(path))
    return files


def clear_recent_files() -> None:
    settings().remove("recent_files")


def last_dir() -> str:
    d = settings().value("last_dir", "")
    return d if d and os.path.isdir(d) else os.getcwd()


def set_last_dir(directory: str) -> None:
    settings().setValue("last_dir", os.path.abspath(directory))
