"""Add a translator's own translations of the training English to the training pairs (sequence-level distillation).

    python scripts/make_distilled_pairs.py --pairs runs/multi30k --base train-names \
        --translator assets/postprocessors/translate-rnn-fr --out-split train-kd1 fr

Writes ``PAIRS/OUT_SPLIT.LANG.tsv``: the pairs of ``PAIRS/BASE.LANG.tsv`` followed by
every English sentence of ``PAIRS/train.LANG.tsv`` paired with the translator's beam
search translation of it (Kim and Rush 2016, "Sequence-level knowledge distillation");
with ``--translator`` given more than once (models sharing their subwords: train the
others with ``--tokenizer-from``), the translation of their ensemble.
A model trained on both learns the people's translations and, beside them, one
consistent way of saying each sentence that a beam search can find. The shipped French
model is its fourth stage fine-tuned on such pairs, with the fourth stage translating
(its model card has the commands, and what a second round gave).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from make_multi30k_pairs import write_pairs

from captioner.text.corpora import CorpusError, read_pairs
from captioner.text.translation import TextTranslator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("language")
    parser.add_argument("--pairs", type=Path, required=True, help="The folder make_multi30k_pairs.py wrote")
    parser.add_argument("--base", default="train", help="Start from PAIRS/BASE.LANG.tsv")
    parser.add_argument("--translator", type=Path, action="append", required=True,
                        help="The translate-rnn model that translates (again for each member of an ensemble)")
    parser.add_argument("--out-split", required=True, help="Write PAIRS/OUT_SPLIT.LANG.tsv")
    parser.add_argument("--beam-size", type=int, default=4)
    args = parser.parse_args()

    translator, *others = translators = [TextTranslator.load(folder) for folder in args.translator]
    for folder, member in zip(args.translator, translators):
        if member.target_language != args.language:
            parser.error(f"{folder}: translates into {member.target_language!r}, not {args.language!r}")
    try:
        base = read_pairs(args.pairs / f"{args.base}.{args.language}.tsv")
        english = [source for source, _ in read_pairs(args.pairs / f"train.{args.language}.tsv")]
    except CorpusError as error:
        parser.error(str(error))
    try:
        translations = [t.text for t in translator.translate(english, beam_size=args.beam_size, ensemble_with=others)]
    except ValueError as error:
        parser.error(str(error))
    write_pairs(args.pairs / f"{args.out_split}.{args.language}.tsv", base + list(zip(english, translations)))


if __name__ == "__main__":
    main()
