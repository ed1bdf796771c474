"""Measures of a result's quality: Fourier ring/shell correlation of independent halves."""
