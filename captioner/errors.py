"""Exceptions raised by captioner, each with a one-line, actionable message."""


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
