"""Widgets that show engine products: slices, losses, probe, positions, frames."""
