"""Widgets that show engine products: slices, losses, probe, positions, frames."""

from .common import configure_pyqtgraph

configure_pyqtgraph()
