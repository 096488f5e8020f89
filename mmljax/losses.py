"""mmljax.losses (filled in by its issue)."""
