"""Plugin discovery, allow/block lists, broken plugins and name clashes."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import captioner
from captioner import PluginError, hookimpl, hookspecs, list_decoders, list_encoders
from captioner.plugins import plugin_errors, plugin_warnings
from captioner.registry import get_plugins
from captioner.registry import postprocessors

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = {
    "attention": {"decoders": ["attention_lstm"]},
    "efficientnet": {"encoders": ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]},
    "rnn": {"decoders": ["gru", "lstm"]},
    "sentiment": {"postprocessors": ["sentiment"]},
    "sentiment-rnn": {"postprocessors": ["sentiment-rnn"]},
    "torchvision": {"encoders": ["mobilenet_v3_large", "resnet50"]},
    "translate": {"postprocessors": ["translate"]},
    "translate-rnn": {"postprocessors": ["translate-rnn"]},
}


def run_cli(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONER_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "captioner", *args], capture_output=True, text=True, env=full_env,
                          timeout=120)


def plugins_json(env=None):
    done = run_cli("plugins", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return {p["name"]: p for p in json.loads(done.stdout)}


def test_builtins_are_entry_point_plugins():
    plugins = plugins_json()
    assert {name: plugins[name]["registered"] for name in BUILTINS} == BUILTINS
    assert all(plugins[name]["error"] is None and plugins[name]["version"] for name in BUILTINS)
    assert plugins["rnn"]["hooks"] == ["register_decoders"]


def test_allow_list_and_block_list():
    assert set(plugins_json({"CAPTIONER_PLUGINS": "rnn,efficientnet"})) == {"rnn", "efficientnet"}
    blocked = set(plugins_json({"CAPTIONER_BLOCK_PLUGINS": "torchvision"}))
    assert "torchvision" not in blocked and set(BUILTINS) - {"torchvision"} <= blocked  # outside plugins may add more
    assert plugins_json({"CAPTIONER_PLUGINS": ""}) == {}


def test_plugin_that_fails_to_import_is_reported_and_skipped(tmp_path):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[captioner]\nbroken = broken_plugin\n")
    (tmp_path / "broken_plugin.py").write_text("import not_a_real_module_xyz\n")
    env = {"PYTHONPATH": str(tmp_path)}
    plugins = plugins_json(env)
    assert plugins["broken"]["error"] == "ModuleNotFoundError: No module named 'not_a_real_module_xyz'"
    assert plugins["broken"]["version"] == "1.0"
    assert plugins["rnn"]["error"] is None
    text = run_cli("plugins", env=env).stdout
    assert "broken 1.0\n  error: ModuleNotFoundError" in text


class RaisingPlugin:
    @hookimpl
    def register_encoders(self, register):
        raise RuntimeError("cannot find my weights")

    @hookimpl
    def register_decoders(self, register):
        register("raisers_decoder", object)


class ClashingPlugin:
    @hookimpl
    def register_decoders(self, register):
        register("my_decoder", object)
        register("lstm", object)


def test_hook_that_raises_drops_that_hook_only_and_says_so(captioner_plugin, caplog):
    captioner_plugin(RaisingPlugin(), "raiser")
    encoders, decoders = list_encoders(), list_decoders()
    assert ("captioner: warning: plugin 'raiser': its register_encoders hook failed, so none of its encoders are "
            "registered (its other hooks still are): RuntimeError: cannot find my weights") in caplog.text
    assert "efficientnet_lite0" in encoders and "raisers_decoder" in decoders  # the plugin's other hook still counts
    assert plugin_errors["raiser"] == "register_encoders: RuntimeError: cannot find my weights"
    info = {p.name: p for p in get_plugins()}["raiser"]
    assert info.error == plugin_errors["raiser"] and info.hooks == ["register_decoders", "register_encoders"]
    assert info.registered == {"decoders": ["raisers_decoder"]}


def test_a_clash_drops_only_the_clashing_name_and_built_ins_keep_theirs(captioner_plugin, caplog):
    captioner_plugin(ClashingPlugin(), "aardvark")  # sorts before "rnn", but "rnn" is a built-in
    decoders = list_decoders()
    assert "my_decoder" in decoders  # the rest of the plugin stays
    assert captioner.create_decoder("lstm", vocab_size=8, feature_dim=4).__class__.__name__ == "ShowAndTellDecoder"
    message = ("its decoder 'lstm' is not used: plugin 'rnn' registers the same name and keeps it "
               "(built-in plugins keep their names; between others, the plugin whose name sorts first)")
    assert plugin_warnings["aardvark"] == [message] and "aardvark" not in plugin_errors
    assert f"captioner: warning: plugin 'aardvark': {message}" in caplog.text
    assert {p.name: p for p in get_plugins()}["aardvark"].warnings == [message]


@pytest.mark.parametrize("order", [("zebra", "yak"), ("yak", "zebra")])
def test_between_third_party_plugins_the_first_by_name_keeps_a_name(captioner_plugin, order):
    def plugin_making(label):
        class Plugin:
            @hookimpl
            def register_postprocessors(self, register):
                register("shout", type(f"Shout{label}", (captioner.PostProcessor,), {}))
                register(f"only-{label}", type(f"Only{label}", (captioner.PostProcessor,), {}))
        return Plugin()

    for name in order:  # install order does not matter
        captioner_plugin(plugin_making(name), name)
    assert postprocessors.get("shout").plugin == "yak"
    assert {"only-yak", "only-zebra"} <= set(captioner.list_postprocessors())
    assert "'shout' is not used: plugin 'yak'" in plugin_warnings["zebra"][0] and "yak" not in plugin_warnings


def test_errors_from_factories_name_the_plugin(captioner_plugin):
    class Fragile(captioner.PostProcessor):
        def __init__(self, option=None):
            1 / 0

    class Failing:
        @hookimpl
        def register_postprocessors(self, register):
            register("fragile", Fragile)

    captioner_plugin(Failing(), "fragile-plugin")
    with pytest.raises(PluginError, match="post-processor 'fragile' from plugin 'fragile-plugin' failed: ZeroDivisionError"):
        captioner.create_postprocessor("fragile")


def test_unknown_names_list_what_is_installed():
    with pytest.raises(KeyError, match=r"unknown encoder 'nope'; installed encoders: efficientnet_lite0, "):
        captioner.create_encoder("nope")


def test_core_never_imports_a_builtin_plugin():
    for path in (ROOT / "captioner").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "captioner_plugins" for n in names), f"{path} imports a plugin"


def test_every_hook_is_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("register_")]
    assert hooks == ["register_decoders", "register_encoders", "register_postprocessors"]
    for name in hooks:
        assert f"### {name}(register)" in docs, f"{name} is not documented in docs/plugins.md"


def test_an_encoder_that_breaks_its_declared_feature_dim_is_blamed(captioner_plugin, vocab):
    from dataclasses import replace

    from conftest import TINY_CONFIG, make_tiny_encoder, random_photo

    liar_config = replace(TINY_CONFIG, feature_dim=4)

    def make_liar(pretrained=True, weights=None):
        encoder = make_tiny_encoder()
        encoder.config = liar_config  # declares 4-d features, yields 8-d ones
        return encoder

    class Liar:
        @hookimpl
        def register_encoders(self, register):
            register("liar_cnn", make_liar, config=liar_config)

    captioner_plugin(Liar(), "liar-plugin")
    model = captioner.Captioner("liar_cnn", "gru", vocab, device="cpu", decoder_hparams={"embed_dim": 8, "hidden_dim": 8})
    with pytest.raises(PluginError, match=r"encoder 'liar_cnn' from plugin 'liar-plugin' failed: ValueError: pooled "
                                          r"features have shape \(1, 8\), but its config declares \(1, feature_dim=4\)"):
        model.caption(random_photo(1))


SHOUTY = (  # a one-off plugin module for a plugins dir: a post-processor that shouts the caption
    "import captioner\n\n"
    "class Shout(captioner.PostProcessor):\n"
    "    '''The caption in capitals.'''\n"
    "    effect = 'rewrite'\n\n"
    "    def process(self, results):\n"
    "        return [r.text.upper() for r in results]\n\n"
    "@captioner.hookimpl\n"
    "def register_postprocessors(register):\n"
    "    register('shout', Shout)\n"
)


def test_a_plugins_dir_loads_one_off_modules_and_reports_clashes_cleanly(tmp_path):
    (tmp_path / "shouty.py").write_text(
        SHOUTY + "    register('sentiment', Shout)  # a built-in's name: dropped, 'shout' stays\n")
    (tmp_path / "broken.py").write_text("import not_a_module_xyz\n")
    plugins = plugins_json({"CAPTIONER_PLUGINS_DIR": str(tmp_path)})
    assert plugins["shouty"]["registered"] == {"postprocessors": ["shout"]}
    assert plugins["shouty"]["warnings"] == [
        "its post-processor 'sentiment' is not used: plugin 'sentiment' registers the same name and keeps it "
        "(built-in plugins keep their names; between others, the plugin whose name sorts first)"]
    assert plugins["broken"]["error"].endswith("broken.py: ModuleNotFoundError: No module named 'not_a_module_xyz'")
    piped = subprocess.run([sys.executable, "-m", "captioner", "--plugins-dir", str(tmp_path), "postprocess",
                            "-p", "shout", "-p", "sentiment"], input="a happy dog\n", capture_output=True, text=True,
                           timeout=120, env={k: v for k, v in os.environ.items() if not k.startswith("CAPTIONER_")})
    assert piped.returncode == 0, piped.stderr
    row = json.loads(piped.stdout)
    assert row["caption"] == "A HAPPY DOG" and row["sentiment"]["label"] == "positive"  # VADER's, the built-in
    warnings = [line for line in piped.stderr.splitlines() if line.strip()]
    assert warnings == [  # one clean line each: no Python source line, no traceback
        "captioner: warning: plugin 'broken' is not loaded: " + plugins["broken"]["error"],
        "captioner: warning: plugin 'shouty': " + plugins["shouty"]["warnings"][0],
    ]


class Misbehaving(captioner.Decoder):
    """A decoder that keeps the step contract on a one-row probe and breaks it as ``mistake`` says."""

    def __init__(self, vocab_size, feature_dim, mistake="none"):
        super().__init__(vocab_size, feature_dim)
        self.mistake = mistake
        self.output = torch.nn.Linear(feature_dim, vocab_size + 5 if mistake == "vocabulary" else vocab_size)

    def init_state(self, features):
        return {"h": features.pooled, "t": torch.zeros(features.pooled.size(0), 1)}

    def step(self, tokens, state):
        logits, rows = self.output(state["h"]), tokens.size(0)
        if rows > 1 and self.mistake == "one row":
            logits = logits[:1]  # would broadcast over every row
        elif rows > 1 and self.mistake == "one word short":
            logits = logits[:, :-1]
        elif rows > 1 and self.mistake == "twice the words":
            logits = torch.cat([logits, logits], dim=1)
        elif self.mistake == "nan later" and bool(state["t"][0] >= 2):
            logits = torch.full_like(logits, float("nan"))
        return captioner.DecoderStep(logits, {"h": state["h"], "t": state["t"] + 1})


@pytest.mark.parametrize("mistake, message", [
    ("vocabulary", r"step returned logits of shape \(1, 19\), not \(rows, vocab_size\) = \(1, 14\)"),
    ("one row", r"step returned logits of shape \(1, 14\), not \(rows, vocab_size\) = \(6, 14\)"),
    ("one word short", r"step returned logits of shape \(6, 13\), not \(rows, vocab_size\) = \(6, 14\)"),
    ("twice the words", r"step returned logits of shape \(6, 28\), not \(rows, vocab_size\) = \(6, 14\)"),
    ("nan later", r"step returned NaN or \+inf logits"),
])
def test_a_decoder_that_breaks_the_step_contract_is_blamed_on_any_step(captioner_plugin, vocab, mistake, message):
    from conftest import random_photo

    class Plugin:
        @hookimpl
        def register_decoders(self, register):
            register("misbehaving", Misbehaving)

    captioner_plugin(Plugin(), "wrong-plugin")
    model = captioner.Captioner("tiny_cnn", "misbehaving", vocab, device="cpu", decoder_hparams={"mistake": mistake})
    with pytest.raises(PluginError, match="decoder 'misbehaving' from plugin 'wrong-plugin' failed: ValueError: " + message):
        model.caption([random_photo(2), random_photo(3)], beam_size=3, guide=False)


def test_a_misspelt_hook_is_a_warning_naming_the_real_one(captioner_plugin, caplog):
    class Misspelt:
        @hookimpl
        def register_postprocesors(self, register):
            register("never", captioner.PostProcessor)

    captioner_plugin(Misspelt(), "typo")
    message = ("implements 'register_postprocesors', which is not a captioner hook (did you mean "
               "'register_postprocessors'?), so it is never called")
    assert f"captioner: warning: plugin 'typo': {message}" in caplog.text
    assert "never" not in captioner.list_postprocessors()
    info = {p.name: p for p in get_plugins()}["typo"]
    assert info.warnings == [message] and info.hooks == [] and info.error is None


def test_a_misspelt_effect_is_refused_when_registered(captioner_plugin, caplog):
    class Annotator(captioner.PostProcessor):
        effect = "anotate"

    class Plugin:
        @hookimpl
        def register_postprocessors(self, register):
            register("misspelt", Annotator)

    captioner_plugin(Plugin(), "effects")
    assert "misspelt" not in captioner.list_postprocessors()
    assert plugin_errors["effects"] == ("register_postprocessors: PluginError: post-processor 'misspelt': effect must "
                                        "be 'annotate' or 'rewrite', not 'anotate' (did you mean 'annotate'?)")
    assert "its register_postprocessors hook failed, so none of its post-processors are registered" in caplog.text


def test_each_spec_keeps_its_own_output(captioner_plugin):
    class WordStats(captioner.PostProcessor):
        def __init__(self, option=None):
            super().__init__()
            self.unit = option or "words"

        def process(self, results):
            return [len(r.text.split()) if self.unit == "words" else len(r.text) for r in results]

    class Plugin:
        @hookimpl
        def register_postprocessors(self, register):
            register("wordstats", WordStats)

    captioner_plugin(Plugin(), "wordstats-plugin")
    result = captioner.CaptionResult("x.jpg", [captioner.Candidate("a red dog", ["a", "red", "dog"], 0, 0, True)])
    captioner.PostProcessingChain(["wordstats", " wordstats : chars "])([result])
    assert result.extras == {"wordstats": 3, "wordstats:chars": 9}  # keyed by the spec, spaces trimmed


def test_plugins_dirs_several_a_shadowed_file_and_debug_tracebacks(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    (first / "shouty.py").write_text(SHOUTY)
    (second / "sentiment.py").write_text("raise RuntimeError('never imported')\n")
    (second / "broken.py").write_text("def helper():\n    raise RuntimeError('my bug')\n\nhelper()\n")
    plugins = plugins_json({"CAPTIONER_PLUGINS_DIR": os.pathsep.join([str(first), str(second)])})
    assert plugins["shouty"]["registered"] == {"postprocessors": ["shout"]}
    assert plugins["shouty"]["source"] == str(first / "shouty.py") and plugins["shouty"]["version"] is None
    assert plugins["broken"]["source"] == str(second / "broken.py")
    assert plugins["sentiment"]["warnings"] == [
        f"{second / 'sentiment.py'} is not loaded: an installed plugin already has the name 'sentiment' (rename the file)"]
    assert plugins["sentiment"]["registered"] == {"postprocessors": ["sentiment"]}  # the built-in, untouched

    options = ["--plugins-dir", str(first), "--plugins-dir", str(second)]
    quiet = run_cli(*options, "plugins")
    assert f"shouty\n  file: {first / 'shouty.py'}\n" in quiet.stdout
    assert "Traceback" not in quiet.stderr and "broken.py: RuntimeError: my bug" in quiet.stderr
    loud = run_cli("--debug", *options, "plugins")
    assert "Traceback (most recent call last)" in loud.stderr and 'in helper\n    raise RuntimeError' in loud.stderr


def test_write_tiny_flickr_takes_a_str(tmp_path):
    from captioner.testing import write_tiny_flickr

    root = write_tiny_flickr(str(tmp_path / "flickr"))
    assert root == tmp_path / "flickr" and len(list((root / "images").glob("*.jpg"))) == 8


def test_a_decoder_without_config_captions_but_saving_names_what_is_missing(captioner_plugin, vocab, tmp_path):
    from conftest import random_photo

    class Plugin:
        @hookimpl
        def register_decoders(self, register):
            register("configless", Misbehaving)

    captioner_plugin(Plugin(), "configless-plugin")
    model = captioner.Captioner("tiny_cnn", "configless", vocab, device="cpu")
    assert model.caption(random_photo(1), guide=False).ok
    with pytest.raises(PluginError, match=r"decoder 'configless' from plugin 'configless-plugin' failed: ValueError: "
                                          r"Misbehaving has no config, so it cannot be saved: set self.config to a "
                                          r"dataclass"):
        model.save(tmp_path / "model")
