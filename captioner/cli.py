"""The ``captioner`` command line."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from .errors import DEBUG_VARIABLE, CaptionerError, debugging
from .methods import METHODS

if TYPE_CHECKING:  # for annotations only: commands import what they need when they run
    from .captioner import Captioner
    from .results import CaptionResult


def expand_paths(paths: tuple[str, ...]) -> Iterator[Path]:
    """Files as given; folders walked recursively for files with an image extension."""
    from .images import IMAGE_EXTENSIONS

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        else:
            yield path


def error_line(message: str) -> None:
    click.echo(f"captioner: error: {message}", err=True)


class CommandError(click.ClickException):
    """A failure the user can act on: ``captioner: error: MESSAGE`` on stderr and exit code 1
    (click's usage errors keep exit code 2). Raised while handling the exception behind it,
    whose traceback ``--debug`` prints first."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        handled = sys.exc_info()[1]
        self.traceback = "".join(traceback.format_exception(handled)) if handled and debugging() else ""

    def show(self, file=None) -> None:
        if self.traceback:
            click.echo(self.traceback.rstrip(), err=True)
        error_line(self.format_message())


model_option = click.option("--model", "-m", default=None,
                            help="Model folder or shipped model name (default: the shipped default).")
device_option = click.option("--device", default=None, help="cuda, cuda:1, mps or cpu (default: best available).")


def checked_specs(context: click.Context, parameter: click.Parameter, specs: tuple[str, ...]) -> tuple[str, ...]:
    """Post-processor specs, built once to check them: an unknown name or a bad option is a usage error."""
    from .postprocessing import PostProcessingChain

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


GUIDANCE_FIELDS = ("guide", "object_threshold", "new_word_threshold", "max_objects", "absent_threshold", "object_margin",
                   "open_vocabulary", "people_threshold", "language_weight", "consensus_neighbours")


def guidance_options(command):
    """The open-world guidance and consensus reranking flags (``DecodingOptions`` fields; unset ones keep the
    model's)."""
    flags = [
        click.option("--guide/--no-guide", default=None,
                     help="Name what the encoder's classifier recognises (default: on, for encoders with one; "
                          "beam and greedy only)."),
        click.option("--object-threshold", type=click.FloatRange(0, 1), default=None,
                     help="Require an object's word when its classes have this much probability (default 0.3)."),
        click.option("--new-word-threshold", type=click.FloatRange(0, 1), default=None,
                     help="The same for words added to the caption vocabulary (default 0.5)."),
        click.option("--max-objects", type=click.IntRange(0, 3), default=None, help="Most words to require (default 1)."),
        click.option("--absent-threshold", type=click.FloatRange(0, 1), default=None,
                     help="Do not say words for things with less probability than this (default 0.05)."),
        click.option("--object-margin", type=click.FloatRange(min=0), default=None,
                     help="Leave a required word out when it costs more than this per word, at full confidence "
                          "(default 0.4)."),
        click.option("--open-vocabulary/--closed-vocabulary", default=None,
                     help="Let guidance name classes outside the caption vocabulary (default: open)."),
        click.option("--people-threshold", type=click.FloatRange(0, 1), default=None,
                     help="Do not say words for people (or said only with people) where the model's people "
                          "detector gives them less probability than this (0 turns it off; default: the model's)."),
        click.option("--language-weight", type=click.FloatRange(min=0), default=None,
                     help="Weight of the model's caption language model, given the photo's evidence, beside the "
                          "decoder on photos unlike the training photos (0 turns it off; default: the model's)."),
        click.option("--consensus-neighbours", type=click.IntRange(min=0), default=None,
                     help="Rerank the beam by agreement with the captions of this many similar training photos "
                          "(models with a caption memory; 0 turns it off; default: the model's)."),
    ]
    for flag in reversed(flags):
        command = flag(command)
    return command


def combining_options(command):
    """MODELS, --output, --set and --dtype: the commands that make one model from several."""
    flags = [
        click.argument("models", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False)),
        click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the new model."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                     help="Decoding default to store with the model, e.g. --set length_penalty=1.0."),
        click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True),
    ]
    for flag in reversed(flags):
        command = flag(command)
    return command


def guidance_settings(flags: dict) -> dict:
    """Pop the guidance flags out of a command's keyword arguments."""
    return {name: flags.pop(name) for name in GUIDANCE_FIELDS}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="captioner")
@click.option("--plugins-dir", "plugins_dirs", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Also load each *.py file in this folder as a plugin (repeatable; sets CAPTIONER_PLUGINS_DIR).")
@click.option("--debug", is_flag=True, help=f"Print the traceback behind an error, plugin errors included "
                                            f"(sets {DEBUG_VARIABLE}=1).")
def cli(plugins_dirs: tuple[str, ...], debug: bool) -> None:
    """Caption images with CNN encoders and recurrent decoders."""
    if plugins_dirs:
        os.environ["CAPTIONER_PLUGINS_DIR"] = os.pathsep.join(plugins_dirs)  # plugins load lazily, on first use
    if debug:
        os.environ[DEBUG_VARIABLE] = "1"


@cli.command()
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
    from .captioner import Captioner
    from .jsonl_sink import JsonlSink

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


@cli.command(name="new-plugin")
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to make the captioner-NAME folder.")
def new_plugin(name: str, directory: str) -> None:
    """Start a plugin package: a working post-processor, its entry point, tests and CI.

    Then: cd captioner-NAME && pip install -e ".[test]" && pytest.
    """
    from .plugin_template import write_plugin_project

    try:
        folder = write_plugin_project(name, Path(directory))
    except CaptionerError as error:
        raise click.BadParameter(str(error)) from None
    click.echo(f"wrote {folder}; next: cd {folder} && pip install -e \".[test]\" && pytest -q")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def plugins(as_json: bool) -> None:
    """List installed plugins, what each registered, and errors for broken ones."""
    from .registry import get_plugins

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


@cli.command()
@click.option("--model", "-m", "models", multiple=True,
              help="Model name or folder to serve; repeat for several (the first is the default).")
@device_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for all).")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--share", is_flag=True, help="Also serve through a public Gradio share link (printed at start).")
@click.option("--mcp", is_flag=True, help="Also serve the caption endpoint as an MCP tool.")
@click.option("--queue-size", type=click.IntRange(min=1), default=64, show_default=True,
              help="Requests that may wait; more get a 'busy' answer.")
@click.option("--max-batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Concurrent requests captioned in one forward pass.")
def ui(models, device, host, port, share, mcp, queue_size, max_batch_size) -> None:
    """Start the web interface (Gradio, and the HTTP API at /v1), with the shipped default model unless --model is given."""
    from .ui import UIConfig, build_app, launch

    config = UIConfig(models=models, device=device, queue_size=queue_size, max_batch_size=max_batch_size)
    try:
        app = build_app(config)
    except CaptionerError as error:
        raise CommandError(str(error)) from None
    try:
        _, local_url, share_url = launch(app, server_name=host, server_port=port, share=share, mcp_server=mcp,
                                         quiet=True, prevent_thread_lock=True)  # our own lines, not Gradio's hints
        click.echo(f"web interface: {local_url}  (HTTP API docs: {local_url}v1/docs)")
        if share_url:
            click.echo(f"public link: {share_url}")
        if mcp:
            click.echo(f"MCP server: {local_url}gradio_api/mcp/")
        click.echo("press Ctrl+C to stop")
        app.block_thread()
    finally:
        app.captioner_service.close()


@cli.command()
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

    from .bulk import BulkJob, run_bulk

    if importlib.util.find_spec("ray") is None:
        raise CommandError('bulk captioning needs Ray: pip install "captioner[ray]"') from None
    decoding = {"beam_size": beam_size} if beam_size else {}
    job = BulkJob(list(inputs), output, output_format, model, workers, gpus_per_worker, batch_size, tuple(postprocess),
                  decoding, address)
    try:
        summary = run_bulk(job)
    except CaptionerError as error:
        raise CommandError(str(error)) from None
    for error in summary.errors:
        error_line(error)
    click.echo(f"captioned {summary.images - len(summary.errors)} of {summary.images} images into {output}/", err=True)
    sys.exit(1 if summary.errors else 0)


@cli.command()
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
    from .caption_lines import read_caption_batches
    from .postprocessing import PostProcessingChain

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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def postprocessors(as_json: bool) -> None:
    """List post-processors: what each does, and the specs to pass to --postprocess."""
    from .postprocessing import describe_postprocessors

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


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def models(paths: tuple[str, ...], as_json: bool) -> None:
    """List the shipped models and describe any model folders given."""
    from .model_catalog import DEFAULT_MODEL, describe_models

    infos = describe_models(list(paths))
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


@cli.command(name="train")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="JSON or TOML config file.")
@click.option("--data", help="Flickr folder, or COCO/Karpathy JSON (then --images).")
@click.option("--images", help="Image folder for JSON datasets.")
@click.option("--output", "-o", help="Run folder (checkpoints/, best/, metrics.jsonl).")
@click.option("--encoder", help="Registered encoder name.")
@click.option("--decoder", help="Registered decoder name.")
@click.option("--mode", type=click.Choice(["frozen", "finetune"]), help="Cached frozen features or fine-tuning.")
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--lr", type=float)
@device_option
@click.option("--seed", type=int)
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Any other option, e.g. --set decoder_hparams.hidden_dim=512 --set label_smoothing=0.1.")
@click.option("--resume", is_flag=True, help="Continue from the run folder's last complete checkpoint.")
def train_command(config_file, assignments, resume, **flags) -> None:
    """Train a caption model (frozen-encoder features are cached on disk).

    Run it under torchrun for multi-GPU (or multi-process CPU) training.
    """
    from .training import TrainConfig, train
    from .training.config import apply_assignments

    try:
        base = {}
        if config_file:
            base = TrainConfig.from_file(config_file).to_json()
        elif resume and flags.get("output") and (Path(flags["output"]) / "train_config.json").is_file():
            base = TrainConfig.from_file(Path(flags["output"]) / "train_config.json").to_json()  # the run's own
        data = {**base, **{k.replace("-", "_"): v for k, v in flags.items() if v is not None}}
        config = TrainConfig.from_dict(apply_assignments(data, list(assignments)))
    except (TypeError, ValueError, OSError) as error:
        raise click.UsageError(str(error).replace("__init__() ", "")) from None
    try:
        best = train(config, resume=resume)
    except CaptionerError as error:
        raise CommandError(str(error)) from None
    click.echo(f"best model: {best}")


@cli.command()
@model_option
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Flickr folder, or COCO/Karpathy JSON (then --images).")
@click.option("--images", help="Image folder for JSON datasets.")
@click.option("--split", default="val", show_default=True)
@click.option("--beam-size", "-k", "beam_sizes", type=click.IntRange(min=1), multiple=True,
              help="Beam width; repeat to compare several (images are encoded once).")
@click.option("--length-penalty", "length_penalties", type=float, multiple=True, help="Repeatable, like --beam-size.")
@click.option("--max-length", type=click.IntRange(min=1), default=None)
@click.option("--max-images", type=click.IntRange(min=1), default=None, help="Only the first N images of the split.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@device_option
@click.option("--output", type=click.Path(dir_okay=False), help="Write the scores as JSON here.")
@click.option("--captions", type=click.Path(dir_okay=False),
              help="Write per-image captions (of the first setting) as JSON lines here.")
@guidance_options
def evaluate(model, data, images, split, beam_sizes, length_penalties, max_length, max_images, batch_size, device,
             output, captions, **guidance) -> None:
    """Score a model on a dataset split: BLEU-1..4, METEOR, ROUGE-L, CIDEr (pycocoevalcap)."""
    from .atomic import atomic_write_text
    from .captioner import Captioner
    from .data import load_dataset
    from .evaluation import evaluate as run_evaluation

    settings = [
        {"beam_size": k, "length_penalty": lp, "max_length": max_length, **guidance_settings(dict(guidance))}
        for k in beam_sizes or [None]
        for lp in length_penalties or [None]
    ]
    try:
        captioner = Captioner.from_pretrained(model, device=device)
        selected = load_dataset(data, images).split(split)[:max_images]
        results = run_evaluation(captioner, selected, settings, batch_size)
    except (CaptionerError, ValueError) as error:
        raise CommandError(str(error)) from None
    runs = []
    for setting, (scores, _) in zip(settings, results):
        options = captioner.decoding.updated(**setting)
        click.echo(f"\n{split}, {len(selected)} images, beam {options.beam_size}, length penalty {options.length_penalty}, "
                   f"guidance {'on' if options.guide else 'off'}"
                   + (f", consensus of {options.consensus_neighbours} neighbours" if options.consensus_neighbours else ""))
        click.echo(scores.table())
        runs.append({"decoding": asdict(options), "scores": scores.values, "notes": scores.notes})
    if output:
        report = {"model": model, "data": data, "split": split, "images": len(selected), "runs": runs}
        atomic_write_text(output, json.dumps(report, indent=2) + "\n")
    if captions:
        lines = [json.dumps({"image": str(i.path), "caption": t, "references": list(i.captions)}) + "\n"
                 for i, t in zip(selected, results[0][1])]
        atomic_write_text(captions, "".join(lines))


@cli.command("evaluate-objects")
@click.argument("labels", type=click.Path(exists=True, dir_okay=False))
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Folder of the labelled photos (default: images/ beside LABELS).")
@model_option
@click.option("--slots-from", "slots_from", default=None,
              help="Caption dataset whose captions show where nouns go (e.g. a Flickr folder), to score placement.")
@click.option("--slots-split", default=None, help="Split of --slots-from to read (default: all of them).")
@click.option("--beam-size", "-k", type=click.IntRange(min=1), default=None)
@click.option("--batch-size", type=click.IntRange(min=1), default=50, show_default=True)
@device_option
@click.option("--output", type=click.Path(dir_okay=False), help="Write the scores as JSON here.")
@click.option("--captions", type=click.Path(dir_okay=False), help="Write per-image captions as JSON lines here.")
@guidance_options
def evaluate_objects(labels, images, model, slots_from, slots_split, beam_size, batch_size, device, output, captions,
                     **guidance) -> None:
    """Open-world score on labelled photos: is the object named, where a noun goes?

    LABELS is a JSON-lines file of {"image", "label", "names"} (e.g.
    ../shared/data/imagenet-sample/labels.jsonl).
    """
    from .atomic import atomic_write_text
    from .captioner import Captioner
    from .data import load_dataset
    from .labelset import load_label_set
    from .openworld import NounSlots, read_labels, score_open_world

    settings = guidance_settings(guidance)
    try:
        captioner = Captioner.from_pretrained(model, device=device)
        labelled = read_labels(labels, images)
        slots = None
        if slots_from:
            dataset = load_dataset(slots_from)
            corpus = dataset.split(slots_split) if slots_split else [i for split in dataset.splits.values() for i in split]
            references = [c for image in corpus for c in image.captions]
            slots = NounSlots.learn(references, load_label_set("imagenet-1k").is_noun)
        results = captioner.caption([str(i.path) for i in labelled], batch_size=batch_size, beam_size=beam_size,
                                    **settings)
    except (CaptionerError, ValueError) as error:
        raise CommandError(str(error)) from None
    failed = [r.error for r in results if r.error is not None]
    for message in failed:
        error_line(message)
    texts = [r.original_text or "" for r in results]
    scores = score_open_world(labelled, texts, slots)
    click.echo(f"{labels}: {len(labelled)} photos, guidance {'on' if captioner.decoding.updated(**settings).guide else 'off'}")
    click.echo(scores.table())
    if output:
        atomic_write_text(output, json.dumps({"labels": labels, "model": model, **scores.to_dict()}, indent=2) + "\n")
    if captions:
        lines = [json.dumps({"image": i.path.name, "label": i.label, "caption": t, "required_words": r.required_words})
                 + "\n" for i, t, r in zip(labelled, texts, results)]
        atomic_write_text(captions, "".join(lines))
    sys.exit(1 if failed else 0)


@cli.command()
@combining_options
def average(models, output, assignments, dtype) -> None:
    """Average the weights of model folders from one run (same encoder, decoder and vocabulary)."""
    from .averaging import average_models

    build_and_save(lambda: average_models(list(models)), output, assignments, dtype)
    click.echo(f"averaged {len(models)} models into {output}")


def photo_learning_options(command):
    """--images, --output, --set, --dtype, --batch-size and --device: the commands that give a model something
    learned from a dataset's photos."""
    flags = [
        click.option("--images", help="Image folder for JSON datasets."),
        click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the new model."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                     help="Decoding default to store with the model, e.g. --set consensus_neighbours=20."),
        click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True),
        click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True),
        device_option,
    ]
    for flag in reversed(flags):
        command = flag(command)
    return command


def build_and_save(build, output: str, assignments: tuple[str, ...], dtype: str) -> Captioner:
    """Build a model, store the ``--set`` decoding defaults with it and save it as ``dtype``."""
    import torch

    from .training.config import parse_assignment

    try:
        decoding = {".".join(keys): value for keys, value in map(parse_assignment, assignments)}
        captioner = build()
        captioner.decoding = captioner.decoding.updated(**decoding)
    except (CaptionerError, ValueError, TypeError) as error:
        raise CommandError(str(error)) from None
    captioner.save(output, dtype=getattr(torch, dtype))
    return captioner


@cli.command()
@combining_options
def ensemble(models, output, assignments, dtype) -> None:
    """Decode models that share a vocabulary as one (the mean of their predictions; different encoders are stacked)."""
    from .ensembling import ensemble_models

    captioner = build_and_save(lambda: ensemble_models(list(models)), output, assignments, dtype)
    click.echo(f"ensembled {len(captioner.model_config().decoder_hparams['members'])} decoders into {output}")


@cli.command()
@click.argument("model")
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Flickr folder, or COCO/Karpathy JSON (then --images): the captioned photos to remember.")
@click.option("--split", default="train", show_default=True)
@photo_learning_options
def memory(model, data, images, split, output, assignments, dtype, batch_size, device) -> None:
    """Give MODEL a caption memory of a split's photos, for consensus reranking (--set consensus_neighbours=K).

    The photos' pooled features (as MODEL's encoder sees them) and their captions are
    stored with the model (memory.safetensors): it then reorders each
    image's beam by agreement with the captions of the K most similar photos.
    """
    from .captioner import Captioner
    from .consensus import build_memory
    from .data import load_dataset

    def remembering() -> Captioner:
        captioner = Captioner.from_pretrained(model, device=device)
        selected = load_dataset(data, images).split(split)
        captioner.memory = build_memory(captioner, selected, batch_size, on_error=error_line, progress=True)
        return captioner

    captioner = build_and_save(remembering, output, assignments, dtype)
    assert captioner.memory is not None
    click.echo(f"remembered {len(captioner.memory)} photos of {data} ({split}) in {output}")
    if not captioner.decoding.consensus_neighbours:
        click.echo("it reranks only when asked (--consensus-neighbours K); --set consensus_neighbours=K makes "
                   "that its default")


@cli.command()
@click.argument("model")
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Flickr folder, or COCO/Karpathy JSON (then --images): captioned photos to learn from.")
@click.option("--split", "splits", multiple=True, default=("train",), show_default=True,
              help="Split to learn from (repeatable).")
@photo_learning_options
def evidence(model, data, images, splits, output, assignments, dtype, batch_size, device) -> None:
    """Give MODEL a people detector learned from a dataset's photos and what their captions say.

    Each photo's target is the share of its captions that name people; the detector
    (evidence.safetensors) reads the encoder's pooled features and class probabilities.
    With --set people_threshold=P, words for people are not said where it gives less than P.
    """
    import torch

    from .captioner import Captioner
    from .data import load_dataset
    from .evidence import fit_people_detector, people_targets

    def learning() -> Captioner:
        captioner = Captioner.from_pretrained(model, device=device)
        object_words = captioner.object_words()
        if object_words is None:
            raise CaptionerError("the people detector reads the encoder's class probabilities, and this encoder has "
                                 "no classifier")
        photos = load_dataset(data, images).select(list(splits))
        pooled, probabilities, captions = [], [], []
        for indices, encoded in captioner.encode_images([str(p.path) for p in photos], batch_size, error_line,
                                                        "reading photos"):
            assert encoded.class_logits is not None  # the encoder has a classifier
            pooled.append(encoded.pooled.float().cpu())
            probabilities.append(encoded.class_logits.float().softmax(dim=1).cpu())
            captions += [photos[index].captions for index in indices]
        targets = people_targets(captions, object_words.label_set)
        captioner.people_detector = fit_people_detector(torch.cat(pooled), torch.cat(probabilities), targets)
        click.echo(f"learned from {len(captions)} photos, {float(targets.mean()):.2f} of whose captions name people")
        return captioner

    build_and_save(learning, output, assignments, dtype)
    click.echo(f"wrote {output}")


def main() -> None:
    cli()
