"""The Gradio web interface (``captioner ui``)."""

from .app import CaptionService, UIConfig, build_app

__all__ = ["CaptionService", "UIConfig", "build_app"]
