"""`captioner new-plugin`: the package it writes installs, registers and passes its own tests."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from captioner.cli import cli


def test_a_new_plugin_starts_green(tmp_path):
    made = CliRunner().invoke(cli, ["new-plugin", "word-count", "-d", str(tmp_path)])
    assert made.exit_code == 0, made.output
    folder = tmp_path / "captioner-word-count"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        ".github/workflows/test.yml", "README.md", "captioner_word_count.py", "pyproject.toml",
        "tests/conftest.py", "tests/test_word_count.py"]
    site = tmp_path / "site"  # installed beside, not into, this environment
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(folder)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONER_")}
    env["PYTHONPATH"] = str(site)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "tests")],
                           cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-2000:]
    assert "2 passed" in tests.stdout
    listed = subprocess.run([sys.executable, "-m", "captioner", "plugins"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert "word-count 0.1.0\n  hooks: register_postprocessors\n  postprocessors: word-count" in listed.stdout


def test_new_plugin_refuses_bad_names_and_existing_folders(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["new-plugin", "Word Count", "-d", str(tmp_path)]).exit_code == 2
    assert runner.invoke(cli, ["new-plugin", "tags", "-d", str(tmp_path)]).exit_code == 0
    again = runner.invoke(cli, ["new-plugin", "tags", "-d", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output
