"""Benchmark runners and evaluate-library metric modules."""
