"""Plugins: ``plugins`` lists them, ``new-plugin`` starts a package."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from ..errors import CaptionerError


@click.command(name="new-plugin")
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to make the captioner-NAME folder.")
def new_plugin(name: str, directory: str) -> None:
    """Start a plugin package: a working post-processor, its entry point, tests and CI.

    Then: cd captioner-NAME && pip install -e ".[test]" && pytest.
    """
    from ..plugin_template import write_plugin_project

    try:
        folder = write_plugin_project(name, Path(directory))
    except CaptionerError as error:
        raise click.BadParameter(str(error)) from None
    click.echo(f"wrote {folder}; next: cd {folder} && pip install -e \".[test]\" && pytest -q")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def plugins(as_json: bool) -> None:
    """List installed plugins, what each registered, and errors for broken ones."""
    from ..registry import get_plugins

    infos = get_plugins()
    if as_json:
        click.echo(json.dumps([asdict(info) for info in infos], indent=2))
        return
    for info in infos:
        click.echo(f"{info.name} {info.version or ''}".rstrip())
        if info.version is None and info.source:
            click.echo(f"  file: {info.source}")
        if info.hooks:
            click.echo(f"  hooks: {', '.join(info.hooks)}")
        for kind, names in info.registered.items():
            click.echo(f"  {kind}: {', '.join(names)}")
        if info.error:
            click.echo(f"  error: {info.error}")
        for warning in info.warnings:
            click.echo(f"  warning: {warning}")
