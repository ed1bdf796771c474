"""What runs every step: the solver and its optimisers, losses, regularisers, constraints and
projections, the divergence guard, checkpoints and output folders, and MPI."""
