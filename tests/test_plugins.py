"""Plugin discovery, allow/block lists, broken plugins and name clashes."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import captioner
from captioner import PluginError, hookimpl, hookspecs, list_decoders, list_encoders
from captioner.plugins import get_plugins, plugin_errors

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = {
    "attention": {"decoders": ["attention_lstm"]},
    "efficientnet": {"encoders": ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]},
    "rnn": {"decoders": ["gru", "lstm"]},
    "sentiment": {"postprocessors": ["sentiment"]},
    "torchvision": {"encoders": ["mobilenet_v3_large", "resnet50"]},
    "translate": {"postprocessors": ["translate"]},
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


class ClashingPlugin:
    @hookimpl
    def register_decoders(self, register):
        register("my_decoder", object)
        register("lstm", object)


def test_hook_that_raises_is_reported_and_others_keep_working(captioner_plugin):
    with pytest.warns(RuntimeWarning, match="raiser"):
        captioner_plugin(RaisingPlugin(), "raiser")
        encoders = list_encoders()
    assert "efficientnet_lite0" in encoders
    assert plugin_errors["raiser"] == "register_encoders: RuntimeError: cannot find my weights"
    info = {p.name: p for p in get_plugins()}["raiser"]
    assert info.error == plugin_errors["raiser"] and info.hooks == ["register_encoders"]


def test_duplicate_name_is_an_error_naming_both_plugins(captioner_plugin):
    with pytest.warns(RuntimeWarning):
        captioner_plugin(ClashingPlugin(), "clasher")
        decoders = list_decoders()
    assert "decoder 'lstm' is registered by both plugin 'rnn' and plugin 'clasher'" in plugin_errors["clasher"]
    assert "my_decoder" not in decoders  # the clashing plugin is skipped whole
    assert captioner.create_decoder("lstm", vocab_size=8, feature_dim=4).__class__.__name__ == "ShowAndTellDecoder"


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
