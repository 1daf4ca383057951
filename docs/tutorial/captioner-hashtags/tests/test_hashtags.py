import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import captioner
from captioner.cli import cli


def test_the_entry_point_registers_hashtags():
    assert "hashtags" in captioner.list_postprocessors()
    plugins = {plugin.name: plugin for plugin in captioner.get_plugins()}
    assert plugins["hashtags"].registered == {"postprocessors": ["hashtags"]}
    assert {"hashtags:1", "hashtags:3", "hashtags:5"} <= set(captioner.list_postprocessor_specs())


def test_hashtags_skip_stop_words_and_repeats():
    hashtags = captioner.create_postprocessor("hashtags:5")
    result = captioner.CaptionResult("x.jpg", [captioner.Candidate("a dog and a dog run on the grass", [], 0, 0, True)])
    assert hashtags.process([result]) == [["#dog", "#run", "#grass"]]


def test_a_bad_option_is_refused():
    with pytest.raises(captioner.PostProcessError, match="positive number of hashtags, got 'lots'"):
        captioner.create_postprocessor("hashtags:lots")


def test_from_the_api_with_the_shipped_model():
    photo = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    result = captioner.Captioner.from_pretrained(device="cpu").caption(photo, postprocess=["hashtags:2"])
    assert 1 <= len(result.extras["hashtags:2"]) <= 2  # kept under the spec asked for
    assert all(tag.lstrip("#") in result.text.split() for tag in result.extras["hashtags:2"])


def test_from_the_cli(tmp_path):
    Image.fromarray(np.full((64, 64, 3), 120, dtype=np.uint8)).save(tmp_path / "grey.jpg")
    output = CliRunner().invoke(cli, ["caption", str(tmp_path / "grey.jpg"), "-p", "hashtags", "--format", "jsonl"])
    assert output.exit_code == 0, output.output
    assert '"hashtags": ["#' in output.stdout


def test_the_fixture_registers_a_plugin_for_one_test(captioner_plugin):
    class Upper(captioner.PostProcessor):
        effect = "rewrite"

        def process(self, results):
            return [result.text.upper() for result in results]

    class Plugin:
        @captioner.hookimpl
        def register_postprocessors(self, register):
            register("upper", Upper)

    captioner_plugin(Plugin(), "upper-plugin")  # unregistered again when the test ends
    result = captioner.CaptionResult("x.jpg", [captioner.Candidate("a dog", ["a", "dog"], 0, 0, True)])
    captioner.PostProcessingChain(["upper", "hashtags"])([result])  # runs without a model
    assert result.text == "A DOG" and result.original_text == "a dog" and result.extras["hashtags"] == ["#dog"]
