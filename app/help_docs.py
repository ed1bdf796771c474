"""The project's walkthroughs (``docs/*.md``) shown in the window, as formatted text.

In a source checkout or an editable install they are read from ``docs/`` beside the package; an
installation that ships them puts them in :mod:`slicewise.resources`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget


def find_doc(name: str) -> Path | None:
    """The file ``docs/NAME`` of this installation, or None."""
    here = Path(__file__).resolve().parent.parent / "docs" / name
    if here.is_file():
        return here
    try:
        shipped = resources.files("slicewise.resources") / name
        if shipped.is_file():
            return Path(str(shipped))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    return None


class MarkdownDialog(QDialog):
    """A document shown as formatted text; links to web pages open in the browser."""

    def __init__(self, parent: QWidget | None, title: str, path: Path):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(900, 760)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setSearchPaths([str(path.parent)])
        self.text.setMarkdown(path.read_text(encoding="utf-8"))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text, 1)
        lay.addWidget(buttons)
