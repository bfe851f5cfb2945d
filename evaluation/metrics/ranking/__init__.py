"""The ``ranking`` metric (``evaluate.load("evaluation/metrics/ranking")``)."""
