"""Metric modules in the ``evaluate`` layout: one folder per metric, loadable with ``evaluate.load(folder)``."""
