"""Two sentiment-rnn models timed alternately in one process, so a busy machine slows both alike.

    python benchmarks/sentiment_speed.py runs/old-model assets/postprocessors/sentiment-rnn --threads 1

Best of ``--repeats`` calls of ``judge`` on the Hutto and Gilbert test split, on the first
caption of each of 1,000 Flickr8k validation photos (one batch), and on one 1,000-word
review (the test split's movie snippets joined).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from captioner.data import read_flickr
from captioner.text.corpora import read_hutto
from captioner.text.sentiment import SentimentClassifier

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    test = [s for s in read_hutto(DATA / "sentiment-hutto2014") if s.split == "test"]
    review = " ".join(" ".join(s.text for s in test if s.domain == "movie").split()[:1000])
    captions = [image.captions[0] for image in read_flickr(DATA / "flickr8k").split("val")][:1000]
    inputs = {"test sentences": [s.text for s in test], "captions": captions, "1,000-word review": [review]}
    models = {str(folder): SentimentClassifier.load(folder) for folder in args.models}
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeats):
        for name, model in models.items():
            for what, texts in inputs.items():
                started = time.perf_counter()
                model.judge(texts)
                best[name, what] = min(best.get((name, what), float("inf")), time.perf_counter() - started)
    for name in models:
        print(name, ", ".join(f"{what}: {len(texts) / best[name, what]:,.0f}/s ({best[name, what] * 1000:.1f} ms)"
                              for what, texts in inputs.items()))


if __name__ == "__main__":
    main()
