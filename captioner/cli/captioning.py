"""Captioning photos and post-processing captions: ``caption``, ``bulk``, ``postprocess``, ``postprocessors``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from ..errors import CaptionerError
from ..methods import METHODS
from .common import CommandError, device_option, error_line, guidance_options, guidance_settings, model_option

if TYPE_CHECKING:  # for annotations only: commands import what they need when they run
    from ..results import CaptionResult


def expand_paths(paths: tuple[str, ...]) -> Iterator[Path]:
    """Files as given; folders walked recursively for files with an image extension."""
    from ..images import IMAGE_EXTENSIONS

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            yield path


def checked_specs(context: click.Context, parameter: click.Parameter, specs: tuple[str, ...]) -> tuple[str, ...]:
    """Post-processor specs, built once to check them: an unknown name or a bad option is a usage error."""
    from ..postprocessing import PostProcessingChain

    try:
        PostProcessingChain(specs)  # the same check the API and the web endpoints make
    except CaptionerError as error:
        raise click.BadParameter(str(error), context, parameter) from None
    return specs


def report_postprocess_errors(result: CaptionResult) -> bool:
    """One stderr line per post-processor that failed on ``result``; True if any did."""
    for spec, message in result.postprocess_errors.items():
        error_line(f"{result.image}: post-processor {spec}: {message}")
    return bool(result.postprocess_errors)


def text_line(result: CaptionResult) -> str:
    """``PATH<TAB>CAPTION``, then a tab and each post-processor's output in short, when there are any:
    ``sentiment-rnn: neutral; hashtags: #dog #grass`` (``--format jsonl`` has them whole)."""
    shown = ((spec, in_short(value)) for spec, value in result.extras.items())
    extras = "; ".join(f"{spec}: {short}" for spec, short in shown if short is not None)
    return f"{result.image}\t{result.text}" + (f"\t{extras}" if extras else "")


def in_short(value: object) -> str | None:
    """A post-processor's output in a few words (a label, a list's items, a number, else compact JSON);
    None for a translation's attention grid, as the caption already is the translation."""
    if isinstance(value, dict) and isinstance(value.get("label"), str):
        return value["label"]
    if isinstance(value, dict) and {"source", "target", "weights"} <= set(value):
        return None
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) for item in value):
        return " ".join(str(item) for item in value)
    if isinstance(value, (str, int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@model_option
@click.option("--beam-size", "-k", type=click.IntRange(min=1), default=None, help="Beam width.")
@click.option("--max-length", type=click.IntRange(min=1), default=None, help="Most words per caption.")
@click.option("--method", type=click.Choice(METHODS), default=None,
              help="beam (default), greedy (a beam of one, guided as beam is) or sample (unguided: --guide with it "
                   "is refused).")
@click.option("--length-penalty", type=float, default=None, help="Score = logprob / length**penalty.")
@click.option("--seed", type=int, default=None, help="Seed for --method sample.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Image decoding threads (default: CPUs, at most 8).")
@device_option
@click.option("--postprocess", "-p", multiple=True, callback=checked_specs,
              help="Post-processor to run, e.g. sentiment-rnn or translate-rnn:es (repeatable, in order).")
@click.option("--format", "output_format", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write JSON lines to this new file as batches finish (with a progress bar) instead of "
                   "printing; an existing file is refused unless --resume is given.")
@click.option("--resume", is_flag=True, help="With --output: continue that file, skipping the images already in it "
                                             "(captioned or failed).")
@guidance_options
def caption(paths, model, beam_size, max_length, method, length_penalty, seed, batch_size, workers, device,
            postprocess, output_format, output, resume, **guidance) -> None:
    """Caption image files and folders (searched recursively for images).

    Text output is one ``PATH<TAB>CAPTION`` line per image (then a tab and the
    post-processors' outputs in short, if any); jsonl output is one JSON object per
    image. Results stream out batch by batch. Unreadable images and post-processor
    failures are reported on stderr, one line each, and the rest go on; the exit code
    is 1 if any image or post-processor failed, 2 for usage errors (such as an unknown
    post-processor).
    """
    from ..captioner import Captioner
    from ..jsonl_sink import JsonlSink

    if resume and not output:
        raise click.UsageError("--resume needs --output FILE")
    try:
        captioner = Captioner.from_pretrained(model, device=device)
        sink = JsonlSink(output, resume=resume) if output else None
    except (CaptionerError, OSError) as error:
        raise CommandError(str(error)) from None
    options = dict(beam_size=beam_size, max_length=max_length, method=method, length_penalty=length_penalty, seed=seed,
                   **guidance_settings(guidance))
    files = [str(p) for p in expand_paths(paths)]
    todo = [f for f in files if sink is None or f not in sink.done]
    failed = 0
    try:
        results = captioner.caption_stream(todo, batch_size=batch_size, postprocess=postprocess, num_workers=workers,
                                           **options)
        with tqdm(total=len(todo), unit="image", desc="captioning", disable=sink is None, file=sys.stderr) as bar:
            for result in results:
                if result.error is not None:
                    failed += 1
                    error_line(result.error)
                elif report_postprocess_errors(result):
                    failed += 1
                if sink is not None:
                    sink.write(result)
                    bar.update(1)
                elif result.error is None:
                    click.echo(json.dumps(result.to_dict(), ensure_ascii=False) if output_format == "jsonl"
                               else text_line(result))
    except (CaptionerError, ValueError) as error:
        raise CommandError(str(error)) from None
    finally:
        if sink is not None:
            sink.close()
    if sink is not None and len(todo) < len(files):
        click.echo(f"resumed: {len(files) - len(todo)} images were already in {output}", err=True)
    if not files:
        error_line("no image files found in " + ", ".join(paths))
    sys.exit(1 if failed or not files else 0)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--output", "-o", required=True, help="Output folder (one file per block).")
@click.option("--format", "output_format", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True)
@model_option
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Model replicas.")
@click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--beam-size", "-k", type=click.IntRange(min=1), default=None)
@click.option("--postprocess", "-p", multiple=True, callback=checked_specs)
@click.option("--address", default=None, help="Ray cluster address (default: start a local Ray instance).")
def bulk(inputs, output, output_format, model, workers, gpus_per_worker, batch_size, beam_size, postprocess,
         address) -> None:
    """Caption many images with Ray Data (pip install "captioner[ray]"), locally or on a cluster.

    OUTPUT gets one file per block: ``*.jsonl``, each line the object ``caption --format jsonl``
    gives, or ``*.parquet`` with the flat columns image, caption, score, error,
    original_caption, objects, postprocessing. Images that cannot be read get an error
    row and a line on stderr; the exit code is then 1.
    """
    import importlib.util

    from ..bulk import BulkJob, run_bulk

    if importlib.util.find_spec("ray") is None:
        raise CommandError('bulk captioning needs Ray: pip install "captioner[ray]"') from None
    decoding = {"beam_size": beam_size} if beam_size else {}
    job = BulkJob(list(inputs), output, output_format, model, workers, gpus_per_worker, batch_size, tuple(postprocess),
                  decoding, address)
    try:
        summary = run_bulk(job)
    except CaptionerError as error:
        raise CommandError(str(error)) from None
    for message in summary.errors:
        error_line(message)
    click.echo(f"captioned {summary.images - len(summary.errors)} of {summary.images} images into {output}/", err=True)
    sys.exit(1 if summary.errors else 0)


@click.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--postprocess", "-p", "specs", multiple=True, required=True, callback=checked_specs,
              help="Post-processor to run (repeatable, in order), e.g. sentiment-rnn or translate-rnn:es.")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True, help="Lines per batch.")
def postprocess(file, specs, batch_size) -> None:
    """Run post-processors on existing captions from FILE (standard input if none).

    Lines are plain captions or the JSON lines that ``caption --format jsonl``
    writes; the output is JSON lines in that shape (a plain caption's ``image`` is
    FILE:LINE). A line that cannot be read, or a post-processor that fails on it,
    gets its error in its row and a line on stderr; the exit code is then 1.
    """
    from ..caption_lines import read_caption_batches
    from ..postprocessing import PostProcessingChain

    chain = PostProcessingChain(specs)
    failed = False
    for batch in read_caption_batches(file, file.name, batch_size):
        chain(batch)
        for result in batch:
            if result.error is not None:
                error_line(result.error)
            failed = report_postprocess_errors(result) or result.error is not None or failed
            click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    sys.exit(1 if failed else 0)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def postprocessors(as_json: bool) -> None:
    """List post-processors: what each does, and the specs to pass to --postprocess."""
    from ..postprocessing import describe_postprocessors

    infos = describe_postprocessors()
    if as_json:
        click.echo(json.dumps([{**asdict(info), "specs": info.specs} for info in infos], indent=2))
        return
    for info in infos:
        click.echo(f"{info.name} ({info.effect}, plugin {info.plugin}): {info.description}")
        if info.error:
            click.echo(f"  error: {info.error}")
        else:
            click.echo(f"  use: {' '.join(info.specs)}")
