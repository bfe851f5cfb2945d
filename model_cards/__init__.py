"""Model cards rendered from a model folder's own metadata and the results JSON the evaluation runners write."""

from __future__ import annotations

from .folder import ModelFolder, read_model_folder
from .render import render_model_card, render_space_card
from .results import CardError, Evaluation, Metric, load_results

__all__ = [
    "CardError",
    "Evaluation",
    "Metric",
    "ModelFolder",
    "load_results",
    "read_model_folder",
    "render_model_card",
    "render_space_card",
]
