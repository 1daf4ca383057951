"""Train the sentiment-rnn post-processor's model on the Hutto and Gilbert (2014) sentences.

    python scripts/train_sentiment_rnn.py --hutto ../shared/data/sentiment-hutto2014 \
        --flickr8k ../shared/data/flickr8k --out assets/postprocessors/sentiment-rnn

Split: a fixed hash of domain and sentence id puts 80% in train, 10% in valid (epoch
selection) and 10% in test (reported by benchmarks/text_models.py, never seen here).
With --flickr8k, plain training captions join the training data as neutral.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from captioner.data import read_flickr
from captioner.text.corpora import NEUTRAL_BAND, RatedSentence, read_hutto
from captioner.text.sentiment import LABELS, SentimentConfig
from captioner.text.tokenizer import SubwordTokenizer
from captioner.text.training import TextTrainingConfig, train_sentiment
from captioner_plugins.sentiment import analyzer


def neutral_captions(flickr8k: Path, count: int) -> list[RatedSentence]:
    """``count`` Flickr8k training captions with no word in VADER's lexicon, as neutral examples.

    Hutto and Gilbert's sentences are all opinions; without plain descriptions the
    model reads sentiment into any caption ("held by a stick": negative).
    """
    captions = sorted({" ".join(c.split()) for image in read_flickr(flickr8k).split("train") for c in image.captions})
    plain = [c for c in captions if analyzer().polarity_scores(c)["compound"] == 0.0]
    chosen = random.Random(0).sample(plain, min(count, len(plain)))
    return [RatedSentence("captions", str(i), 0.0, text) for i, text in enumerate(chosen)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hutto", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--flickr8k", type=Path, default=None,
                        help="Add plain Flickr8k training captions (no VADER-lexicon word) as neutral examples.")
    parser.add_argument("--neutral-captions", type=int, default=4_000)
    parser.add_argument("--vocab-size", type=int, default=4_000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--no-balance", action="store_true", help="Do not weight classes by 1 / frequency.")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(min(torch.get_num_threads(), 2) if args.device == "cpu" else torch.get_num_threads())
    sentences = read_hutto(args.hutto)
    train = [s for s in sentences if s.split == "train"]
    valid = [s for s in sentences if s.split == "valid"]
    neutral = neutral_captions(args.flickr8k, args.neutral_captions) if args.flickr8k else []
    train += neutral
    tokenizer = SubwordTokenizer.train([s.text for s in train], args.vocab_size)
    model_config = SentimentConfig(vocab_size=tokenizer.vocab_size, dropout=args.dropout)
    config = TextTrainingConfig(epochs=args.epochs, device=args.device, balance_classes=not args.no_balance)
    metadata = {
        "language": "en",
        "labels": list(LABELS),
        "data": "Hutto and Gilbert (2014): 23,703 human-rated sentences (tweets, movie and product reviews, editorials)"
                + (", plus plain Flickr8k training captions as neutral" if neutral else ""),
        "split": "crc32('domain/id') % 10: 0 test, 1 valid, else train",
        "label_rule": f"mean rating >= {NEUTRAL_BAND}: positive, <= -{NEUTRAL_BAND}: negative, else neutral",
        "train_sentences": len(train),
        "neutral_captions": len(neutral),
    }
    train_sentiment(train, valid, tokenizer, model_config, config,
                    on_best=lambda best: best.save(args.out, metadata=metadata))  # saved after every better epoch
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
