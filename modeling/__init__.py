"""Hugging Face Hub code for the labor-encoders models (copied verbatim into every model repo)."""
