"""``translate:LANG``: the caption in another language, through Apertium (Debian packages, offline).

Languages come from the installed Apertium modes (``eng-spa``, ``en-gl``, ...),
named by ISO 639-1 codes (``translate:es``). A batch goes through one Apertium
process, one caption per line.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from typing import cast

from captioner import CaptionResult, PostProcessError, PostProcessor, hookimpl

# ISO 639-3 (what most Apertium modes use) -> ISO 639-1 (what users type).
ISO_639_1 = {
    "eng": "en", "spa": "es", "cat": "ca", "glg": "gl", "epo": "eo", "fra": "fr", "por": "pt", "ita": "it",
    "deu": "de", "nld": "nl", "oci": "oc", "eus": "eu", "arg": "an", "ron": "ro", "swe": "sv", "dan": "da",
    "nob": "nb", "nno": "nn", "isl": "is", "afr": "af", "bel": "be", "rus": "ru", "ukr": "uk", "pol": "pl",
    "ces": "cs", "slk": "sk", "slv": "sl", "hbs": "sh", "mkd": "mk", "bul": "bg", "cym": "cy", "gle": "ga",
    "bre": "br", "kaz": "kk", "tat": "tt", "tur": "tr", "mlt": "mt", "hin": "hi", "urd": "ur", "ind": "id",
    "msa": "ms", "ara": "ar", "heb": "he",
}
# Debian packages of the English pairs (their names do not follow one pattern).
DEBIAN_PACKAGES = {
    ("en", "es"): "apertium-eng-spa",
    ("en", "ca"): "apertium-eng-cat",
    ("en", "gl"): "apertium-en-gl",
    ("en", "eo"): "apertium-eo-en",
}
TIMEOUT_S = 120


def iso_code(code: str) -> str:
    code = code.strip().lower()
    return ISO_639_1.get(code, code)


def apertium_binary() -> str:
    binary = shutil.which("apertium")
    if binary is None:
        raise PostProcessError(
            "Apertium is not installed; install the Debian packages apertium and a language pair, "
            "e.g. `apt-get install apertium apertium-eng-spa`"
        )
    return binary


@lru_cache(maxsize=1)
def installed_pairs() -> dict[tuple[str, str], str]:
    """``(source, target)`` ISO 639-1 codes -> Apertium mode, from ``apertium -l``."""
    listing = subprocess.run([apertium_binary(), "-l"], capture_output=True, text=True, timeout=TIMEOUT_S).stdout
    pairs: dict[tuple[str, str], str] = {}
    for mode in listing.split():
        parts = mode.split("-")
        if len(parts) != 2 or "_" in mode:  # skip variants such as eng-cat_valencia or en-eo-bytecode
            continue
        pairs.setdefault((iso_code(parts[0]), iso_code(parts[1])), mode)
    return pairs


def targets_from(source: str) -> list[str]:
    return sorted(target for (src, target) in installed_pairs() if src == source)


def missing_pair_message(source: str, target: str) -> str:
    known = DEBIAN_PACKAGES.get((source, target))
    install = f"the Debian package {known}" if known else "its Debian package (`apt-cache search apertium`)"
    available = ", ".join(targets_from(source)) or "none"
    return f"no Apertium pair from {source} to {target} is installed; install {install}; available from {source}: {available}"


def run_apertium(mode: str, texts: list[str], timeout_s: float = TIMEOUT_S) -> list[str]:
    """Translate ``texts`` with one Apertium process; one caption per line in and out."""
    lines = [" ".join(text.split()) for text in texts]  # a caption must stay on one line
    completed = subprocess.run(
        [apertium_binary(), "-u", mode],  # -u: no '*' marks on unknown words
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=timeout_s,
    )
    if completed.returncode != 0:
        detail = completed.stderr.strip().splitlines()
        raise PostProcessError(f"apertium {mode} failed: {detail[-1] if detail else f'exit code {completed.returncode}'}")
    translated = completed.stdout.rstrip("\n").split("\n")
    if len(translated) != len(lines):
        raise PostProcessError(f"apertium {mode} returned {len(translated)} lines for {len(lines)} captions")
    return [match_first_letter_case(source, line.strip()) for source, line in zip(lines, translated)]


def match_first_letter_case(source: str, translated: str) -> str:
    """Apertium capitalises the first line of its input; keep the caption's own case."""
    if source[:1].islower() and translated[:1].isupper():
        return translated[0].lower() + translated[1:]
    return translated


class Translate(PostProcessor):
    """The caption translated by Apertium (rewrites the caption; the original is kept)."""

    effect = "rewrite"
    option_required = True

    def __init__(self, option: str | None = None) -> None:
        super().__init__()
        if not option:
            available = ", ".join(targets_from("en")) or "none installed"
            raise PostProcessError(f"needs a target language, e.g. translate:es (available: {available})")
        self.option = option
        self.target = iso_code(option)
        if ("en", self.target) not in installed_pairs():
            raise PostProcessError(missing_pair_message("en", self.target))
        self.output_language = self.target

    @classmethod
    def options(cls) -> list[str]:
        return targets_from("en")

    def process(self, results: Sequence[CaptionResult]) -> list[str]:
        outputs: list[str | None] = [None] * len(results)
        by_source: dict[str, list[int]] = {}
        for index, result in enumerate(results):
            by_source.setdefault(result.language, []).append(index)
        for source, indices in by_source.items():
            if source == self.target:
                texts = [cast(str, results[i].text) for i in indices]  # post-processors see captioned results only
            else:
                mode = installed_pairs().get((source, self.target))
                if mode is None:
                    raise PostProcessError(missing_pair_message(source, self.target))
                texts = run_apertium(mode, [cast(str, results[i].text) for i in indices])
            for i, text in zip(indices, texts):
                outputs[i] = text
        return cast(list[str], outputs)  # every index belongs to one source language


@hookimpl
def register_postprocessors(register) -> None:
    register("translate", Translate)
