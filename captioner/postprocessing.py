"""Post-processors by spec: building them, describing them for menus, and the chain that runs them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from .errors import PostProcessError, describe_exception, log_traceback
from .postprocessor import Effect, PostProcessor, Rewrite
from .registry import postprocessors
from .results import CaptionResult


@dataclass(frozen=True)
class PostProcessorInfo:
    """What ``captioner postprocessors`` and the UI menus show about one post-processor."""

    name: str
    plugin: str
    effect: Effect
    description: str
    options: list[str]
    error: str | None = None
    option_required: bool = False

    @property
    def specs(self) -> list[str]:
        """The specs a user can ask for: ``name`` (unless an option is required) and ``name:option`` for
        each option; none if the post-processor is broken."""
        if self.error is not None:
            return []
        bare = [] if self.option_required else [self.name]
        return bare + [f"{self.name}:{option}" for option in self.options]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"translate:es"`` -> ``("translate", "es")``; ``"sentiment"`` -> ``("sentiment", None)``."""
    name, _, option = spec.partition(":")
    return name.strip(), (option.strip() or None)


def canonical_spec(spec: str) -> str:
    """``" translate : es"`` -> ``"translate:es"``: the key a post-processor's output and errors are stored under."""
    name, option = parse_spec(spec)
    return f"{name}:{option}" if option is not None else name


def create_postprocessor(spec: str) -> PostProcessor:
    """Build the post-processor for ``spec`` (``"sentiment"``, ``"translate:es"``).

    A bad option or a missing dependency raises :class:`PostProcessError` here,
    before any image is captioned.
    """
    name, option = parse_spec(spec)
    postprocessors.get(name)  # an unknown name lists what is installed
    try:
        return postprocessors.create(name, option=option)  # other failures name the plugin there
    except PostProcessError as error:
        raise PostProcessError(f"post-processor {spec!r}: {error}") from None


def describe_postprocessors() -> list[PostProcessorInfo]:
    """Every registered post-processor with its effect and options (sorted by name)."""
    infos = []
    for name in postprocessors.list():
        entry = postprocessors.get(name)
        factory = entry.factory
        doc = (getattr(factory, "__doc__", None) or "").strip().splitlines()
        try:
            options, error = list(cast(type[PostProcessor], factory).options()), None
        except Exception as exc:  # options() may probe for tools that are missing
            options, error = [], describe_exception(exc)
        infos.append(PostProcessorInfo(
            name, entry.plugin, getattr(factory, "effect", "annotate"), doc[0] if doc else "", options, error,
            bool(getattr(factory, "option_required", False)),
        ))
    return infos


def list_postprocessor_specs() -> list[str]:
    """Every spec that can be asked for, e.g. ``["sentiment", "translate:ca", "translate:es"]``."""
    return [spec for info in describe_postprocessors() for spec in info.specs]


class PostProcessingChain:
    """Post-processors built once from specs and run in order on batches of results."""

    def __init__(self, specs: Sequence[str]) -> None:
        self.steps = [(canonical_spec(spec), create_postprocessor(spec)) for spec in specs]

    def __call__(self, results: Sequence[CaptionResult]) -> None:
        """Run every step on the results that have a caption, in place (returns nothing)."""
        for spec, processor in self.steps:
            run_step(spec, processor, [r for r in results if r.ok])


def check_json_ready(outputs: list[Any]) -> None:
    """Raise :class:`PostProcessError` unless every output survives ``json.dumps`` as it is.

    Checked where outputs enter a result, so no front end (``--format jsonl``, the web
    page, ``to_dict()``) can fail later on a ``set`` or a tensor.
    """
    try:
        json.dumps(outputs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise PostProcessError(f"returned output that is not JSON-ready ({error})") from None


def plugin_of(processor: PostProcessor) -> str:
    """The plugin that registered ``processor`` (for error messages)."""
    try:
        return postprocessors.get(processor.registered_name).plugin
    except KeyError:
        return "unknown"


def run_step(spec: str, processor: PostProcessor, results: list[CaptionResult]) -> None:
    """Run one post-processor; its failure is recorded on each result under ``spec``."""
    readable = []
    for result in results:
        if processor.languages is not None and result.language not in processor.languages:
            wanted = ", ".join(processor.languages)
            result.postprocess_errors[spec] = (
                f"reads captions in {wanted}, this one is in {result.language} (run it before the translation)"
            )
        else:
            readable.append(result)
    if not readable:
        return
    try:
        outputs = list(processor.process(readable))
        if len(outputs) != len(readable):
            raise PostProcessError(f"returned {len(outputs)} outputs for {len(readable)} captions")
        if processor.effect == "rewrite":
            outputs = [output if isinstance(output, Rewrite) else Rewrite(output) for output in outputs]
            if not all(isinstance(output.text, str) and output.text.strip() for output in outputs):
                raise PostProcessError("a rewrite must return a non-empty string per caption")
        check_json_ready([output.details if isinstance(output, Rewrite) else output for output in outputs])
    except Exception as error:
        log_traceback(error)
        message = str(error) if isinstance(error, PostProcessError) else describe_exception(error)
        for result in readable:
            result.postprocess_errors[spec] = f"{message} (plugin {plugin_of(processor)!r})"
        return
    for result, output in zip(readable, outputs):
        if processor.effect == "rewrite":
            result.rewrite(output.text, processor.output_language)
            if output.details is not None:
                result.extras[spec] = output.details
        else:
            result.extras[spec] = output
