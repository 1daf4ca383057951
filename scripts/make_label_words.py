"""Generate ``captioner/resources/imagenet-1k.json``: ImageNet-1k classes and the words that name them.

usage: python scripts/make_label_words.py [--wordnet /usr/share/wordnet] [--output PATH]

Reads WordNet 3.0 (Debian's ``wordnet-base``: ``data.noun``, ``index.noun``,
``noun.exc``, ``cntlist.rev``) and the 1,000 ImageNet-1k class ids that timm ships
(each is a WordNet noun offset, and sorting them gives the class index order).

For every class it writes its label (first lemma), the head of a compound label
that names a hypernym, the words that name it nearest first (its own lemmas and its
hypernyms', each with its distance, synset and depth below "entity", but only lemmas
for which that synset is one of their two most frequent noun senses, so "wind" is
never offered for a wind instrument) and all its ancestors. The lexicon maps single
nouns to the concept their most frequent sense falls under ("puppy" to dog), so a
caption model's vocabulary can be matched against what the classifier recognises.
The noun list holds the words for concrete things used mostly as nouns (SemCor
counts in ``cntlist.rev``), so guidance can keep an object out of a compound ("a
spider fence"). The people list holds the words that say a person is there ("skier",
"crowd", "she"), so a caption can leave people out of a photo with none. Nothing is
edited by hand but the few corrections to WordNet the constants below name: rerun this
script to regenerate the file.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import deque
from pathlib import Path

import timm

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "captioner" / "resources" / "imagenet-1k.json"
SINGLE_WORD = re.compile(r"^[a-z]+$")
ROOT = "00001740"  # entity.n.01
# WordNet's lexicographer files of concrete nouns: animal, artifact, body, food, group,
# location, object, person, plant, substance.
CONCRETE_LEXICOGRAPHER_FILES = {"05", "06", "08", "13", "14", "15", "17", "18", "20", "27"}
# A lexicon word is a noun (not "young") that names a concept directly: its most frequent sense is the concept or
# a kind of it one step down ("puppy" -> dog), and the concept covers enough classes
# for the classifier to confirm or deny it (not "man" -> one class, groom) but not
# so many that it says nothing ("object").
LEXICON_MAX_DISTANCE = 1
# A lemma names a class only through one of its most frequent senses: "helmet" (its
# second sense) for a football helmet, never "wind" (its sixth) for a harmonica.
COMMON_SENSES = 2
LEXICON_CLASSES = (10, 400)
# People: common nouns whose most frequent sense is a person (WordNet's noun.person file,
# "skier") or people ("people"), but no head of a name of a class of things ("boxer",
# "German shepherd"); the groups of people WordNet files with flocks and bands, the
# pronouns, and caption words WordNet lacks or files elsewhere ("person", "women", "biker").
PERSON_FILE = "18"
PEOPLE = "07942152"  # people.n.01
MORE_PEOPLE = ("person", "women", "crowd", "team", "family", "couple", "audience", "he", "she", "him", "his", "her",
               "hers", "himself", "herself", "someone", "somebody", "player", "biker", "climber", "snowboarder",
               "skateboarder", "rollerblader")
# Words whose first WordNet sense is a person but that captions use for things ("a pacifier", "a bunny").
NOT_PEOPLE = ("angel", "bleachers", "bunny", "chased", "coaster", "dive", "hood", "jumper", "mans", "pacifier", "pole",
              "stroller")


def read_synsets(wordnet: Path) -> dict[str, tuple[list[str], list[str], str]]:
    """offset -> (lemmas, hypernym offsets, lexicographer file number) from ``data.noun``."""
    synsets = {}
    for line in (wordnet / "data.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split(" | ")[0].split()
        offset, count = fields[0], int(fields[3], 16)
        lemmas = [re.sub(r"\(.*\)$", "", fields[4 + 2 * i]) for i in range(count)]
        rest = fields[4 + 2 * count :]
        pointers = int(rest[0])
        hypernyms = [
            rest[1 + 4 * i + 1] for i in range(pointers) if rest[1 + 4 * i] in ("@", "@i") and rest[1 + 4 * i + 2] == "n"
        ]
        synsets[offset] = ([lemma.replace("_", " ") for lemma in lemmas], hypernyms, fields[1])
    return synsets


def read_senses(wordnet: Path) -> dict[str, list[str]]:
    """lemma -> offsets of its noun senses, most frequent first, from ``index.noun``."""
    senses = {}
    for line in (wordnet / "index.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split()
        pointer_count = int(fields[3])
        senses[fields[0].replace("_", " ")] = fields[4 + pointer_count + 2 :]
    return senses


def read_lemmas(index: Path) -> set[str]:
    """The lemmas of a WordNet index file (``index.verb``, ...)."""
    return {line.split()[0] for line in index.read_text(encoding="latin-1").splitlines() if not line.startswith(" ")}


def read_irregular_plurals(wordnet: Path) -> dict[str, str]:
    """plural -> singular from ``noun.exc`` (regular plurals are handled at run time)."""
    plurals = {}
    for line in (wordnet / "noun.exc").read_text(encoding="latin-1").splitlines():
        inflected, base = line.split()[:2]
        plurals[inflected] = base
    return plurals


def read_pos_counts(wordnet: Path) -> dict[str, list[int]]:
    """lemma -> [noun, other] tagged-sense counts from ``cntlist.rev`` (SemCor frequencies)."""
    counts: dict[str, list[int]] = {}
    for line in (wordnet / "cntlist.rev").read_text(encoding="latin-1").splitlines():
        sense_key, _, count = line.split()
        lemma, rest = sense_key.split("%", 1)
        counts.setdefault(lemma, [0, 0])[0 if rest[0] == "1" else 1] += int(count)
    return counts


def ancestors_by_distance(offset: str, synsets: dict) -> dict[str, int]:
    """Every hypernym of ``offset`` (itself at 0) with its shortest distance."""
    distance = {offset: 0}
    queue = deque([offset])
    while queue:
        current = queue.popleft()
        for parent in synsets[current][1]:
            if parent not in distance:
                distance[parent] = distance[current] + 1
                queue.append(parent)
    return distance


def build(wordnet: Path) -> dict:
    synsets = read_synsets(wordnet)
    senses = read_senses(wordnet)
    info = Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt"
    wnids = sorted(info.read_text().split())
    assert len(wnids) == 1000, f"expected 1,000 ImageNet classes, found {len(wnids)}"

    ancestries = {wnid: ancestors_by_distance(wnid[1:], synsets) for wnid in wnids}
    coverage: dict[str, int] = {}
    for ancestry in ancestries.values():
        for ancestor in ancestry:
            coverage[ancestor] = coverage.get(ancestor, 0) + 1

    def depth(offset: str) -> int:
        """Shortest distance from the root, "entity" (0); "dog" is 13, "device" 6."""
        return ancestors_by_distance(offset, synsets)[ROOT]

    classes = []
    for wnid, ancestry in ancestries.items():
        # Nearest first; at the same distance the more specific (fewer classes) first.
        ordered = sorted(ancestry, key=lambda o: (ancestry[o], coverage[o], o))
        words, seen = [], set()
        for ancestor in ordered:
            for lemma in synsets[ancestor][0]:
                key = lemma.lower()
                if key not in seen and ancestor in senses.get(key, [])[:COMMON_SENSES]:
                    words.append([key, ancestry[ancestor], f"n{ancestor}", depth(ancestor)])
                    seen.add(key)
        label = synsets[wnid[1:]][0][0]
        # The head of a compound label, when it names a hypernym: "mask" for "oxygen mask"
        # (but nothing for "sea cucumber", which is no cucumber).
        last = label.lower().split()[-1]
        head = last if " " in label and any(last in (x.lower() for x in synsets[o][0]) for o in ordered[1:]) else None
        classes.append({
            "wnid": wnid, "label": label, "head": head, "words": words, "ancestors": [f"n{o}" for o in ordered],
        })

    # Nouns: words for concrete things used as nouns at least twice as often as otherwise
    # ("fence", "people"; not "orange", "light" or "ride"): those that name a class or a
    # hypernym ("tench" is too rare to be counted), those seen as nouns in SemCor, those
    # that are only nouns in WordNet ("playground"), and their irregular plurals ("children").
    pos_counts = read_pos_counts(wordnet)

    def mostly_noun(word: str, min_count: int) -> bool:
        noun, other = pos_counts.get(word, [0, 0])
        return noun >= max(min_count, 2 * other)

    class_words = {word for c in classes for word, *_ in c["words"] if SINGLE_WORD.match(word)}
    other_pos = {lemma for pos in ("verb", "adj", "adv") for lemma in read_lemmas(wordnet / f"index.{pos}")}
    nouns = {word for word in class_words if mostly_noun(word, 0)}
    nouns |= {word for word in pos_counts if mostly_noun(word, 1)}
    nouns |= {word for word in senses if word not in other_pos and word not in pos_counts}  # too rare for SemCor
    nouns = {  # of concrete things: not "while" (a time) or "playing" (an act), which SemCor never tags otherwise
        word for word in nouns
        if SINGLE_WORD.match(word) and word in senses and synsets[senses[word][0]][2] in CONCRETE_LEXICOGRAPHER_FILES
    }
    nouns |= {plural for plural, singular in read_irregular_plurals(wordnet).items() if singular in nouns}
    lexicon = {}
    for lemma, offsets in senses.items():
        offset = offsets[0]
        if not SINGLE_WORD.match(lemma) or offset not in synsets or lemma not in nouns:
            continue
        ancestry = ancestors_by_distance(offset, synsets)
        concepts = sorted((o for o in ancestry if o in coverage), key=lambda o: (ancestry[o], o))
        if concepts and (
            ancestry[concepts[0]] <= LEXICON_MAX_DISTANCE
            and LEXICON_CLASSES[0] <= coverage[concepts[0]] <= LEXICON_CLASSES[1]
        ):
            lexicon[lemma] = f"n{concepts[0]}"
    for plural, singular in read_irregular_plurals(wordnet).items():
        if singular in lexicon and SINGLE_WORD.match(plural) and plural not in lexicon:
            lexicon[plural] = lexicon[singular]
    person = "00007846"  # person.n.01
    named_things = {word.lower().split()[-1] for c in classes if f"n{person}" not in c["ancestors"]
                    for word in (c["label"], *(w for w, *_ in c["words"]))}
    people = {
        lemma for lemma, offsets in senses.items()
        if lemma in nouns and lemma not in named_things and offsets[0] in synsets
        and lemma in synsets[offsets[0]][0]  # a common noun: not "Fields" (W. C. Fields)
        and (synsets[offsets[0]][2] == PERSON_FILE or PEOPLE in ancestors_by_distance(offsets[0], synsets))
    }
    people |= {plural for plural, singular in read_irregular_plurals(wordnet).items() if singular in people}
    people = (people | set(MORE_PEOPLE)) - set(NOT_PEOPLE)
    return {
        "name": "imagenet-1k",
        "source": "WordNet 3.0 (Princeton University) and the ImageNet-1k class ids; made by scripts/make_label_words.py",
        "classes": classes,
        "lexicon": dict(sorted(lexicon.items())),
        "nouns": sorted(nouns),
        "people": sorted(people),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    data = build(args.wordnet)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # One class or lexicon entry per line keeps diffs of a regenerated file readable.
    text = text.replace('},{"wnid"', '},\n{"wnid"').replace('],"lexicon":', '],\n"lexicon":')
    text = text.replace('},"nouns":', '},\n"nouns":').replace('],"people":', '],\n"people":')
    args.output.write_text(text + "\n", encoding="utf-8")
    print(f"{args.output}: {len(data['classes'])} classes, {len(data['lexicon'])} lexicon words")


if __name__ == "__main__":
    main()
