"""Train a translate-rnn model on sentence pairs: Multi30k's human translations or Apertium-distilled ones.

    python scripts/make_multi30k_pairs.py --multi30k PATH/TO/multi30k-dataset --out runs/multi30k de
    python scripts/train_translate_rnn.py --pairs runs/multi30k --language de --valid-split val \
        --data multi30k --out assets/postprocessors/translate-rnn-de

    python scripts/train_translate_rnn.py --pairs runs/translation-pairs --language es \
        --out assets/postprocessors/translate-rnn-es

``--pairs DIR`` holds ``train.LANG.tsv`` (or ``--train-split``'s file) (and ``VALID_SPLIT.LANG.tsv`` with
``--valid-split``; without it 2,000 training pairs are held out to pick the epoch).
``--init FOLDER`` continues training a saved model (its tokenizer and sizes), for
example a few epochs at a lower learning rate with ``--average-last`` (checkpoint
averaging). ``--tokenizer-from FOLDER --seed N`` trains a new model from scratch that
shares a saved one's subwords, so that the two can be ensembled. ``--select-by bleu``
keeps the epoch whose beam-4 translations of the validation pairs score the highest
BLEU, not the one of lowest validation loss (for training on a model's translations,
where the loss on people's translations misleads).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from pathlib import Path

import torch

from captioner.text.corpora import read_pairs
from captioner.text.tokenizer import SubwordTokenizer
from captioner.text.training import TextTrainingConfig, train_translator
from captioner.text.translation import TextTranslator, TranslatorConfig

HELD_OUT = 2_000
DATA = {
    "apertium": "Apertium eng-{language} translations of the Flickr8k training captions, the shipped captioner's "
                "captions of the training photos, the Hutto and Gilbert (2014) sentences and ImageNet class words",
    "multi30k": "Multi30k (Elliott et al. 2016) training split: 29,000 Flickr30k descriptions translated by people, "
                "half of the English in caption style (lower-case start, no full stop)",
    "multi30k-copy": "Multi30k (Elliott et al. 2016) training split: 29,000 Flickr30k descriptions translated by "
                     "people, half of the English in caption style (lower-case start, no full stop), plus copies in "
                     "which an everyday object is replaced on both sides by an ImageNet class word",
    "multi30k-names": "Multi30k (Elliott et al. 2016) training split: 29,000 Flickr30k descriptions translated by "
                      "people, half of the English in caption style (lower-case start, no full stop), plus copies in "
                      "which an everyday object is replaced on both sides by an ImageNet class word or a made-up "
                      "word, and the opening person by a made-up name",
}
DATA["multi30k-kd"] = (DATA["multi30k-names"] + "; and the training English again, translated by the previous model "
                       "(sequence-level distillation)")
DATA["multi30k-kd-ensemble"] = (DATA["multi30k-names"] + "; and the training English again, translated by an ensemble "
                                "of an earlier model and one trained independently (sequence-level distillation)")


def validation_bleu(valid: list[tuple[str, str]]) -> Callable[[TextTranslator], float]:
    """A model's corpus BLEU (sacreBLEU, lower-cased) on ``valid``, translated at beam 4."""
    try:
        import sacrebleu
    except ImportError:
        raise SystemExit("--select-by bleu needs sacrebleu: pip install -e '.[bench]'") from None
    sources, references = [s for s, _ in valid], [t for _, t in valid]

    def bleu(translator: TextTranslator) -> float:
        translations = [t.text for t in translator.translate(sources, beam_size=4)]
        return sacrebleu.corpus_bleu(translations, [references], lowercase=True).score

    return bleu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--language", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-split", default="train", help="Train on DIR/TRAIN_SPLIT.LANG.tsv")
    parser.add_argument("--valid-split", help="Pick the epoch on DIR/VALID_SPLIT.LANG.tsv instead of held-out pairs")
    parser.add_argument("--data", choices=sorted(DATA), default="apertium", help="What the pairs are (model card)")
    parser.add_argument("--vocab-size", type=int, default=6_000)
    parser.add_argument("--embed-dim", type=int, default=TranslatorConfig.embed_dim)
    parser.add_argument("--encoder-dim", type=int, default=TranslatorConfig.encoder_dim)
    parser.add_argument("--decoder-dim", type=int, default=TranslatorConfig.decoder_dim)
    parser.add_argument("--dropout", type=float, default=TranslatorConfig.dropout)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-tokens", type=int, default=3_000)
    parser.add_argument("--learning-rate", type=float, default=TextTrainingConfig.learning_rate)
    parser.add_argument("--init", type=Path, help="Continue from this saved translate-rnn model")
    parser.add_argument("--tokenizer-from", type=Path,
                        help="Start from scratch with this saved model's tokenizer (to ensemble with it)")
    parser.add_argument("--seed", type=int, default=TextTrainingConfig.seed)
    parser.add_argument("--average-last", type=int, default=0,
                        help="Also try the mean of the last N epochs' weights; kept if it is better by --select-by")
    parser.add_argument("--select-by", choices=("loss", "bleu"), default="loss",
                        help="Keep the epoch of lowest validation loss, or of highest validation BLEU (sacreBLEU, "
                             "lower-cased, beam 4: for training on a model's own translations)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(min(torch.get_num_threads(), 2) if args.device == "cpu" else torch.get_num_threads())
    pairs = read_pairs(args.pairs / f"{args.train_split}.{args.language}.tsv")
    if args.valid_split:
        train, valid = pairs, read_pairs(args.pairs / f"{args.valid_split}.{args.language}.tsv")
    else:
        random.Random(0).shuffle(pairs)
        train, valid = pairs[HELD_OUT:], pairs[:HELD_OUT]  # held-out pairs pick the epoch; validation sets stay unseen
    start = TextTranslator.load(args.init) if args.init else None
    if start is not None:
        tokenizer, model_config = start.tokenizer, start.model.config
    else:
        tokenizer = (TextTranslator.load(args.tokenizer_from).tokenizer if args.tokenizer_from
                     else SubwordTokenizer.train([text for pair in train for text in pair], args.vocab_size))
        model_config = TranslatorConfig(
            vocab_size=tokenizer.vocab_size, embed_dim=args.embed_dim, encoder_dim=args.encoder_dim,
            decoder_dim=args.decoder_dim, dropout=args.dropout,
        )
    config = TextTrainingConfig(epochs=args.epochs, batch_tokens=args.batch_tokens, learning_rate=args.learning_rate,
                                average_last=args.average_last, device=args.device, seed=args.seed)
    metadata = {
        "source": "en",
        "target": args.language,
        "data": DATA[args.data].format(language=args.language),
        "train_pairs": len(train),
    }
    train_translator(train, valid, tokenizer, model_config, config, start=start.model if start else None,
                     on_best=lambda best: best.save(args.out, metadata=metadata),  # saved after every better epoch
                     score=validation_bleu(valid) if args.select_by == "bleu" else None)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
