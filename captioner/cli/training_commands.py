"""Training and scoring: ``train``, ``evaluate``, ``evaluate-objects``."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from ..errors import CaptionerError
from .common import CommandError, device_option, error_line, guidance_options, guidance_settings, model_option


@click.command(name="train")
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
    from ..training import TrainConfig, train
    from ..training.config import apply_assignments

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


@click.command()
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
    from ..atomic import atomic_write_text
    from ..captioner import Captioner
    from ..data import load_dataset
    from ..evaluation import evaluate as run_evaluation

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


@click.command("evaluate-objects")
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
    from ..atomic import atomic_write_text
    from ..captioner import Captioner
    from ..data import load_dataset
    from ..labelset import load_label_set
    from ..openworld import NounSlots, read_labels, score_open_world

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
