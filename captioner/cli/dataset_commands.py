"""``data check``: is a downloaded caption dataset laid out as ``--data`` expects, and is every photo there?"""

from __future__ import annotations

import sys

import click

from ..errors import CaptionerError
from .common import CommandError, error_line


@click.group()
def data() -> None:
    """Caption datasets for train, evaluate, memory and evidence (--data)."""


@data.command()
@click.argument("source", type=click.Path())
@click.option("--images", help="Image folder for COCO/Karpathy JSON files.")
@click.option("--split", default="train", show_default=True, help="The split a COCO file is.")
def check(source: str, images: str | None, split: str) -> None:
    """Check that SOURCE reads as --data does and that every photo of every split is there and readable.

    SOURCE is a Flickr8k/30k folder (captions.txt with header image,caption, or
    Flickr8k.token.txt; an images/ folder; split lists such as
    splits/Flickr_8k.trainImages.txt), or a COCO or Karpathy JSON file (then --images).
    Prints the splits; each missing or unreadable photo gets an error line, and the exit
    code is then 1.
    """
    from ..data.check import check_dataset

    try:
        report = check_dataset(source, images, split)
    except CaptionerError as error:
        raise CommandError(str(error)) from None
    click.echo(f"{source}:")
    for part in report.splits:
        per_image = f"{part.fewest}" if part.fewest == part.most else f"{part.fewest}-{part.most}"
        click.echo(f"  {part.name:<5} {part.images:>7,} photos {part.captions:>8,} captions ({per_image} per photo)")
    for problem in report.problems:
        error_line(problem)
    if report.problems:
        click.echo(f"{len(report.problems)} problems", err=True)
        sys.exit(1)
    click.echo(f"ok: every photo is there and readable; train with --data {source}")
