"""``captioner new-plugin NAME``: a plugin package that installs, registers and passes its tests as made.

The package holds one working post-processor (it counts the caption's words) to
rename and change, an entry point, a pytest set-up with captioner's fixtures and a
GitHub Actions workflow. Encoders and decoders go in the same module (see the
plugin guide's second tutorial).
"""

from __future__ import annotations

import re
from pathlib import Path

from .atomic import atomic_write_text
from .errors import CaptionerError

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = '''[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "captioner-{name}"
version = "0.1.0"
description = "A captioner plugin: {name}."
requires-python = ">=3.11"
dependencies = ["captioner"]

[project.optional-dependencies]
test = ["pytest>=8"]

# The plugin's registration: captioner finds the module through this entry point.
[project.entry-points.captioner]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
'''

MODULE = '''"""captioner-{name}: a captioner plugin."""

from __future__ import annotations

from typing import Sequence

from captioner import CaptionResult, PostProcessor, hookimpl


class {cls}(PostProcessor):
    """How many words the caption has (replace with what your plugin does)."""

    effect = "annotate"  # the output goes to result.extras["{name}"]; "rewrite" replaces the caption

    def process(self, results: Sequence[CaptionResult]) -> list[int]:
        return [len((result.text or "").split()) for result in results]


@hookimpl
def register_postprocessors(register) -> None:
    register("{name}", {cls})
'''

CONFTEST = '''pytest_plugins = ["captioner.testing"]  # fixtures: captioner_plugin, tiny_flickr
'''

TEST = '''import captioner
from captioner import Candidate, CaptionResult, PostProcessingChain


def test_it_is_registered_through_its_entry_point():
    assert "{name}" in captioner.list_postprocessors()
    assert {{info.name: info.plugin for info in captioner.describe_postprocessors()}}["{name}"] == "{name}"


def test_it_annotates_captions():
    result = CaptionResult("photo.jpg", [Candidate("a dog runs on the grass", [], None, None, True)])
    PostProcessingChain(["{name}"])([result])
    assert result.postprocess_errors == {{}}
    assert result.extras["{name}"] == 6
'''

WORKFLOW = '''name: test
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install -e ".[test]"
      - run: pytest -q
'''

README = '''# captioner-{name}

A plugin for captioner, made with `captioner new-plugin {name}`.

```bash
pip install -e ".[test]"   # registers the plugin through its entry point
captioner plugins          # lists {name}
pytest -q                  # its tests
echo "a dog runs on the grass" | captioner postprocess -p {name}
```
'''


def write_plugin_project(name: str, parent: Path) -> Path:
    """Write the ``captioner-NAME`` package folder under ``parent``; refuses to touch an existing folder."""
    if not NAME.match(name):
        raise CaptionerError(f"plugin name {name!r}: use lowercase letters, digits and single dashes, e.g. word-count")
    folder = parent / f"captioner-{name}"
    if folder.exists():
        raise CaptionerError(f"{folder} already exists; choose another name or folder")
    module = "captioner_" + name.replace("-", "_")
    values = {"name": name, "module": module, "cls": "".join(part.title() for part in name.split("-"))}
    files = {
        "pyproject.toml": PYPROJECT, f"{module}.py": MODULE, "README.md": README,
        "tests/conftest.py": CONFTEST, f"tests/test_{module.removeprefix('captioner_')}.py": TEST,
        ".github/workflows/test.yml": WORKFLOW,
    }
    for relative, template in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, template.format(**values))
    return folder
