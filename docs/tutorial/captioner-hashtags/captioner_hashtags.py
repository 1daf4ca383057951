"""``hashtags[:N]``: up to N hashtags (default 3) made from the words of a caption."""

from __future__ import annotations

from captioner import PostProcessError, PostProcessor, hookimpl

STOP_WORDS = frozenset(
    "a an the and or of in on at to with into onto over under near by for from its his her their "
    "is are was were be being while through his some two three four other another".split()
)


class Hashtags(PostProcessor):
    """Hashtags from the caption's words: hashtags:5 gives up to five."""

    effect = "annotate"  # adds result.extras[SPEC] ("hashtags:5"); "rewrite" would replace the caption
    languages = ("en",)  # the stop words are English

    def __init__(self, option: str | None = None) -> None:
        super().__init__()  # no option for the base class: we parse our own
        if option is not None and not (option.isdigit() and int(option) > 0):
            raise PostProcessError(f"the option is a positive number of hashtags, got {option!r}")
        self.limit = int(option) if option else 3

    @classmethod
    def options(cls) -> list[str]:
        return ["1", "3", "5"]  # what menus offer; any positive number works

    def process(self, results):
        tags = []
        for result in results:
            words = [w for w in result.text.lower().split() if w.isalpha() and w not in STOP_WORDS]
            unique = list(dict.fromkeys(words))
            tags.append(["#" + word for word in unique[: self.limit]])
        return tags


@hookimpl
def register_postprocessors(register):
    register("hashtags", Hashtags)
