"""The ``captioner`` command line."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import click

from .errors import CaptionerError
from .images import IMAGE_EXTENSIONS


def expand_paths(paths: tuple[str, ...]) -> Iterator[Path]:
    """Files as given; folders walked recursively for files with an image extension."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            yield path


def error_line(message: str) -> None:
    click.echo(f"captioner: error: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="captioner")
def cli() -> None:
    """Caption images with CNN encoders and recurrent decoders."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--model", "-m", default=None, help="Model folder or shipped model name (default: the shipped default).")
@click.option("--beam-size", "-k", type=click.IntRange(min=1), default=None, help="Beam width.")
@click.option("--max-length", type=click.IntRange(min=1), default=None, help="Most words per caption.")
@click.option("--method", type=click.Choice(["beam", "greedy", "sample"]), default=None, help="Decoding method.")
@click.option("--length-penalty", type=float, default=None, help="Score = logprob / length**penalty.")
@click.option("--seed", type=int, default=None, help="Seed for --method sample.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best available).")
@click.option("--postprocess", "-p", multiple=True, help="Post-processor to run, e.g. sentiment or translate:es.")
@click.option("--format", "output_format", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
def caption(paths, model, beam_size, max_length, method, length_penalty, seed, batch_size, device, postprocess,
            output_format) -> None:
    """Caption image files and folders (searched recursively for images).

    Text output is one ``PATH<TAB>CAPTION`` line per image; jsonl output is one JSON
    object per image. Unreadable images are reported on stderr and the rest are
    still captioned; the exit code is 1 if any image failed.
    """
    from .captioner import Captioner

    try:
        captioner = Captioner.from_pretrained(model, device=device)
    except CaptionerError as error:
        error_line(str(error))
        sys.exit(1)
    options = dict(beam_size=beam_size, max_length=max_length, method=method, length_penalty=length_penalty, seed=seed)
    files = list(expand_paths(paths))
    failed = 0
    for start in range(0, len(files), batch_size):
        batch = [str(p) for p in files[start : start + batch_size]]
        try:
            results = captioner.caption(batch, batch_size=batch_size, postprocess=postprocess, **options)
        except (CaptionerError, ValueError) as error:
            error_line(str(error))
            sys.exit(1)
        for result in results:
            if result.error is not None:
                failed += 1
                error_line(result.error)
            elif output_format == "jsonl":
                click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
            else:
                click.echo(f"{result.image}\t{result.text}")
    if not files:
        error_line("no image files found in " + ", ".join(paths))
    sys.exit(1 if failed or not files else 0)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def plugins(as_json: bool) -> None:
    """List installed plugins, what each registered, and errors for broken ones."""
    from .plugins import get_plugins

    infos = get_plugins()
    if as_json:
        click.echo(json.dumps([asdict(info) for info in infos], indent=2))
        return
    for info in infos:
        click.echo(f"{info.name} {info.version or ''}".rstrip())
        if info.hooks:
            click.echo(f"  hooks: {', '.join(info.hooks)}")
        for kind, names in info.registered.items():
            click.echo(f"  {kind}: {', '.join(names)}")
        if info.error:
            click.echo(f"  error: {info.error}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def models(paths: tuple[str, ...], as_json: bool) -> None:
    """List the shipped models and describe any model folders given."""
    from .models import DEFAULT_MODEL, list_models

    infos = list_models(list(paths))
    if as_json:
        click.echo(json.dumps([asdict(info) for info in infos], indent=2))
    else:
        if not infos:
            click.echo("no models found")
        for info in infos:
            marker = " (default)" if info.name == DEFAULT_MODEL else ""
            if info.error:
                click.echo(f"{info.name}{marker}\terror: {info.error}")
            else:
                click.echo(f"{info.name}{marker}\t{info.encoder} + {info.decoder}, {info.vocab_size} words\t{info.path}")
    sys.exit(1 if any(info.error for info in infos) else 0)


def main() -> None:
    cli()
