"""Choose a model's length penalty and consensus reranking settings on a caption split.

usage: python scripts/tune_reranking.py MODEL --data ../shared/data/flickr8k [--split val]
           [--length-penalty 0.6 ...] [--neighbours 30 ...] [--generic 2 ...]

MODEL needs a caption memory (``captioner memory``). The split's photos are encoded
once and decoded once per length penalty, with the model's other decoding defaults
(beam, guidance) and the whole beam kept; those candidates are then reranked by
consensus for every neighbours x generic setting (``consensus_weight`` 0), and each
setting's BLEU-4, CIDEr and distinct captions are printed, for the split and for each
half of it. To show what choosing on these photos is worth on others, a setting is
then chosen on each half (the one that clears the targets by the widest margin) and
scored on the other half, and both halves together. This is the grid of flickr8k-ensemble's
model card; store the chosen setting with
``captioner average MODEL -o OUT --set length_penalty=... --set consensus_generic=...``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools

import torch

from captioner import Captioner
from captioner.batch_loader import BatchLoader
from captioner.data.readers import read_flickr
from captioner.evaluation import score_dataset_captions

Setting = tuple[float, int, float]  # length penalty, neighbours, generic


def decode(model: Captioner, images, length_penalties: list[float], batch_size: int):
    """Per length penalty, every image's beam (text and words, best first); and the pooled features."""
    beams: dict[float, list[list[tuple[str, list[str]]]]] = {lp: [] for lp in length_penalties}
    pooled = []
    with BatchLoader(model.encoder_config, model.device) as loader:
        for batch in loader.batches([str(image.path) for image in images], batch_size):
            if batch.errors or batch.pixels is None:  # every photo of the split is scored
                raise SystemExit(next(iter(batch.errors.values()), "an empty batch"))
            features = model.encode(batch.pixels)
            pooled.append(features.pooled.float().cpu())
            for lp in length_penalties:
                options = model.decoding.updated(length_penalty=lp, n_best=model.decoding.beam_size,
                                                 consensus_neighbours=0)
                beams[lp] += [[(c.text, c.words) for c in row] for row, _, _ in model.describe(features, options)]
    return beams, torch.cat(pooled)


def scores(images, captions: list[str]) -> tuple[float, float, int]:
    """BLEU-4, CIDEr and distinct captions (without the counts pycocoevalcap prints)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        values = score_dataset_captions(images, captions, metrics=("BLEU", "CIDEr")).values
    return round(values["BLEU-4"], 4), round(values["CIDEr"], 4), int(values["distinct_captions"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", required=True, help="Flickr folder")
    parser.add_argument("--split", default="val")
    parser.add_argument("--length-penalty", type=float, action="append", dest="length_penalties")
    parser.add_argument("--neighbours", type=int, action="append")
    parser.add_argument("--generic", type=float, action="append")
    parser.add_argument("--targets", type=float, nargs=3, default=(0.225, 0.56, 0.85),
                        metavar=("BLEU4", "CIDER", "DISTINCT_SHARE"), help="default: issue 16's")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    length_penalties = args.length_penalties or [0.5, 0.6, 0.75, 0.9, 1.0]
    neighbours, generics = args.neighbours or [20, 30, 60], args.generic or [0.5, 1.0, 1.5, 2.0, 3.0]

    model = Captioner.from_pretrained(args.model)
    if model.memory is None:
        raise SystemExit(f"{args.model}: has no caption memory (captioner memory adds one)")
    images = read_flickr(args.data).split(args.split)
    beams, pooled = decode(model, images, length_penalties, args.batch_size)

    halves = [range(len(images) // 2), range(len(images) // 2, len(images))]
    chosen: dict[Setting, list[str]] = {}
    by_half: dict[Setting, list[tuple[float, float, int]]] = {}  # each half's scores
    for lp in length_penalties:
        words = [[w for _, w in row] for row in beams[lp]]
        zeros = [[0.0] * len(row) for row in words]
        print(f"length penalty {lp:g}, no reranking: {scores(images, [row[0][0] for row in beams[lp]])}", flush=True)
        for k, generic in itertools.product(neighbours, generics):
            ranked = model.memory.rerank_scores(pooled, words, zeros, k, 0.0, generic)
            captions = chosen[lp, k, generic] = [row[int(total.argmax())][0] for row, (_, total) in zip(beams[lp], ranked)]
            by_half[lp, k, generic] = [scores([images[i] for i in half], [captions[i] for i in half]) for half in halves]
            print(f"length penalty {lp:g}, {k} neighbours, generic {generic:g}: {scores(images, captions)}, "
                  f"halves {by_half[lp, k, generic][0]} {by_half[lp, k, generic][1]}", flush=True)

    def margin(setting: Setting, half: int) -> float:
        bleu, cider, distinct = by_half[setting][half]
        return min(bleu / args.targets[0], cider / args.targets[1], distinct / (args.targets[2] * len(halves[half])))

    held_out_captions = [""] * len(images)
    for picked_on, held_out in ((0, 1), (1, 0)):
        best = max(chosen, key=lambda setting: margin(setting, picked_on))
        print(f"chosen on photos {halves[picked_on].start}-{halves[picked_on].stop - 1}: {best}; "
              f"on the other half: {by_half[best][held_out]}")
        for i in halves[held_out]:
            held_out_captions[i] = chosen[best][i]
    print(f"each half captioned with the setting chosen on the other: {scores(images, held_out_captions)}")

if __name__ == "__main__":
    main()
