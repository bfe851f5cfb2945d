"""The ``skill_extraction`` metric (``evaluate.load("evaluation/metrics/skill_extraction")``)."""
