"""Shipped resources: demo configurations and icons (read with importlib.resources)."""
