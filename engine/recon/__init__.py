"""Reconstruction: configuration, losses, optimisers, regularisers, constraints, the run object."""
