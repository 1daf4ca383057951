"""The command line, in-process through click's runner and once as a real subprocess."""

import json
import os
import re
import subprocess
import sys

import torch
from click.testing import CliRunner

from captioner import Captioner
from captioner.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_caption_folder_as_jsonl(tiny_captioner, image_folder, tmp_path):
    model = tiny_captioner.save(tmp_path / "model")
    result = run("caption", "--model", str(model), "--format", "jsonl", "--beam-size", "2", "--max-length", "5",
                 str(image_folder))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [
        str(image_folder / "nested" / "three.jpeg"), str(image_folder / "one.jpg"), str(image_folder / "two.png")
    ]
    assert all(line["caption"] and isinstance(line["score"], float) and len(line["nbest"]) == 2 for line in lines)


def test_bad_file_is_reported_and_the_rest_captioned(tiny_captioner, image_folder, tmp_path):
    model = tiny_captioner.save(tmp_path / "model")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    result = run("caption", "--model", str(model), str(tmp_path / "broken.jpg"), str(image_folder / "one.jpg"))
    assert result.exit_code == 1
    assert result.stdout.startswith(str(image_folder / "one.jpg") + "\t")
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"captioner: error: {tmp_path / 'broken.jpg'}: ")


def test_usage_errors_exit_2():
    assert run("caption").exit_code == 2
    assert run("caption", "--beam-size", "0", "x.jpg").exit_code == 2
    assert run("frobnicate").exit_code == 2


def test_missing_model_is_one_clear_line(image_folder, tmp_path):
    result = run("caption", "--model", str(tmp_path / "none"), str(image_folder))
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "no such folder" in result.stderr


def test_models_lists_given_folders(tiny_captioner, tmp_path):
    model = tiny_captioner.save(tmp_path / "model")
    result = run("models", "--json", str(model))
    assert result.exit_code == 0
    described = json.loads(result.stdout)[-1]
    assert described["encoder"] == "tiny_cnn" and described["vocab_size"] == 14 and described["error"] is None
    broken = run("models", str(tmp_path))
    assert broken.exit_code == 1 and "not a model folder" in broken.stdout


def test_real_encoder_model_saved_loaded_and_used_from_shell_and_api(vocab, image_folder, tmp_path):
    torch.manual_seed(0)
    built = Captioner("efficientnet_lite0", "attention_lstm", vocab, device="cpu",
                      decoder_hparams={"hidden_dim": 32, "embed_dim": 16, "attention_dim": 16})
    model = built.save(tmp_path / "lite0-attention", dtype=torch.float16)
    api = Captioner.from_pretrained(model).caption([str(p) for p in sorted(image_folder.rglob("*.jp*g"))], beam_size=3)
    # The same float32 encoder as in this process (conftest), whatever the CPU.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONER_") or k == "CAPTIONER_BFLOAT16"}
    done = subprocess.run(
        [sys.executable, "-m", "captioner", "caption", "--model", str(model), "--format", "jsonl", "--beam-size", "3",
         *(r.image for r in api)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    shell = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["caption"] for line in shell] == [r.text for r in api]


def test_postprocessor_failures_show_on_stderr_and_bad_specs_are_usage_errors(captioner_plugin, image_folder):
    import captioner
    from captioner import hookimpl

    class Explode(captioner.PostProcessor):
        def process(self, results):
            raise RuntimeError("kaboom")

    class Plugin:
        @hookimpl
        def register_postprocessors(self, register):
            register("explode", Explode)

    captioner_plugin(Plugin(), "explode-plugin")
    runner = CliRunner()
    result = runner.invoke(cli, ["caption", str(image_folder), "-p", "explode"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if "post-processor explode" in line]
    assert lines and lines[0].startswith("captioner: error: ") and "RuntimeError: kaboom (plugin 'explode-plugin')" in lines[0]
    assert len([line for line in result.stdout.splitlines() if "\t" in line]) == len(lines)  # captions kept
    bad = runner.invoke(cli, ["caption", str(image_folder), "-p", "translate-rnn:xx"])
    assert bad.exit_code == 2 and "neither a shipped translate-rnn model" in bad.stderr


def test_failures_print_one_error_line_and_exit_1(tmp_path):
    from click.testing import CliRunner

    from captioner.cli import cli

    result = CliRunner().invoke(cli, ["train", "--data", str(tmp_path / "missing"), "-o", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output.strip() == f"captioner: error: {tmp_path / 'missing'}: no such file or folder"
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output  # a usage error, named by click


def test_text_output_shows_postprocessor_outputs_in_short(tiny_captioner, image_folder, tmp_path):
    model = tiny_captioner.save(tmp_path / "model")
    result = run("caption", "--model", str(model), "--max-length", "4", str(image_folder / "one.jpg"),
                 "-p", "sentiment", "-p", "sentiment-rnn")
    assert result.exit_code == 0, result.output
    image, caption, extras = result.stdout.rstrip("\n").split("\t")
    assert image == str(image_folder / "one.jpg") and caption
    assert re.fullmatch(r"sentiment: (positive|neutral|negative); sentiment-rnn: (positive|neutral|negative)", extras)


def test_help_says_what_output_and_method_do():
    help_text = " ".join(run("caption", "--help").output.split())
    assert "an existing file is refused unless --resume is given" in help_text
    assert "sample (unguided: --guide with it is refused)" in help_text
