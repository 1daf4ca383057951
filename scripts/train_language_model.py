"""Train a model folder's caption language model (``language_model.safetensors``) from caption text.

usage: python scripts/train_language_model.py MODEL --text FILE [--text FILE ...] [--data FLICKR8K]
       [--epochs 4] [--output FOLDER]

Text files are ``PHOTO_ID<TAB>caption`` lines (``../shared/data/caption-text/*.tsv``);
``--data`` adds the training split of a Flickr folder. Each caption is conditioned on
what it says (people, a dog: :func:`captioner.evidence.said_evidence`), in the model's
own vocabulary. A twentieth of the captions is held out and its perplexity printed
after each epoch. The model folder (or ``--output``) gets ``language_model.safetensors``.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from captioner.data.readers import read_flickr
from captioner.labelset import load_label_set
from captioner.language_model import LanguageModelConfig, encode_captions, perplexity, train_language_model
from captioner.model_catalog import resolve_model
from captioner.model_folder import read_config, read_vocab

HELD_OUT = 20  # one caption in this many is held out


def read_captions(text_files: list[Path], flickr: Path | None) -> list[str]:
    captions = [line.split("\t", 1)[1] for path in text_files
                for line in path.read_text(encoding="utf-8").splitlines() if "\t" in line]
    if flickr is not None:
        captions += [caption for image in read_flickr(flickr).split("train") for caption in image.captions]
    return captions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--text", type=Path, action="append", default=[], help="PHOTO_ID<TAB>caption file")
    parser.add_argument("--data", type=Path, default=None, help="Flickr folder whose training captions to add")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", "-o", type=Path, default=None, help="folder to write to (default: the model folder)")
    args = parser.parse_args(argv)

    folder = resolve_model(args.model)
    config = read_config(folder)
    vocab = read_vocab(folder, config.vocab_size)
    label_set = load_label_set(config.encoder_config.classes or "imagenet-1k")
    captions = read_captions(args.text, args.data)
    if not captions:
        parser.error("no captions: give --text files or --data")
    random.Random(args.seed).shuffle(captions)
    tokens, evidence = encode_captions(captions, vocab, label_set)
    held = max(1, len(captions) // HELD_OUT)
    unknown = float((tokens == vocab.unk_id).sum()) / float((tokens > vocab.end_id).sum())
    print(f"{len(captions)} captions ({held} held out); people in {evidence[:, 0].mean():.2f}, a dog in "
          f"{evidence[:, 1].mean():.2f}; {unknown:.3f} of words unknown to the model", flush=True)
    started = time.time()

    def report(epoch: int, model) -> None:
        print(f"epoch {epoch}: held-out perplexity {perplexity(model, tokens[:held], evidence[:held]):.2f} "
              f"({time.time() - started:.0f} s)", flush=True)

    model = train_language_model(tokens[held:], evidence[held:], LanguageModelConfig(vocab_size=len(vocab)),
                                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                 after_epoch=report)
    print(f"wrote {model.save(args.output or folder)}")


if __name__ == "__main__":
    main()
