"""The post-processor interface plugins implement, and the check each class gets when registered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from .errors import PostProcessError, nearest

if TYPE_CHECKING:
    from .results import CaptionResult

Effect = Literal["annotate", "rewrite"]
EFFECTS: tuple[str, ...] = get_args(Effect)


class PostProcessor:
    """Base class of post-processors: one output per caption result of a batch.

    Subclasses set ``effect`` and implement :meth:`process`:

    - ``"annotate"``: each output (JSON-ready) is stored in ``result.extras[spec]``,
      under the spec it was asked for (``"sentiment"``, ``"hashtags:5"``);
    - ``"rewrite"``: each output is the new caption text (a ``str``), or a
      :class:`Rewrite` that also carries JSON-ready details (a translation's
      attention), stored in ``result.extras[spec]``; the model's caption is kept as
      ``result.original_text``, and ``output_language`` (if set) becomes the
      result's language.

    ``languages`` lists the caption languages it can read (``None``: any); results
    in another language get an error instead of a wrong answer. ``option_required``
    says the bare name is not a spec (menus then offer only ``name:option``).
    """

    effect: ClassVar[Effect] = "annotate"
    languages: ClassVar[tuple[str, ...] | None] = None
    option_required: ClassVar[bool] = False  # True: the bare name is not a valid spec (translate needs a language)

    registered_name: str = ""  # set by create_postprocessor()

    def __init__(self, option: str | None = None) -> None:
        if option is not None:
            raise PostProcessError(f"takes no option, got {option!r}")
        self.option: str | None = option
        self.output_language: str | None = None

    @classmethod
    def options(cls) -> list[str]:
        """Valid options (``translate:es`` has option ``es``), for menus; empty if it takes none."""
        return []

    def process(self, results: Sequence[CaptionResult]) -> list[Any]:
        """One output per result, in order (``result.text`` is the current caption)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Rewrite:
    """A rewriting post-processor's output: the new text and, optionally, JSON-ready details."""

    text: str
    details: Any = None


def check_postprocessor_class(factory: Any) -> None:
    """Raise ``ValueError`` unless ``factory`` is a :class:`PostProcessor` subclass whose class
    attributes say something the chain understands (checked when a plugin registers it)."""
    if not (isinstance(factory, type) and issubclass(factory, PostProcessor)):
        raise ValueError(f"{factory!r} is not a captioner.PostProcessor subclass")
    if factory.effect not in EFFECTS:
        choices = " or ".join(repr(effect) for effect in EFFECTS)
        raise ValueError(f"effect must be {choices}, not {factory.effect!r}{nearest(factory.effect, EFFECTS)}")
    languages = factory.languages
    if languages is not None and not (isinstance(languages, tuple) and all(isinstance(x, str) for x in languages)):
        raise ValueError(f"languages must be None or a tuple of language codes such as ('en',), not {languages!r}")
    if not isinstance(factory.option_required, bool):
        raise ValueError(f"option_required must be True or False, not {factory.option_required!r}")
