"""translate-rnn against human translations: Multi30k's test sets, BLEU, chrF and METEOR, and speed.

    python scripts/make_multi30k_pairs.py --multi30k PATH/TO/multi30k-dataset --out runs/multi30k de fr
    python benchmarks/multi30k.py --pairs runs/multi30k                    # the shipped de and fr models
    python benchmarks/multi30k.py --pairs runs/multi30k --translator de=runs/m30k-de

BLEU is scored as the WMT multimodal task scored it: on lower-cased, punctuation-
normalised, Moses-tokenised text (``sacremoses``, which rebuilds the dataset's own
``data/task1/tok/*.lc.norm.tok.*`` references exactly), then sacrebleu with no further
tokenisation; "sacreBLEU" is sacrebleu ``-lc`` on the text as written, for
comparison. chrF is on the text as written. METEOR is METEOR 1.5 (the jar that
pycocoevalcap ships; needs java) on the tokenised text with exact and stem matches
only: the task's German and French paraphrase tables are not available here, so it
reads lower than the task's METEOR. Apertium is side by side where Debian has a way
from English: French only through Spanish (``eng-spa`` then ``es-fr``, packages
apertium-eng-spa and apertium-fr-es); there is no English-German pair. Speed: translations/s at beam 4
of the test 2016 English in caption style ("a dog runs through the snow"), and of
``--captions FILE`` (one caption per line, e.g. the shipped captioner's captions of
the Flickr8k validation photos), batched as the post-processor gets them, after a
warm-up, best of two. ``--carry FILE`` (one caption per line, e.g. the shipped
captioner's captions of ImageNet photos, which name objects Multi30k never does)
counts how many of the words that Multi30k's training English never has come through
into the translation (compared lower-cased; German may capitalise them). ``--names``
puts a person's name (:data:`NAMES`, from many languages) in place of the opening
person of each test 2016 sentence that has one ("A man rides a bike" -> "Oksana
rides a bike") and counts the translations that carry the name exactly as written.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Table, machine  # noqa: E402

from captioner.text.corpora import caption_style, read_pairs  # noqa: E402
from captioner.text.shipped import shipped_text_models  # noqa: E402
from captioner.text.translation import TextTranslator  # noqa: E402

NAMES = ("Oksana", "Kaito", "Mireille", "Siobhan", "Dmitri", "Aaliyah", "Thandiwe", "Ngozi", "Haruki", "Zofia",
         "Tariq", "Ximena", "Anneliese", "Bongani", "Eilidh", "Guadalupe", "Hamza", "Ingrid", "Jiho", "Kalani",
         "Leocadia", "Mbali", "Nikolaos", "Oisin", "Priya", "Quetzali", "Radoslav", "Saoirse", "Tenzin", "Ulrike",
         "Vesna", "Wanjiru", "Yerlan", "Zbigniew", "Ayodele", "Chidera", "Farrukh", "Giedre", "Hinemoa", "Ilkka")
OPENING_PERSON = re.compile(r"(a|an) (man|woman|boy|girl|person)\b", flags=re.IGNORECASE)
TEST_SETS = ("test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr")
BEAM_SIZE = 4


def meteor(hypotheses: list[str], references: list[str], language: str) -> float | None:
    """METEOR 1.5, exact and stem modules, lower-cased and normalised; ``None`` without java."""
    if shutil.which("java") is None:
        return None
    from pycocoevalcap.meteor import meteor as meteor_module

    jar = Path(meteor_module.__file__).with_name("meteor-1.5.jar")
    with tempfile.TemporaryDirectory() as folder:
        hyp, ref = Path(folder, "hyp.txt"), Path(folder, "ref.txt")
        hyp.write_text("".join(f"{' '.join(h.split())}\n" for h in hypotheses), encoding="utf-8")
        ref.write_text("".join(f"{' '.join(r.split())}\n" for r in references), encoding="utf-8")
        out = subprocess.run(["java", "-Xmx2G", "-jar", str(jar), str(hyp), str(ref), "-l", language,
                              "-norm", "-lower", "-m", "exact stem"], capture_output=True, text=True, check=True)
    return 100 * float(out.stdout.strip().splitlines()[-1].split()[-1])


def apertium_through_spanish(language: str, texts: list[str]) -> list[str] | None:
    """Apertium English -> Spanish -> ``language``, where both pairs are installed (French); else ``None``."""
    if shutil.which("apertium") is None:
        return None
    from captioner_plugins.translate import installed_pairs, run_apertium

    pairs = installed_pairs()
    if ("en", "es") not in pairs or ("es", language) not in pairs:
        return None
    spanish = run_apertium(pairs[("en", "es")], texts, timeout_s=60 + len(texts))
    return run_apertium(pairs[("es", language)], spanish, timeout_s=60 + len(texts))


def task_tokenised(texts: list[str], language: str) -> list[str]:
    """Lower-cased, normalised and tokenised as the dataset's ``*.lc.norm.tok.*`` files are."""
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    normaliser, tokeniser = MosesPunctNormalizer(lang=language), MosesTokenizer(lang=language)
    return [tokeniser.tokenize(normaliser.normalize(text).lower(), escape=True, return_str=True) for text in texts]


def scores(hypotheses: list[str], references: list[str], language: str) -> dict[str, float | None]:
    import sacrebleu

    hypotheses_tok, references_tok = task_tokenised(hypotheses, language), task_tokenised(references, language)
    return {
        "bleu": sacrebleu.corpus_bleu(hypotheses_tok, [references_tok], tokenize="none", force=True).score,
        "sacrebleu_lc": sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score,
        "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
        "meteor": meteor(hypotheses_tok, references_tok, language),
    }


def carried_over(translator: TextTranslator, captions: list[str], known: set[str]) -> dict:
    """How many of the captions' words unseen in training (``known``) appear in their translations."""
    translations = translator.translate(captions, BEAM_SIZE)
    unseen = carried = 0
    examples = []
    for caption, translation in zip(captions, translations):
        new_words = [w for w in re.findall(r"[a-z]+", caption.lower()) if w not in known]
        found = [w for w in new_words if w in translation.text.lower()]
        unseen, carried = unseen + len(new_words), carried + len(found)
        if new_words and len(examples) < 5:
            examples.append({"caption": caption, "translation": translation.text})
    return {"captions": len(captions), "unseen_words": unseen, "carried": carried, "examples": examples}


def names_carried(translator: TextTranslator, sentences: list[str]) -> dict:
    """How many translations of ``sentences`` with a name (:data:`NAMES`) for their opening person carry the name."""
    named = [(name, name + sentence[opening.end():]) for sentence, name in zip(sentences, itertools.cycle(NAMES))
             if (opening := OPENING_PERSON.match(sentence))]
    translations = translator.translate([sentence for _, sentence in named], BEAM_SIZE)
    carried = [name in re.findall(r"\w+", translation.text) for (name, _), translation in zip(named, translations)]
    examples = [{"source": sentence, "translation": translation.text}
                for (_, sentence), translation, ok in zip(named, translations, carried) if not ok][:5]
    return {"sentences": len(named), "carried": sum(carried), "missed_examples": examples}


def speed(translator: TextTranslator, sources: list[str]) -> float:
    """Translations per second at beam 4, best of two, after a warm-up."""
    translator.translate(sources[:32], BEAM_SIZE)
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        translator.translate(sources, BEAM_SIZE)
        best = min(best, time.perf_counter() - started)
    return len(sources) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=Path("runs/multi30k"), help="Made by make_multi30k_pairs.py")
    parser.add_argument("--translator", action="append", default=[], metavar="LANG=FOLDER",
                        help="A translate-rnn model to measure (default: the shipped de and fr)")
    parser.add_argument("--sets", nargs="+", default=list(TEST_SETS))
    parser.add_argument("--captions", type=Path, default=None, help="Also time these captions, one per line")
    parser.add_argument("--carry", type=Path, default=None,
                        help="Captions (one per line) whose words unseen in training should come through")
    parser.add_argument("--names", action="store_true",
                        help="Count how many names put into test 2016's English come through unchanged")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all CPUs)")
    parser.add_argument("--output", type=Path, default=None, help="Also write the numbers as JSON here.")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    shipped = shipped_text_models("translate-rnn")
    models = ({k: Path(v) for k, v in (item.split("=", 1) for item in args.translator)} if args.translator
              else {language: shipped[language] for language in ("de", "fr") if language in shipped})
    quality = Table(f"Multi30k: BLEU as the task scored it, sacreBLEU -lc, chrF, METEOR (exact+stem); beam {BEAM_SIZE}",
                    ["language", "set", "sentences", "system", "BLEU", "sacreBLEU", "chrF", "METEOR"], [])
    fast = Table(f"Speed (CPU), translations/s at beam {BEAM_SIZE}", ["language", "texts", "count", "translate-rnn"], [])
    inputs = {}  # what is timed: name -> texts (the English of test 2016 is the same in every language's file)
    english = sorted(args.pairs.glob("test_2016_flickr.*.tsv"))
    if english:
        inputs["test 2016 English, caption style"] = [caption_style(s) for s, _ in read_pairs(english[0])]
    if args.captions:
        inputs[args.captions.name] = [line for line in args.captions.read_text(encoding="utf-8").splitlines() if line]
    carry = Table(f"Words Multi30k's training English never has, carried into the translation (beam {BEAM_SIZE})",
                  ["language", "captions", "unseen words", "carried over", "share"], [])
    names = Table(f"Names put into test 2016's English, carried into the translation exactly (beam {BEAM_SIZE})",
                  ["language", "sentences", "carried", "share"], [])
    report: dict = {"machine": machine(), "quality": [], "speed": [], "carried_over": [], "names": []}
    for language, folder in models.items():
        translator = TextTranslator.load(folder)
        for name in args.sets:
            path = args.pairs / f"{name}.{language}.tsv"
            if not path.is_file():
                continue
            data = read_pairs(path)
            sources, references = [s for s, _ in data], [t for _, t in data]
            systems = {"translate-rnn": [t.text for t in translator.translate(sources, BEAM_SIZE)]}
            pivot = apertium_through_spanish(language, sources)
            if pivot is not None:
                systems["Apertium via Spanish"] = pivot
            for system, hypotheses in systems.items():
                row = {"language": language, "set": name, "sentences": len(data), "system": system,
                       **scores(hypotheses, references, language)}
                report["quality"].append(row)
                quality.rows.append(["-" if value is None else value for value in row.values()])
        train = args.pairs / f"train.{language}.tsv"
        if args.carry and train.is_file():
            known = {w for english, _ in read_pairs(train) for w in re.findall(r"[a-z]+", english.lower())}
            captions = [line for line in args.carry.read_text(encoding="utf-8").splitlines() if line]
            counts = {"language": language, **carried_over(translator, captions, known)}
            report["carried_over"].append(counts)
            carry.rows.append([language, counts["captions"], counts["unseen_words"], counts["carried"],
                               f"{counts['carried'] / max(counts['unseen_words'], 1):.0%}"])
        test_2016 = args.pairs / f"test_2016_flickr.{language}.tsv"
        if args.names and test_2016.is_file():
            counts = {"language": language, **names_carried(translator, [s for s, _ in read_pairs(test_2016)])}
            report["names"].append(counts)
            names.rows.append([language, counts["sentences"], counts["carried"],
                               f"{counts['carried'] / max(counts['sentences'], 1):.0%}"])
        for name, texts in inputs.items():
            per_s = speed(translator, texts)
            report["speed"].append({"language": language, "texts": name, "count": len(texts), "per_s": per_s})
            fast.rows.append([language, name, len(texts), per_s])
    for table in (quality, carry, names, fast):
        if table.rows:
            print(table.render())
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
