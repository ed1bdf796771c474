"""Slicewise desktop application (PyQt6 + pyqtgraph, napari for 3D)."""
