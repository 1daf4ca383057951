"""Errors as the people using the page see them: one line, no server paths, no operator's hints."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from ..errors import CaptionerError, describe_exception
from ..images import PIXEL_LIMIT_HINT

log = logging.getLogger(__name__)


def public_message(message: str) -> str:
    """``message`` on one line, without hints meant for whoever runs the server."""
    return " ".join(message.replace(PIXEL_LIMIT_HINT, "").split())


def user_error(message: str) -> gr.Error:
    """A one-line error for the page (Gradio renders it as HTML, so it is escaped)."""
    return gr.Error(html.escape(public_message(message), quote=False), print_exception=False)


def user_errors(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Show every failure as a one-line ``gr.Error``; log unexpected ones with their traceback."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except (CaptionerError, ValueError) as error:
            raise user_error(str(error)) from None
        except Exception as error:
            log.exception("request failed")
            raise user_error(f"internal error: {describe_exception(error)}") from None

    return wrapper
