"""Measure a quality lever: a model's n-best reranked by consensus with its nearest training images' captions.

usage: python scripts/rerank_by_neighbours.py --data ../shared/data/flickr8k [-m MODEL] [--beam 5]
           [--neighbours 15,30,60] [--weights 0,0.5,1]

Consensus reranking (Devlin et al. 2015, "Exploring Nearest Neighbor Approaches for
Image Captioning"): every validation image is captioned with the model's default
decoding but beam size and n-best ``--beam``; each candidate is scored by CIDEr-D
(pycocoevalcap's scorer) against the captions of the k training images whose pooled
encoder features are nearest by cosine, plus a weight times the model's own score,
and the best-scoring candidate is kept. Guidance is unaffected: the candidates of an
image all come from the same constraint group, so they name the same object.

k and the weight are chosen on one half of the validation images and applied to the
other half, both ways, so the score reported for the whole set was not tuned on the
images it is scored on. This measures the lever; captioner does not rerank yet.
"""

from __future__ import annotations

import argparse
from itertools import product

import torch
from pycocoevalcap.cider.cider_scorer import CiderScorer

from captioner import Captioner
from captioner.batch_loader import BatchLoader
from captioner.data.readers import CaptionedImage, read_flickr
from captioner.evaluation import score_dataset_captions
from captioner.vocab import tokenize


def encode_and_caption(captioner: Captioner, images: list[CaptionedImage], beam: int | None,
                       ) -> tuple[torch.Tensor, list[list[tuple[str, float]]]]:
    """Unit-length pooled features ``(N, D)`` and, if ``beam``, each image's n-best as (text, score)."""
    options = captioner.decoding.updated(beam_size=beam, n_best=beam) if beam else None
    pooled, candidates = [], []
    with BatchLoader(captioner.encoder_config, captioner.device) as loader:
        for batch in loader.batches([str(image.path) for image in images], 64):
            features = captioner.encode(batch.pixels)
            pooled.append(torch.nn.functional.normalize(features.pooled.float(), dim=1))
            if options is not None:
                candidates += [[(c.text, c.score) for c in row] for row, _, _ in captioner.describe(features, options)]
    return torch.cat(pooled), candidates


def consensus_scores(candidates: list[list[tuple[str, float]]], neighbours: list[list[int]],
                     train: list[CaptionedImage]) -> list[list[float]]:
    """CIDEr-D of every candidate against its image's neighbours' captions (one scorer for all images)."""
    scorer = CiderScorer(n=4, sigma=6.0)
    for row, near in zip(candidates, neighbours):
        references = [" ".join(tokenize(caption)) for j in near for caption in train[j].captions]
        for text, _ in row:
            scorer += (text, references)
    _, flat = scorer.compute_score()
    scores, start = [], 0
    for row in candidates:
        scores.append([float(s) for s in flat[start : start + len(row)]])
        start += len(row)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Flickr8k folder (train and val splits)")
    parser.add_argument("-m", "--model", default=None, help="Model folder or name (default: the shipped model)")
    parser.add_argument("--beam", type=int, default=5, help="Beam size and n-best to rerank")
    parser.add_argument("--neighbours", default="15,30,60", help="Values of k to try")
    parser.add_argument("--weights", default="0,0.5,1", help="Weights of the model's own score to try")
    args = parser.parse_args()
    data = read_flickr(args.data)
    train, val = data.split("train"), data.split("val")
    captioner = Captioner.from_pretrained(args.model)
    train_pooled, _ = encode_and_caption(captioner, train, None)
    val_pooled, candidates = encode_and_caption(captioner, val, args.beam)
    ks = [int(k) for k in args.neighbours.split(",")]
    weights = [float(w) for w in args.weights.split(",")]
    nearest = (val_pooled @ train_pooled.T).topk(max(ks), dim=1).indices.tolist()
    consensus = {k: consensus_scores(candidates, [row[:k] for row in nearest], train) for k in ks}

    def chosen(k: int, weight: float, rows: range) -> list[str]:
        return [candidates[i][max(range(len(candidates[i])),
                                  key=lambda j: consensus[k][i][j] + weight * candidates[i][j][1])][0] for i in rows]

    def show(name: str, images: list[CaptionedImage], captions: list[str]) -> None:
        scores = score_dataset_captions(images, captions, metrics=("BLEU", "CIDEr")).values
        print(f"| {name} | {scores['BLEU-4']:.4f} | {scores['CIDEr']:.4f} | {scores['distinct_captions']:.0f} |",
              flush=True)

    def tuned(rows: range) -> tuple[int, float]:
        """The (k, weight) with the best CIDEr on the validation images ``rows``."""
        images = [val[i] for i in rows]
        return max(product(ks, weights), key=lambda setting: score_dataset_captions(
            images, chosen(*setting, rows), metrics=("CIDEr",)).values["CIDEr"])

    half = len(val) // 2
    halves = [range(0, half), range(half, len(val))]
    print("| reranking | BLEU-4 | CIDEr | distinct |\n| --- | --- | --- | --- |")
    show(f"none: beam {args.beam}, best first", val, [row[0][0] for row in candidates])
    picks = [(tuned(halves[0]), halves[1]), (tuned(halves[1]), halves[0])]
    merged = {i: caption for (k, weight), rows in picks for i, caption in zip(rows, chosen(k, weight, rows))}
    (k1, w1), (k2, w2) = (setting for setting, _ in picks)
    show(f"consensus (second half: k={k1}, weight={w1} from the first; first half: k={k2}, weight={w2} from the second)",
         val, [merged[i] for i in range(len(val))])


if __name__ == "__main__":
    main()
