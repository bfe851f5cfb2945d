"""Model-card templates and rendering."""
