"""The web interface (``captioner ui``): a Gradio page, Gradio's API and a plain HTTP API at ``/v1``."""

from .app import build_app, launch
from .service import CaptionService, UIConfig

__all__ = ["CaptionService", "UIConfig", "build_app", "launch"]
