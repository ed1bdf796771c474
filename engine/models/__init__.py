"""Forward models composed from the physics operators: parameters -> predicted intensities."""
