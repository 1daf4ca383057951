"""The text post-processors against their peers, side by side on this machine's CPU.

    python benchmarks/text_models.py --pairs runs/translation-pairs          # all tables
    python benchmarks/text_models.py --skip-translation                      # sentiment only

1. sentiment-rnn vs VADER (`sentiment`) on the Hutto and Gilbert test split, per
   domain: accuracy and macro-F1 over negative / neutral / positive (gold: mean
   human rating >= 0.5 positive, <= -0.5 negative, else neutral; VADER labels by
   its documented compound thresholds +-0.05).
   1b. The labels each gives the shipped captioner's captions of the Flickr8k
   validation photos (from scripts/make_translation_pairs.py), mostly plain
   descriptions.
   1c. With --imdb: full-length reviews, the test half of Maas et al. (2011) (never
   trained on): accuracy over positive / negative (neutral counts as wrong), all of
   them, those of 500 words or more, and these again lower-cased with punctuation
   spaced out, as tokenised corpora write reviews.
2. Speed: sentences/s on the test split, and one 1,000-word review, each alone.
3. translate-rnn vs Apertium: BLEU and chrF (sacrebleu) against Apertium's own
   translations (what the model was distilled from) on the shipped captioner's
   captions of the Flickr8k validation photos and on the human validation captions
   (make them with scripts/make_translation_pairs.py), greedy and beam 4.
4. Speed: sentences/s, translate-rnn (batched, beam 4) vs one `apertium` process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table, machine  # noqa: E402

from captioner.text.corpora import lower_cased, read_hutto, read_imdb, read_pairs  # noqa: E402
from captioner.text.metrics import accuracy, macro_f1  # noqa: E402
from captioner.text.sentiment import LABELS, SentimentClassifier  # noqa: E402
from captioner.text.shipped import shipped_text_models  # noqa: E402
from captioner.text.translation import TextTranslator  # noqa: E402
from captioner_plugins.sentiment import analyzer, label_for  # noqa: E402
from captioner_plugins.translate import installed_pairs, run_apertium  # noqa: E402

HUTTO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sentiment-hutto2014"


def vader_labels(texts: list[str]) -> list[str]:
    """Labels as the ``sentiment`` post-processor gives them (VADER's compound thresholds)."""
    return [label_for(analyzer().polarity_scores(text)["compound"]) for text in texts]


def timed(function, *args, repeats: int = 2) -> tuple[object, float]:
    """The value and the best wall time of ``repeats`` calls, after a warm-up call on a slice of the input."""
    if args and isinstance(args[0], list):
        function(args[0][:20], *args[1:])
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        value = function(*args)
        best = min(best, time.perf_counter() - started)
    return value, best


def sentiment_tables(hutto: Path, model: Path, report: dict) -> list[Table]:
    test = [s for s in read_hutto(hutto) if s.split == "test"]
    classifier = SentimentClassifier.load(model)
    texts = [s.text for s in test]
    rnn, rnn_s = timed(lambda t: [j.label for j in classifier.judge(t)], texts)
    vader, vader_s = timed(vader_labels, texts)
    quality = Table("1. Sentiment on the test split: accuracy and macro-F1 (negative / neutral / positive)",
                    ["domain", "sentences", "RNN accuracy", "VADER accuracy", "RNN macro-F1", "VADER macro-F1"], [])
    rows = []
    for domain in sorted({s.domain for s in test}) + ["all"]:
        index = [i for i, s in enumerate(test) if domain in ("all", s.domain)]
        gold = [test[i].label for i in index]
        row = {"domain": domain, "sentences": len(index),
               "rnn_accuracy": accuracy(gold, [rnn[i] for i in index]),
               "vader_accuracy": accuracy(gold, [vader[i] for i in index]),
               "rnn_macro_f1": macro_f1(gold, [rnn[i] for i in index], LABELS),
               "vader_macro_f1": macro_f1(gold, [vader[i] for i in index], LABELS)}
        rows.append(row)
        quality.rows.append(list(row.values()))
    review = " ".join(s.text for s in test if s.domain == "movie")
    review = " ".join(review.split()[:1000])
    _, rnn_long = timed(classifier.judge, [review])
    _, vader_long = timed(vader_labels, [review])
    speed = Table("2. Sentiment speed (CPU)", ["input", "RNN", "VADER", "RNN / VADER"], [
        ["test split, sentences/s", len(texts) / rnn_s, len(texts) / vader_s, vader_s / rnn_s],
        ["one 1,000-word review, ms", rnn_long * 1000, vader_long * 1000, vader_long / rnn_long],
    ])
    report["sentiment"] = {"quality": rows, "speed": {"sentences": len(texts), "rnn_per_s": len(texts) / rnn_s,
                                                      "vader_per_s": len(texts) / vader_s,
                                                      "review_words": 1000, "rnn_review_ms": rnn_long * 1000,
                                                      "vader_review_ms": vader_long * 1000}}
    return [quality, speed]


def caption_labels_table(captions: Path, model: Path, report: dict) -> Table:
    """How each labels the captioner's own captions: mostly plain descriptions, so mostly neutral."""
    texts = captions.read_text(encoding="utf-8").splitlines()
    rnn = [j.label for j in SentimentClassifier.load(model).judge(texts)]
    vader = vader_labels(texts)
    table = Table(f"1b. Labels of the captioner's captions of the {len(texts):,} validation photos (share)",
                  ["label", "RNN", "VADER"], [])
    report["sentiment"]["captions"] = {}
    for label in LABELS:
        shares = (rnn.count(label) / len(texts), vader.count(label) / len(texts))
        table.rows.append([label, *shares])
        report["sentiment"]["captions"][label] = {"rnn": shares[0], "vader": shares[1]}
    return table


def review_table(imdb: Path, model: Path, report: dict, long_words: int = 500) -> Table:
    """Accuracy on full-length reviews that take a side: all of the test half, and the long ones."""
    reviews = [r for r in read_imdb(imdb) if r.split == "test"]
    long = [r for r in reviews if len(r.text.split()) >= long_words]
    reviews += [replace(r, text=lower_cased(r.text)) for r in long]
    gold = ["positive" if r.positive else "negative" for r in reviews]
    texts = [r.text for r in reviews]
    rnn = [j.label for j in SentimentClassifier.load(model).judge(texts)]
    vader = vader_labels(texts)
    table = Table("1c. Full-length reviews (IMDb test half): accuracy, neutral counting as wrong",
                  ["reviews", "count", "RNN", "VADER", "RNN neutral", "VADER neutral"], [])
    report["sentiment"]["reviews"] = []
    first = len(reviews) - len(long)
    for name, index in (("all", range(first)),
                        (f">= {long_words} words", [i for i in range(first) if len(texts[i].split()) >= long_words]),
                        (f">= {long_words} words, lower-cased", range(first, len(reviews)))):
        row = {"reviews": name, "count": len(index),
               "rnn_accuracy": accuracy([gold[i] for i in index], [rnn[i] for i in index]),
               "vader_accuracy": accuracy([gold[i] for i in index], [vader[i] for i in index]),
               "rnn_neutral": sum(rnn[i] == "neutral" for i in index) / len(index),
               "vader_neutral": sum(vader[i] == "neutral" for i in index) / len(index)}
        table.rows.append(list(row.values()))
        report["sentiment"]["reviews"].append(row)
    return table


def translation_tables(pairs: Path, models: dict[str, Path], report: dict) -> list[Table]:
    import sacrebleu

    quality = Table("3. translate-rnn against Apertium's translations (BLEU, chrF)",
                    ["language", "set", "sentences", "search", "BLEU", "chrF"], [])
    speed = Table("4. Translation speed (CPU), sentences/s", ["language", "set", "translate-rnn (beam 4)", "Apertium",
                                                                "RNN / Apertium"], [])
    report["translation"] = []
    for language, folder in models.items():
        translator = TextTranslator.load(folder)
        for name in ("valid-captioner", "valid-human"):
            data = read_pairs(pairs / f"{name}.{language}.tsv")
            sources, references = [s for s, _ in data], [t for _, t in data]
            for beam in (1, 4):
                translations, seconds = timed(translator.translate, sources, beam, repeats=1)
                hypotheses = [t.text for t in translations]
                bleu = sacrebleu.corpus_bleu(hypotheses, [references], force=True).score  # both sides as written
                chrf = sacrebleu.corpus_chrf(hypotheses, [references]).score
                quality.rows.append([language, name, len(data), "greedy" if beam == 1 else f"beam {beam}", bleu, chrf])
                entry = {"language": language, "set": name, "sentences": len(data), "beam_size": beam, "bleu": bleu,
                         "chrf": chrf, "rnn_per_s": len(data) / seconds}
                mode = installed_pairs().get(("en", language)) if shutil.which("apertium") else None
                if beam == 4 and mode:  # Apertium as the `translate` post-processor runs it
                    _, apertium_s = timed(run_apertium, mode, sources, repeats=1)
                    entry["apertium_per_s"] = len(data) / apertium_s
                    speed.rows.append([language, name, len(data) / seconds, len(data) / apertium_s,
                                       apertium_s / seconds])
                report["translation"].append(entry)
    return [quality, speed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hutto", type=Path, default=HUTTO)
    parser.add_argument("--sentiment-model", type=Path, default=None, help="Default: the shipped sentiment-rnn.")
    parser.add_argument("--pairs", type=Path, default=Path("runs/translation-pairs"))
    parser.add_argument("--imdb", type=Path, default=None,
                        help="IMDb reviews (SPLIT/{pos,neg}/ID_RATING.txt) to judge whole; see docs/text-models.md.")
    parser.add_argument("--translator", action="append", default=[], metavar="LANG=FOLDER",
                        help="A translate-rnn model to measure (default: the shipped ones).")
    parser.add_argument("--skip-translation", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all CPUs)")
    parser.add_argument("--output", type=Path, default=None, help="Also write the numbers as JSON here.")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {"machine": machine()}
    sentiment_model = args.sentiment_model or shipped_text_models("sentiment-rnn")["sentiment-rnn"]
    tables = sentiment_tables(args.hutto, sentiment_model, report)
    captions = args.pairs / "valid-captioner.en.txt"  # written by scripts/make_translation_pairs.py
    if captions.is_file():
        tables.insert(1, caption_labels_table(captions, sentiment_model, report))
    if args.imdb:
        tables.insert(len(tables) - 1, review_table(args.imdb, sentiment_model, report))
    if not args.skip_translation:
        models = dict(item.split("=", 1) for item in args.translator) if args.translator else None
        folders = {k: Path(v) for k, v in models.items()} if models else shipped_text_models("translate-rnn")
        tables += translation_tables(args.pairs, folders, report)
    for table in tables:
        print(table.render())
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
