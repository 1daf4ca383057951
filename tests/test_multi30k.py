"""Making Multi30k pairs and training a translator on them, on a tiny Multi30k-shaped folder."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from captioner.text.corpora import read_pairs
from captioner.text.translation import TextTranslator

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
from make_multi30k_pairs import copy_noun_pairs, made_up_pairs, made_up_words, name_pairs  # noqa: E402

ENGLISH = ["A dog runs.", "A cat sleeps.", "Two dogs run.", "A red cat sleeps.", "A dog sleeps.", "Two cats run."]
GERMAN = ["Ein Hund rennt.", "Eine Katze schläft.", "Zwei Hunde rennen.", "Eine rote Katze schläft.",
          "Ein Hund schläft.", "Zwei Katzen rennen."]


def write_multi30k(root: Path) -> Path:
    raw = root / "data" / "task1" / "raw"
    raw.mkdir(parents=True)
    for split, count in (("train", 6), ("val", 2), ("test_2016_flickr", 2)):
        for language, lines in (("en", ENGLISH), ("de", GERMAN)):
            with gzip.open(raw / f"{split}.{language}.gz", "wt", encoding="utf-8") as file:
                file.write("".join(f"{line}\n" for line in (lines * 20)[: count * (10 if split == "train" else 1)]))
    return root


def test_pairs_are_written_per_split_with_half_the_training_english_in_caption_style(tmp_path):
    multi30k = write_multi30k(tmp_path / "multi30k")
    done = subprocess.run([sys.executable, str(SCRIPTS / "make_multi30k_pairs.py"), "--multi30k", str(multi30k),
                           "--out", str(tmp_path / "pairs"), "de", "fr"], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["train.de.tsv: 60 pairs", "val.de.tsv: 2 pairs",
                                        "test_2016_flickr.de.tsv: 2 pairs"]  # no French files: nothing for fr
    train = read_pairs(tmp_path / "pairs" / "train.de.tsv")
    assert [german for _, german in train] == (GERMAN * 10)[:60]
    styled = {english for english, _ in train} - set(ENGLISH)
    assert styled and styled < {"a dog runs", "a cat sleeps", "two dogs run", "a red cat sleeps", "a dog sleeps",
                                "two cats run"}  # lower-case start, no full stop, for some of the sentences
    assert read_pairs(tmp_path / "pairs" / "val.de.tsv") == list(zip(ENGLISH[:2], GERMAN[:2]))  # left as written


def test_copy_pairs_carry_a_class_word_over_where_an_object_is_named_once_on_each_side():
    pairs = [("A dog runs.", "Ein Hund rennt."), ("Two dogs run.", "Zwei Hunde rennen."),
             ("A dog and a dog.", "Ein Hund und ein Hund."), ("a man rides a horse", "Ein Mann reitet ein Pferd.")]
    made = copy_noun_pairs(pairs, "de", copies=2)
    assert len(made) == 4  # two for each usable pair: "dogs"/"Hunde" is no anchor, and two dogs are ambiguous
    for (english, german), (source, _) in zip(made, [pairs[0], pairs[0], pairs[3], pairs[3]]):
        [word] = [w for w in english.split() if w not in source.split()]
        assert word.strip(".") in german.replace(".", "").split() and "Hund" not in german and "Pferd" not in german
    assert made[0][0] != made[1][0]  # two different words
    french = copy_noun_pairs([("A dog runs.", "Un chien court.")], "fr", copies=1)
    assert len(french) == 1 and french[0][0].split()[1] == french[0][1].split()[1]


def test_made_up_words_are_new_and_differ():
    known = {"zorblax"}
    words = made_up_words(200, known, seed=3)
    assert len(set(words)) == 200 and not known & set(words)
    assert all(word.isalpha() and word.islower() and len(word) >= 2 for word in words)
    assert words == made_up_words(200, known, seed=3)  # seeded


def test_name_pairs_put_one_made_up_name_for_the_opening_person_on_both_sides():
    pairs = [("A man rides a bike.", "Ein Mann fährt Fahrrad."), ("a woman sings", "Eine Frau singt."),
             ("A dog runs.", "Ein Hund rennt."), ("A man rides.", "Der Mann fährt."), ("A mango.", "Eine Mango.")]
    made = name_pairs(pairs, "de", ["zorblax", "mireth"])
    assert len(made) == 2  # no person, a person the translator wrote otherwise, and "mango" are left alone
    for (english, german), rest in zip(made, [(" rides a bike.", " fährt Fahrrad."), (" sings", " singt.")]):
        name = english.split()[0]
        assert name in ("Zorblax", "Mireth") and (english, german) == (name + rest[0], name + rest[1])
    french = name_pairs([("A girl jumps.", "Une fille saute.")], "fr", ["quenthar"])
    assert french == [("Quenthar jumps.", "Quenthar saute.")]


def test_made_up_pairs_copy_names_and_objects_the_training_english_never_has():
    pairs = [("A man rides a horse.", "Ein Mann reitet ein Pferd."), ("A dog runs.", "Ein Hund rennt.")]
    made = made_up_pairs(pairs, "de")
    assert len(made) == 3  # a name for the man, a word for each usable object
    english_words = {w.strip(".").lower() for source, _ in pairs for w in source.split()}
    for english, german in made:
        [new] = [w.strip(".") for w in english.split() if w.strip(".").lower() not in english_words]
        assert new in german.replace(".", "").split()


def test_a_missing_language_file_is_named(tmp_path):
    multi30k = write_multi30k(tmp_path / "multi30k")
    (multi30k / "data" / "task1" / "raw" / "val.de.gz").write_bytes(gzip.compress(b"Ein Hund.\n"))
    done = subprocess.run([sys.executable, str(SCRIPTS / "make_multi30k_pairs.py"), "--multi30k", str(multi30k),
                           "--out", str(tmp_path / "pairs"), "de"], capture_output=True, text=True)
    assert done.returncode != 0 and "val: 2 English lines but 1 de lines" in done.stderr


def test_training_picks_the_epoch_on_the_given_split_and_says_what_the_data_is(tmp_path):
    multi30k = write_multi30k(tmp_path / "multi30k")
    subprocess.run([sys.executable, str(SCRIPTS / "make_multi30k_pairs.py"), "--multi30k", str(multi30k),
                    "--out", str(tmp_path / "pairs"), "de"], capture_output=True, check=True)
    subprocess.run([sys.executable, str(SCRIPTS / "train_translate_rnn.py"), "--pairs", str(tmp_path / "pairs"),
                    "--language", "de", "--valid-split", "val", "--data", "multi30k", "--vocab-size", "300",
                    "--embed-dim", "16", "--encoder-dim", "16", "--decoder-dim", "32", "--epochs", "2",
                    "--out", str(tmp_path / "model")], capture_output=True, text=True, check=True)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["hparams"]["decoder_dim"] == 32 and config["metadata"]["target"] == "de"
    assert config["metadata"]["train_pairs"] == 60 and config["metadata"]["data"].startswith("Multi30k")
    translator = TextTranslator.load(tmp_path / "model")
    assert translator.target_language == "de" and len(translator.translate(["a dog runs"])) == 1
    continued = subprocess.run(
        [sys.executable, str(SCRIPTS / "train_translate_rnn.py"), "--pairs", str(tmp_path / "pairs"), "--language", "de",
         "--valid-split", "val", "--data", "multi30k", "--init", str(tmp_path / "model"), "--epochs", "2",
         "--average-last", "2", "--learning-rate", "1e-3", "--out", str(tmp_path / "continued")],
        capture_output=True, text=True, check=True)
    assert continued.stdout.startswith("start: valid loss ") and "mean of the last 2 epochs, valid loss" in continued.stdout
    again = TextTranslator.load(tmp_path / "continued")  # the start's sizes and subwords, whatever the defaults
    assert again.model.config == translator.model.config and again.tokenizer.vocab_size == translator.tokenizer.vocab_size


def test_distilled_pairs_follow_the_base_pairs_with_the_translators_own_translations(tmp_path):
    multi30k = write_multi30k(tmp_path / "multi30k")
    pairs = tmp_path / "pairs"
    subprocess.run([sys.executable, str(SCRIPTS / "make_multi30k_pairs.py"), "--multi30k", str(multi30k),
                    "--out", str(pairs), "de"], capture_output=True, check=True)
    subprocess.run([sys.executable, str(SCRIPTS / "train_translate_rnn.py"), "--pairs", str(pairs), "--language", "de",
                    "--valid-split", "val", "--data", "multi30k", "--vocab-size", "300", "--embed-dim", "16",
                    "--encoder-dim", "16", "--decoder-dim", "32", "--epochs", "1", "--out", str(tmp_path / "model")],
                   capture_output=True, check=True)
    base = [("A koala sleeps.", "Ein koala schläft.")]
    (pairs / "little.de.tsv").write_text("".join(f"{english}\t{german}\n" for english, german in base))
    command = [sys.executable, str(SCRIPTS / "make_distilled_pairs.py"), "--pairs", str(pairs), "--base", "little",
               "--translator", str(tmp_path / "model"), "--out-split", "little-kd"]
    done = subprocess.run([*command, "de"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "little-kd.de.tsv: 61 pairs"
    made = read_pairs(pairs / "little-kd.de.tsv")
    english = [source for source, _ in read_pairs(pairs / "train.de.tsv")]
    translations = [t.text for t in TextTranslator.load(tmp_path / "model").translate(english)]
    assert made == base + list(zip(english, translations))
    wrong = subprocess.run([*command, "fr"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "translates into 'de', not 'fr'" in wrong.stderr
    subprocess.run([sys.executable, str(SCRIPTS / "train_translate_rnn.py"), "--pairs", str(pairs), "--language", "de",
                    "--valid-split", "val", "--data", "multi30k", "--tokenizer-from", str(tmp_path / "model"),
                    "--seed", "1", "--embed-dim", "16", "--encoder-dim", "16", "--decoder-dim", "32", "--epochs", "1",
                    "--out", str(tmp_path / "second")], capture_output=True, check=True)
    done = subprocess.run([*command, "--translator", str(tmp_path / "second"), "--out-split", "little-ens", "de"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "little-ens.de.tsv: 61 pairs"
    first, second = TextTranslator.load(tmp_path / "model"), TextTranslator.load(tmp_path / "second")
    assert second.tokenizer.to_str() == first.tokenizer.to_str()
    ensembled = [t.text for t in first.translate(english, ensemble_with=[second])]
    assert read_pairs(pairs / "little-ens.de.tsv") == base + list(zip(english, ensembled))
    elsewhere = [("nowhere" if argument == "little" else argument) for argument in command]
    missing = subprocess.run([*elsewhere, "de"], capture_output=True, text=True)
    assert missing.returncode == 2 and "nowhere.de.tsv: missing" in missing.stderr
