"""What a run decides before its loop: which model fits the data and how it starts (model set-ups,
cone beam, loss), the initial object and probe (guesses, probe search), the optimiser and its
minibatches, learning rates, and whether it fits in memory. Each decision returns its choice with
a reason; :mod:`..plan` gathers them."""
