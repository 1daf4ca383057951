"""Exceptions raised by captioner, each with a one-line, actionable message, and the
``CAPTIONER_DEBUG=1`` switch (``captioner --debug``) that adds the traceback behind one."""

import difflib
import logging
import os
import traceback
from collections.abc import Sequence

DEBUG_VARIABLE = "CAPTIONER_DEBUG"


class CaptionerError(Exception):
    """Base class of every error captioner raises on purpose."""


class PluginError(CaptionerError):
    """A plugin failed to load, registered a clashing name, or raised inside a hook."""


class UnknownNameError(CaptionerError, KeyError):
    """A registry was asked for a name nobody registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ModelLoadError(CaptionerError):
    """A model folder is missing, malformed or does not match its config."""


class WeightsUnavailableError(CaptionerError):
    """Pretrained encoder weights could not be found or downloaded."""


class ImageError(CaptionerError):
    """An input image could not be read; the message names the image and the reason."""


class ImageTooLargeError(ImageError):
    """An image has more pixels than this process accepts (``CAPTIONER_MAX_PIXELS``)."""


class PostProcessError(CaptionerError):
    """A post-processor was asked for with a bad option, or what it needs is missing."""


def one_line(error: BaseException) -> str:
    """An exception's message on one line (whitespace runs, newlines included, become one space)."""
    return " ".join(str(error).split())


def describe_exception(error: BaseException) -> str:
    """``Type: message`` on one line (just ``Type`` for an exception without a message)."""
    message = one_line(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def nearest(word: object, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelt ``word``, or ``""``."""
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def debugging() -> bool:
    """Whether ``CAPTIONER_DEBUG`` asks for tracebacks (any value but empty or ``0``)."""
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def log_traceback(error: BaseException) -> None:
    """Under ``CAPTIONER_DEBUG=1``, the traceback of ``error`` (and what caused it) on stderr, through
    :mod:`logging`; otherwise nothing, as the one-line message says enough."""
    if debugging():
        logging.getLogger("captioner").warning("%s", "".join(traceback.format_exception(error)).rstrip())
