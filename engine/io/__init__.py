"""Data files: Adorym-style HDF5 input, Slicewise's own HDF5 layout, result files, validation."""
