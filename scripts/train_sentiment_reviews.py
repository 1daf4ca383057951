"""Give the sentiment-rnn model a review head, trained on full-length IMDb reviews (Maas et al., 2011).

    python scripts/train_sentiment_reviews.py --model assets/postprocessors/sentiment-rnn \
        --imdb runs/imdb --out assets/postprocessors/sentiment-rnn

The sentence model is frozen (its weights are saved unchanged): it reads each sentence
of a review, and the head learns from the reviewers' sides which sentences carry the
verdict. ``--imdb`` is a folder of ``SPLIT/{pos,neg}/ID_RATING.txt`` (docs/text-models.md
says how to make it); its ``test`` folder is never read here. The neutral band for
reviews is calibrated on the validation reviews. Each review is also read lower-cased
with its punctuation spaced out ("good , but dull ."), as some review corpora are
distributed, so that the head knows such text too.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

import torch

from captioner.text.corpora import lower_cased, read_imdb
from captioner.text.review import ReviewReading, calibrate_band
from captioner.text.sentiment import SentimentClassifier, SentimentRNN
from captioner.text.training import ReviewTrainingConfig, review_logits, train_review_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="The trained sentence model's folder.")
    parser.add_argument("--imdb", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--bag", type=int, default=128, help="Size of the head's subword embedding.")
    parser.add_argument("--review-words", type=int, default=100, help="Texts of more words are read as reviews.")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--features", type=Path, default=None,
                        help="Cache of the sentence judgements (made on the first run, read on later ones).")
    args = parser.parse_args()

    torch.set_num_threads(1)
    sentences = SentimentClassifier.load(args.model)
    reviews = [r for r in read_imdb(args.imdb) if r.split != "test"]
    reviews += [replace(r, text=lower_cased(r.text)) for r in reviews]
    if args.features is not None and args.features.is_file():
        readings = [ReviewReading(f.float(), ids) for f, ids in torch.load(args.features)]
    else:
        started = time.perf_counter()
        readings = sentences.review_readings([r.text for r in reviews])
        print(f"read {len(reviews):,} reviews sentence by sentence ({time.perf_counter() - started:.0f} s)")
        if args.features is not None:
            torch.save([(r.sentences.half(), r.subwords) for r in readings], args.features)
    train = [(reading, r.positive) for reading, r in zip(readings, reviews) if r.split == "train"]
    valid = [(reading, r.positive) for reading, r in zip(readings, reviews) if r.split == "valid"]

    config = replace(sentences.model.config, review_hidden=args.hidden, review_bag=args.bag,
                     review_words=args.review_words, review_band=0.0)
    torch.manual_seed(0)
    model = SentimentRNN(config)
    sentence_weights = {k: v for k, v in sentences.model.state_dict().items() if not k.startswith("review.")}
    missing, _ = model.load_state_dict(sentence_weights, strict=False)  # a head already there is trained afresh
    assert all(name.startswith("review.") for name in missing)
    assert model.review is not None
    accuracy = train_review_head(model.review, train, valid, ReviewTrainingConfig(epochs=args.epochs))
    compounds = [math.tanh(logit / 2) for logit in review_logits(model.review, valid)]
    band = calibrate_band(compounds, [positive for _, positive in valid])
    model.config = replace(config, review_band=band)
    print(f"valid accuracy {accuracy:.4f}; neutral band for reviews |compound| < {band:.2f}")
    metadata = {
        **sentences.metadata,
        "review_data": "Maas et al. (2011) Large Movie Review Dataset: IMDb reviews of the training half, "
                       "crc32('pos/ID') % 10: 0 valid, else train",
        "train_reviews": len(train),
        "valid_reviews": len(valid),
        "valid_review_accuracy": round(accuracy, 4),
    }
    SentimentClassifier(model, sentences.tokenizer).save(args.out, metadata=metadata)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
