"""The house: light to import, every public name resolvable, no import circles, typed, linted."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import captioner

PACKAGE = Path(captioner.__file__).parent


def test_help_answers_without_importing_torch():
    code = ("import sys; from click.testing import CliRunner; from captioner.cli import cli; "
            "result = CliRunner().invoke(cli, ['--help']); assert result.exit_code == 0, result.output; "
            "print('caption' in result.output, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


def test_every_public_name_resolves():
    for name in captioner.__all__:
        assert getattr(captioner, name) is not None, name
    assert {"Captioner", "hookimpl", "create_decoder"} <= set(dir(captioner))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Modules of this package that ``path`` imports anywhere (functions and type-checking blocks too: a
    dependency that goes both ways is a circle for the reader even where Python never runs it)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            root = ".".join(base + ([node.module] if node.module else []))
            targets = [root] + [f"{root}.{alias.name}" for alias in node.names]
        found |= {target for target in targets if target in modules}
    return found - {name}


def test_no_module_imports_one_that_imports_it_back():
    paths = [p for p in PACKAGE.rglob("*.py")]
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imported_modules(p, modules) for p in paths}
    cycles = set()

    def visit(node: str, trail: list[str]) -> None:
        for target in graph[node]:
            if target in trail:
                cycles.add(" -> ".join(trail[trail.index(target):] + [target]))
            elif len(trail) < 12:
                visit(target, trail + [target])

    for start in graph:
        visit(start, [start])
    assert not cycles, sorted(cycles)[:5]


def test_a_type_checker_knows_one_image_gives_one_result_and_a_list_gives_a_list(tmp_path):
    user_code = tmp_path / "user.py"
    user_code.write_text(
        "from captioner import Captioner\n"
        "captioner = Captioner.from_pretrained()\n"
        "one: str | None = captioner.caption('photo.jpg').text\n"
        "many: str | None = captioner.caption(['a.jpg', 'b.jpg'])[0].text\n"
        "wrong: str | None = captioner.caption(['a.jpg']).text\n"
    )
    out = subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--follow-imports=silent",
                          "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(user_code)],
                         capture_output=True, text=True).stdout
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "user.py:5:" in errors[0] and '"list[CaptionResult]" has no attribute "text"' in errors[0], out


def test_ruff_finds_nothing():
    root = PACKAGE.parent
    if not (root / "pyproject.toml").is_file():
        pytest.skip("needs the source checkout (an editable install, as the README sets up)")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "captioner", "plugins"], cwd=root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_mypy_finds_nothing(tmp_path):
    root = PACKAGE.parent
    if not (root / "pyproject.toml").is_file():
        pytest.skip("needs the source checkout (an editable install, as the README sets up)")
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")], cwd=root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
