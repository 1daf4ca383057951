"""Shared by the commands: the one-line error, and the options several commands take."""

from __future__ import annotations

import sys
import traceback

import click

from ..errors import debugging


def error_line(message: str) -> None:
    click.echo(f"captioner: error: {message}", err=True)


class CommandError(click.ClickException):
    """A failure the user can act on: ``captioner: error: MESSAGE`` on stderr and exit code 1
    (click's usage errors keep exit code 2). Raised while handling the exception behind it,
    whose traceback ``--debug`` prints first."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        handled = sys.exc_info()[1]
        self.traceback = "".join(traceback.format_exception(handled)) if handled and debugging() else ""

    def show(self, file=None) -> None:
        if self.traceback:
            click.echo(self.traceback.rstrip(), err=True)
        error_line(self.format_message())


model_option = click.option("--model", "-m", default=None,
                            help="Model folder or shipped model name (default: the shipped default).")


device_option = click.option("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best available).")


GUIDANCE_FIELDS = ("guide", "object_threshold", "new_word_threshold", "max_objects", "absent_threshold", "object_margin",
                   "open_vocabulary", "people_threshold", "colour_threshold", "language_weight",
                   "consensus_neighbours")


def guidance_options(command):
    """The open-world guidance and consensus reranking flags (``DecodingOptions`` fields; unset ones keep the
    model's)."""
    flags = [
        click.option("--guide/--no-guide", default=None,
                     help="Name what the encoder's classifier recognises (default: on, for encoders with one; "
                          "beam and greedy only)."),
        click.option("--object-threshold", type=click.FloatRange(0, 1), default=None,
                     help="Require an object's word when its classes have this much probability (default 0.3)."),
        click.option("--new-word-threshold", type=click.FloatRange(0, 1), default=None,
                     help="The same for words added to the caption vocabulary (default 0.5)."),
        click.option("--max-objects", type=click.IntRange(0, 3), default=None, help="Most words to require (default 1)."),
        click.option("--absent-threshold", type=click.FloatRange(0, 1), default=None,
                     help="Do not say words for things with less probability than this (default 0.05)."),
        click.option("--object-margin", type=click.FloatRange(min=0), default=None,
                     help="Leave a required word out when it costs more than this per word, at full confidence "
                          "(default 0.4)."),
        click.option("--open-vocabulary/--closed-vocabulary", default=None,
                     help="Let guidance name classes outside the caption vocabulary (default: open)."),
        click.option("--people-threshold", type=click.FloatRange(0, 1), default=None,
                     help="Do not say words for people (or said only with people) where the model's people "
                          "detector gives them less probability than this (0 turns it off; default: the model's)."),
        click.option("--colour-threshold", type=click.FloatRange(0, 1), default=None,
                     help="Do not say a colour word where fewer than this share of the photo's pixels have that "
                          "colour (0 turns it off; default: the model's)."),
        click.option("--language-weight", type=click.FloatRange(min=0), default=None,
                     help="Weight of the model's caption language model, given the photo's evidence, beside the "
                          "decoder on photos unlike the training photos (0 turns it off; default: the model's)."),
        click.option("--consensus-neighbours", type=click.IntRange(min=0), default=None,
                     help="Rerank the beam by agreement with the captions of this many similar training photos "
                          "(models with a caption memory; 0 turns it off; default: the model's)."),
    ]
    for flag in reversed(flags):
        command = flag(command)
    return command


def guidance_settings(flags: dict) -> dict:
    """Pop the guidance flags out of a command's keyword arguments."""
    return {name: flags.pop(name) for name in GUIDANCE_FIELDS}
