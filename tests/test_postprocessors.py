"""The built-in post-processors: VADER sentiment and Apertium translation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner

import captioner
from captioner import Candidate, CaptionResult, PostProcessError, hookimpl
from captioner.cli import cli
from captioner.plugins import plugin_errors
from captioner.postprocessing import PostProcessingChain

# .ci/run installs Apertium and sets this, so a missing translator fails CI instead of skipping.
needs_apertium = pytest.mark.skipif(
    shutil.which("apertium") is None and not os.environ.get("CAPTIONER_REQUIRE_APERTIUM"),
    reason="Apertium is not installed (apt-get install apertium apertium-eng-spa ...)",
)


def result_for(text: str, image: str = "photo.jpg") -> CaptionResult:
    words = text.split()
    return CaptionResult(image=image, candidates=[Candidate(text, words, -1.0, -3.0, True)])


def run(specs: list[str], texts: list[str]) -> list[CaptionResult]:
    results = [result_for(text, f"{i}.jpg") for i, text in enumerate(texts)]
    PostProcessingChain(specs)(results)
    return results


def test_builtins_are_listed_with_effect_and_options():
    infos = {info.name: info for info in captioner.describe_postprocessors()}
    assert infos["sentiment"].effect == "annotate" and infos["sentiment"].plugin == "sentiment"
    assert infos["translate"].effect == "rewrite"
    specs = captioner.list_postprocessor_specs()
    assert {"sentiment", "sentiment-rnn", "translate-rnn:es", "translate-rnn:ca"} <= set(specs)
    assert "translate-rnn" not in specs and "translate" not in specs  # a language is required


def test_specs_offer_the_bare_name_when_the_option_is_optional(captioner_plugin):
    class Count(captioner.PostProcessor):
        def __init__(self, option=None):
            super().__init__()
            self.limit = int(option or 3)

        @classmethod
        def options(cls):
            return ["1", "3"]

        def process(self, results):
            return [len(r.text.split()[: self.limit]) for r in results]

    class Plugin:
        @hookimpl
        def register_postprocessors(self, register):
            register("wordcount", Count)

    captioner_plugin(Plugin(), "wordcount-plugin")
    assert [s for s in captioner.list_postprocessor_specs() if s.startswith("wordcount")] == [
        "wordcount", "wordcount:1", "wordcount:3"]
    (result,) = run(["wordcount"], ["a happy dog runs"])
    assert result.extras["wordcount"] == 3


def test_sentiment_labels_and_scores():
    happy, sad, plain = run(["sentiment"], ["a happy child smiles in the beautiful sunshine",
                                            "a sad man is crying in the rain", "a dog on a road"])
    assert happy.extras["sentiment"]["label"] == "positive" and happy.extras["sentiment"]["compound"] > 0.5
    assert sad.extras["sentiment"]["label"] == "negative" and sad.extras["sentiment"]["compound"] < -0.05
    assert plain.extras["sentiment"] == {"label": "neutral", "compound": 0.0, "positive": 0.0, "neutral": 1.0,
                                         "negative": 0.0}
    scores = happy.extras["sentiment"]
    assert scores["positive"] + scores["neutral"] + scores["negative"] == pytest.approx(1.0, abs=0.01)
    assert happy.text == "a happy child smiles in the beautiful sunshine"  # annotating leaves the caption alone


@needs_apertium
def test_translate_rewrites_and_keeps_the_original():
    dog, man = run(["translate:es"], ["a dog is running through the grass", "a man is riding a bike"])
    assert dog.text == "un perro está corriendo a través de la hierba"
    assert dog.original_text == "a dog is running through the grass" and dog.language == "es"
    assert "hombre" in man.text
    data = dog.to_dict()
    assert data["caption"] == dog.text and data["original_caption"] == dog.original_text and data["language"] == "es"


@needs_apertium
def test_translate_discovers_languages_from_installed_modes():
    assert {"es", "ca", "gl", "eo"} <= set(captioner_plugins_translate().targets_from("en"))
    assert {"translate:es", "translate:ca", "translate:gl", "translate:eo"} <= set(captioner.list_postprocessor_specs())
    (cat,) = run(["translate:spa"], ["a black cat"])  # ISO 639-3 codes work too
    assert cat.language == "es" and "gato" in cat.text
    for code, word in (("ca", "gos"), ("gl", "can"), ("eo", "hundo")):
        assert word in run([f"translate:{code}"], ["a dog"])[0].text.lower()


@needs_apertium
def test_a_batch_goes_through_one_apertium_process(monkeypatch):
    translate = captioner_plugins_translate()
    translate.installed_pairs()  # the cached mode listing is not part of the batch
    calls = []
    real_run = subprocess.run

    def counting_run(args, **kwargs):
        calls.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(translate.subprocess, "run", counting_run)
    results = run(["translate:es"], [f"a dog number {i}\nwith a newline" for i in range(20)])
    assert len(calls) == 1 and calls[0][-1] == "eng-spa"
    assert all("perro" in r.text and "\n" not in r.text for r in results)


@needs_apertium
def test_chain_order_matters_and_language_is_checked():
    (before,) = run(["sentiment", "translate:es"], ["a happy dog"])
    assert before.extras["sentiment"]["label"] == "positive" and before.language == "es"
    (after,) = run(["translate:es", "sentiment"], ["a happy dog"])
    assert "sentiment" not in after.extras
    assert after.postprocess_errors == {"sentiment": "reads captions in en, this one is in es (run it before the translation)"}
    (twice,) = run(["translate:es", "translate:ca"], ["a dog"])  # es -> ca is not installed
    assert twice.text.startswith("un perro") and "translate:ca" in twice.postprocess_errors
    assert "no Apertium pair from es to ca" in twice.postprocess_errors["translate:ca"]


@needs_apertium
def test_missing_pair_names_the_package_and_lists_languages():
    with pytest.raises(PostProcessError, match=r"no Apertium pair from en to fr is installed; .*available from en: .*es"):
        captioner.create_postprocessor("translate:fr")
    with pytest.raises(PostProcessError, match=r"needs a target language, e.g. translate:es \(available: .*es"):
        captioner.create_postprocessor("translate")


def test_missing_apertium_says_what_to_install(monkeypatch):
    translate = captioner_plugins_translate()
    monkeypatch.setattr(translate.shutil, "which", lambda name: None)
    translate.installed_pairs.cache_clear()
    try:
        with pytest.raises(PostProcessError, match="Apertium is not installed; install the Debian packages apertium"):
            captioner.create_postprocessor("translate:es")
        info = {i.name: i for i in captioner.describe_postprocessors()}["translate"]
        assert "Apertium is not installed" in info.error and info.specs == []
    finally:
        monkeypatch.undo()
        translate.installed_pairs.cache_clear()


def test_a_broken_postprocessor_names_itself_and_keeps_the_caption(captioner_plugin):
    class Miscount(captioner.PostProcessor):
        def process(self, results):
            return []

    class Miscounting:
        @hookimpl
        def register_postprocessors(self, register):
            register("miscount", Miscount)

    class NotAClass:
        @hookimpl
        def register_postprocessors(self, register):
            register("plain_function", lambda option=None: None)

    captioner_plugin(Miscounting(), "odd-plugin")
    captioner_plugin(NotAClass(), "function-plugin")
    (result,) = run(["miscount", "sentiment"], ["a happy dog"])
    assert result.postprocess_errors == {"miscount": "returned 0 outputs for 1 captions (plugin 'odd-plugin')"}
    assert result.text == "a happy dog" and result.extras["sentiment"]["label"] == "positive"
    assert "plain_function" not in captioner.list_postprocessors()  # refused when registered
    assert plugin_errors["function-plugin"].startswith("register_postprocessors: PluginError: post-processor "
                                                       "'plain_function': <function ")
    assert plugin_errors["function-plugin"].endswith("is not a captioner.PostProcessor subclass")


def test_output_that_is_not_json_ready_is_that_postprocessors_error(captioner_plugin):
    class Tags(captioner.PostProcessor):
        def process(self, results):
            return [{"tags": {"dog", "happy"}} for _ in results]  # a set: json.dumps would fail later

    class Plugin:
        @hookimpl
        def register_postprocessors(self, register):
            register("tags", Tags)

    captioner_plugin(Plugin(), "tags-plugin")
    (result,) = run(["tags", "sentiment"], ["a happy dog"])
    assert "tags" not in result.extras and result.extras["sentiment"]["label"] == "positive"
    assert result.postprocess_errors["tags"].startswith("returned output that is not JSON-ready (Object of type set")
    assert result.postprocess_errors["tags"].endswith("(plugin 'tags-plugin')")
    json.dumps(result.to_dict())  # every front end can write it


@needs_apertium
def test_cli_chains_postprocessors_into_jsonl(image_folder):
    output = CliRunner().invoke(cli, ["caption", str(image_folder), "--model", "flickr8k-lite0-attention",
                                      "--postprocess", "sentiment", "--postprocess", "translate:es",
                                      "--format", "jsonl"])
    lines = [json.loads(line) for line in output.stdout.splitlines()]
    assert lines and all(line["language"] == "es" and "sentiment" in line for line in lines if "error" not in line)
    assert any(line["caption"] != line["original_caption"] for line in lines if "error" not in line)


def captioner_plugins_translate():
    import captioner_plugins.translate as translate  # the test may know the built-in plugin; the core may not

    return translate


def test_cli_lists_postprocessors():
    output = CliRunner().invoke(cli, ["postprocessors", "--json"])
    infos = {info["name"]: info for info in json.loads(output.stdout)}
    assert infos["sentiment"]["effect"] == "annotate" and infos["sentiment"]["specs"] == ["sentiment"]
    assert infos["translate"]["effect"] == "rewrite" and infos["translate"]["description"].startswith("The caption")
