"""Training one run (needs the `train` extra: torch)."""
