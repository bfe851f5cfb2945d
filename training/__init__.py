"""Training scripts and losses (Accelerate)."""
