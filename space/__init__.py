"""The Gradio Space."""
