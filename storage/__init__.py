"""Storage: typed models, migrations, the engine set-up and the statements a turn runs.

Nothing in this package commits on its own: the caller owns the transaction (one per turn).
"""
