"""The README as a new user reads it: its Python blocks run as pasted, and its first command installs
only what captioning needs."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SKIP_MARK = "<!-- not run by tests/test_readme.py"
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?P<language>\w*)\n(?P<code>.*?)\n```", re.S)


def blocks(language: str) -> list[tuple[str, str]]:
    """(the line before, the code) of every fenced block in ``language``, in order."""
    return [(m["before"], m["code"]) for m in BLOCK.finditer(README) if m["language"] == language]


PYTHON_BLOCKS = [code for before, code in blocks("python") if not before.startswith(SKIP_MARK)]


def test_every_python_block_is_run_or_marked():
    assert len(PYTHON_BLOCKS) >= 4 and len(blocks("python")) - len(PYTHON_BLOCKS) == 1  # the Gradio client needs a server


@pytest.mark.parametrize("code", PYTHON_BLOCKS, ids=[code.splitlines()[0][:40] for code in PYTHON_BLOCKS])
def test_python_block_runs_as_pasted(code, tmp_path):
    if "import ray" in code and importlib.util.find_spec("ray") is None:
        pytest.skip('needs pip install "captioner[ray]"')
    (tmp_path / "assets").symlink_to(ROOT / "assets")  # the repository root, without writing into it
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_quick_start_installs_what_captioning_needs_and_the_tests_what_they_need():
    caption_command, test_command = (code for _, code in blocks("bash")[:2])
    assert 'pip install -e . ' in caption_command and "[" not in caption_command
    assert caption_command.endswith("captioner caption assets/examples")
    assert 'pip install -e ".[test]"' in test_command and test_command.endswith("python -m pytest -q")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {re.split(r"[<>=\[ ]", spec)[0].lower() for spec in project["dependencies"]}
    test_and_bench = {re.split(r"[<>=\[ ]", spec)[0].lower() for extra in ("test", "bench")
                      for spec in project["optional-dependencies"][extra]} - {"captioner"}
    assert not required & test_and_bench, required & test_and_bench
