"""mmljax.solvers (filled in by its issue)."""
