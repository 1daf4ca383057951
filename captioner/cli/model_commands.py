"""Model folders: ``models`` lists them; ``average``, ``ensemble``, ``memory`` and ``evidence`` make one from others."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from ..errors import CaptionerError
from .common import CommandError, device_option, error_line

if TYPE_CHECKING:  # for annotations only: commands import what they need when they run
    from ..captioner import Captioner


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def models(paths: tuple[str, ...], as_json: bool) -> None:
    """List the shipped models and describe any model folders given."""
    from ..model_catalog import DEFAULT_MODEL, describe_models

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


@click.command()
@combining_options
def average(models, output, assignments, dtype) -> None:
    """Average the weights of model folders from one run (same encoder, decoder and vocabulary)."""
    from ..averaging import average_models

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

    from ..training.config import parse_assignment

    try:
        decoding = {".".join(keys): value for keys, value in map(parse_assignment, assignments)}
        captioner = build()
        captioner.decoding = captioner.decoding.updated(**decoding)
    except (CaptionerError, ValueError, TypeError) as error:
        raise CommandError(str(error)) from None
    captioner.save(output, dtype=getattr(torch, dtype))
    return captioner


@click.command()
@combining_options
def ensemble(models, output, assignments, dtype) -> None:
    """Decode models that share a vocabulary as one (the mean of their predictions; different encoders are stacked)."""
    from ..ensembling import ensemble_models

    captioner = build_and_save(lambda: ensemble_models(list(models)), output, assignments, dtype)
    click.echo(f"ensembled {len(captioner.model_config().decoder_hparams['members'])} decoders into {output}")


@click.command()
@click.argument("model")
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Flickr folder, or COCO/Karpathy JSON (then --images): the captioned photos to remember.")
@click.option("--split", default="train", show_default=True)
@click.option("--components", type=click.IntRange(min=1),
              help="Keep each photo's features projected onto the N directions that hold most of them: a "
                   "smaller memory (256 of Lite0's 1,280: 5.6 MB instead of 17.2 MB for Flickr8k, the same "
                   "validation scores).")
@photo_learning_options
def memory(model, data, images, split, components, output, assignments, dtype, batch_size, device) -> None:
    """Give MODEL a caption memory of a split's photos, for consensus reranking (--set consensus_neighbours=K).

    The photos' pooled features (as MODEL's encoder sees them) and their captions are
    stored with the model (memory.safetensors): it then reorders each
    image's beam by agreement with the captions of the K most similar photos.
    """
    from ..captioner import Captioner
    from ..consensus import build_memory
    from ..data import load_dataset

    def remembering() -> Captioner:
        captioner = Captioner.from_pretrained(model, device=device)
        selected = load_dataset(data, images).split(split)
        remembered = build_memory(captioner, selected, batch_size, on_error=error_line, progress=True)
        captioner.memory = remembered.compressed(components) if components else remembered
        return captioner

    captioner = build_and_save(remembering, output, assignments, dtype)
    assert captioner.memory is not None
    click.echo(f"remembered {len(captioner.memory)} photos of {data} ({split}) in {output}")
    if not captioner.decoding.consensus_neighbours:
        click.echo("it reranks only when asked (--consensus-neighbours K); --set consensus_neighbours=K makes "
                   "that its default")


@click.command()
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

    from ..captioner import Captioner
    from ..data import load_dataset
    from ..evidence import fit_people_detector, people_targets

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
