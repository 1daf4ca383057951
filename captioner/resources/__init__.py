"""Data files shipped with captioner (label sets)."""
