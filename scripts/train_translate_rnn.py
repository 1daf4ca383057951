"""Train a translate-rnn model on the Apertium-distilled pairs of make_translation_pairs.py.

    python scripts/train_translate_rnn.py --pairs runs/translation-pairs --language es \
        --out assets/postprocessors/translate-rnn-es
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from captioner.text.corpora import read_pairs
from captioner.text.tokenizer import SubwordTokenizer
from captioner.text.training import TextTrainingConfig, train_translator
from captioner.text.translation import TranslatorConfig

HELD_OUT = 2_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--language", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--vocab-size", type=int, default=6_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-tokens", type=int, default=3_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(min(torch.get_num_threads(), 2) if args.device == "cpu" else torch.get_num_threads())
    pairs = read_pairs(args.pairs / f"train.{args.language}.tsv")
    random.Random(0).shuffle(pairs)
    train, valid = pairs[HELD_OUT:], pairs[:HELD_OUT]  # held-out pairs pick the epoch; validation sets stay unseen
    tokenizer = SubwordTokenizer.train([text for pair in train for text in pair], args.vocab_size)
    model_config = TranslatorConfig(vocab_size=tokenizer.vocab_size)
    config = TextTrainingConfig(epochs=args.epochs, batch_tokens=args.batch_tokens, device=args.device)
    metadata = {
        "source": "en",
        "target": args.language,
        "data": "Apertium eng-%s translations of the Flickr8k training captions, the shipped captioner's captions "
                "of the training photos, the Hutto and Gilbert (2014) sentences and ImageNet class words" % args.language,
        "train_pairs": len(train),
    }
    train_translator(train, valid, tokenizer, model_config, config,
                     on_best=lambda best: best.save(args.out, metadata=metadata))  # saved after every better epoch
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
