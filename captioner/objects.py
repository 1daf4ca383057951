"""Open-world captions: what the encoder's classifier recognises, as words a caption says.

:class:`ObjectWords` matches a caption vocabulary to a label set once per model:

* every class gets the most specific word that names it and that the decoder can
  say (in its vocabulary, and not so generic that it names most of the label set:
  "cat" for an Egyptian cat, "dog" for a golden retriever); a class with no such
  word gets one of its own as an *added* token ("koala", "crab" for a king crab) that
  borrows the weights of its nearest in-vocabulary hypernym (Anderson et al. 2017);
* every vocabulary word that names a concept the classifier covers well ("dog",
  "dogs", "puppy" for the 118 dog classes) can be ruled out for an image.

Per batch, :meth:`ObjectWords.constraints` turns class probabilities into lexical
constraints for beam search: the most probable word is required when the classes
it names together pass ``object_threshold`` (``new_word_threshold`` for an added
word, which the decoder never learned; any word naming those classes meets
it: "dog" or "dogs" for a retriever, and so does a close hypernym in a caption the
decoder wrote unguided: "mountain" for an alp); words for concepts below ``absent_threshold``
are banned, and the required word takes over their probability, so it goes where
the decoder would have named the wrong thing. Where no sentence the decoder likes
fits the word, it is left out: the caption with it may score (per word) at most
``object_margin`` times the classifier's confidence above ``object_threshold``
(0 there, 1 at certainty) below the best caption without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .decoding import DecodingOptions
from .decoding.lexical import LexicalConstraints
from .labelset import ClassWord, LabelSet, singular_forms
from .vocab import Vocabulary

# A word names an object only if it is specific: at least MIN_WORD_DEPTH below WordNet's
# root ("bird" 9 and "shirt" 8 are; "device", "furniture" and "vehicle" are not) and
# covering at most MAX_WORD_CLASSES classes.
MIN_WORD_DEPTH = 8
MAX_WORD_CLASSES = 150
# Words for a concept the classifier rules out are banned when it covers at least this
# many classes ("dog": 118); those of every ruled-out concept in the lexicon (10 classes
# or more) can be replaced by the required word.
BAN_MIN_CLASSES = 20
MAX_ALTERNATIVES = 8  # most tokens that can meet one required slot
# A caption the decoder wrote unguided already names a class by a close hypernym that is
# all but a synonym in the label set: at most HYPERNYM_DISTANCE steps above the class,
# covering at most HYPERNYM_CLASSES classes ("mountain" for an alp, "coat" for a fur coat,
# "player" for a ballplayer; not "building" for a library, nor "vehicle" or "animal").
# Guidance then keeps that caption; it never inserts such a word.
HYPERNYM_DISTANCE = 2
HYPERNYM_CLASSES = 3
SHOWN_OBJECTS = 5  # recognised classes reported per image (those at or above SHOWN_PROBABILITY)
SHOWN_PROBABILITY = 0.05


@dataclass(frozen=True)
class RecognizedObject:
    """A class the encoder's classifier sees in the image, and the word captions use for it."""

    label: str
    wnid: str
    probability: float
    word: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "wnid": self.wnid, "probability": self.probability, "word": self.word}


@dataclass(frozen=True)
class ObjectWords:
    """A caption vocabulary matched to a classifier's label set (see the module docstring)."""

    label_set: LabelSet
    tokens: tuple[str, ...]  # the decoder's vocabulary, then the added tokens
    class_words: tuple[str | None, ...]  # per class
    class_tokens: torch.Tensor  # (C,) token id per class, -1 for none
    alternatives: torch.Tensor  # (V+A, S) for a class token: the tokens that name its classes too, -1 pads
    accepted: torch.Tensor  # (V+A, H) the same, close hypernyms included: what an unguided caption may say
    sources: torch.Tensor  # (A,) the decoder token each added token borrows from
    concept_classes: torch.Tensor  # (K, C) 1.0 where a concept covers a class
    concept_tokens: torch.Tensor  # (K, V+A) True where a token names the concept
    bannable: torch.Tensor  # (K,) True for concepts the classifier covers well enough to ban their words
    singular: torch.Tensor  # (V+A,) True for tokens naming a concept in the singular
    nouns: torch.Tensor  # (V+A,) True for nouns (added tokens included)
    plural: torch.Tensor  # (V+A,) True for plurals of the words that name classes ("cats")

    @property
    def vocab_size(self) -> int:
        return len(self.tokens) - self.sources.numel()

    @classmethod
    def match(cls, label_set: LabelSet, vocab: Vocabulary, open_vocabulary: bool = True) -> ObjectWords:
        covered = label_set.classes_under()
        tokens = list(vocab.tokens)
        index = {token: i for i, token in enumerate(tokens)}
        sources: list[int] = []
        class_words: list[str | None] = []
        names: dict[int, set[str]] = {}  # class token -> the specific words that name its classes
        hypernyms: dict[int, set[str]] = {}  # class token -> the close hypernyms that name its classes
        for label, head, words in zip(label_set.labels, label_set.heads, label_set.words):
            specific = [
                w for w in words
                if w.depth >= MIN_WORD_DEPTH and len(covered[w.synset]) <= MAX_WORD_CLASSES and label_set.is_noun(w.word)
            ]
            word = next((w.word for w in specific if w.word in vocab), None)
            if word is None and open_vocabulary:
                word = _new_word(label, head, specific)
                if word not in index:
                    sayable = next((w.word for w in words if w.word in vocab), None)
                    index[word] = len(tokens)
                    tokens.append(word)
                    sources.append(vocab.id(sayable) if sayable else vocab.unk_id)
            class_words.append(word)
            if word is not None:
                names.setdefault(index[word], {word}).update(w.word for w in specific)
                hypernyms.setdefault(index[word], set()).update(
                    w.word for w in words
                    if w.distance <= HYPERNYM_DISTANCE and len(covered[w.synset]) <= HYPERNYM_CLASSES
                    and label_set.is_noun(w.word)
                )
        class_tokens = [-1 if word is None else index[word] for word in class_words]
        nouns = torch.tensor([label_set.is_noun(token) for token in tokens], dtype=torch.bool)
        nouns[len(vocab) :] = True
        named = set().union(*names.values())
        plural = torch.tensor(
            [token not in named and any(form in named for form in singular_forms(token)) for token in tokens],
            dtype=torch.bool,
        )
        return cls(
            label_set=label_set,
            tokens=tuple(tokens),
            class_words=tuple(class_words),
            class_tokens=torch.tensor(class_tokens, dtype=torch.long),
            alternatives=_alternatives(tokens, len(vocab), names, MAX_ALTERNATIVES),
            accepted=_alternatives(tokens, len(vocab), {t: names[t] | hypernyms[t] for t in names}),
            sources=torch.tensor(sources, dtype=torch.long),
            nouns=nouns,
            plural=plural,
            **_concepts(label_set, vocab, len(tokens), covered),
        )

    def recognize(self, probabilities: torch.Tensor) -> list[list[RecognizedObject]]:
        """The most probable classes of each image ``(B, C)``, most probable first."""
        top = probabilities.float().topk(min(SHOWN_OBJECTS, probabilities.size(1)), dim=1)
        results = []
        for values, indices in zip(top.values.tolist(), top.indices.tolist()):
            results.append([
                RecognizedObject(self.label_set.labels[c], self.label_set.wnids[c], round(p, 4), self.class_words[c])
                for rank, (p, c) in enumerate(zip(values, indices))
                if rank == 0 or p >= SHOWN_PROBABILITY
            ])
        return results

    def word_probabilities(self, probabilities: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` class probabilities -> ``(B, V+A)``: the probability of the classes each token names."""
        named = self.class_tokens >= 0
        out = probabilities.new_zeros(probabilities.size(0), len(self.tokens))
        return out.index_add_(1, self.class_tokens[named].to(out.device), probabilities[:, named.to(out.device)])

    def constraints(self, probabilities: torch.Tensor, options: DecodingOptions,
                    ruled_out: torch.Tensor | None = None) -> LexicalConstraints:
        """Lexical constraints for a batch, from its class probabilities ``(B, C)`` and the
        vocabulary words ``(B, V)`` that the photo's evidence rules out (words for people, or
        said only with people, where it has none: :mod:`captioner.evidence`), which are banned
        too but, unlike a ruled-out concept's, not replaced by the required word: "a group of
        people" must not become "a group of pepper"."""
        device = probabilities.device
        probabilities = probabilities.float()
        top = self.word_probabilities(probabilities).topk(options.max_objects, dim=1)
        alternatives = self.alternatives.to(device)[top.indices]  # (B, C, S)
        added = top.indices >= self.vocab_size  # a word the decoder never learned needs more confidence
        threshold = torch.where(added, max(options.new_word_threshold, options.object_threshold), options.object_threshold)
        unsure = (top.values < threshold).unsqueeze(2)
        required = alternatives.masked_fill(unsure, -1)
        accepted = self.accepted.to(device)[top.indices].masked_fill(unsure, -1)  # (B, C, H)
        absent = probabilities @ self.concept_classes.to(device).T < options.absent_threshold  # (B, K)
        concept_tokens = self.concept_tokens.to(device).float()
        replaced = ((absent.float() @ concept_tokens) > 0) & self.singular.to(device)  # (B, V+A)
        banned = ((absent & self.bannable.to(device)).float() @ concept_tokens) > 0  # (B, V+A)
        if ruled_out is not None:
            banned[:, : self.vocab_size] |= ruled_out.to(device)
        banned[:, self.vocab_size :] = True  # added tokens only where required
        flat = required.flatten(1)
        rows = torch.arange(flat.size(0), device=device).unsqueeze(1).expand_as(flat)
        is_required = flat >= 0
        required_mask = torch.zeros_like(banned)
        required_mask[rows[is_required], flat[is_required]] = True
        banned &= ~required_mask
        return LexicalConstraints(
            required=required,
            accepted=accepted,
            banned=banned,
            replaces=_padded_indices(replaced & ~required_mask),
            sources=self.sources.to(device),
            nouns=self.nouns.to(device),
            plural=self.plural.to(device),
            margins=options.object_margin * _confidence_above(top.values.min(dim=1).values, options.object_threshold),
        )


def _alternatives(
    tokens: list[str], vocab_size: int, names: dict[int, set[str]], max_width: int | None = None
) -> torch.Tensor:
    """``(V+A, S)``: for each class token, the vocabulary tokens saying one of its ``names``,
    in any number ("retriever", "retrievers", "dog", "dogs" for a Labrador), at most
    ``max_width`` (the class token first); -1 pads."""
    by_name: dict[str, list[int]] = {}
    for index, token in enumerate(tokens[:vocab_size]):
        for name in {token, *singular_forms(token)}:
            by_name.setdefault(name, []).append(index)
    rows = {token: sorted({token, *(t for name in words for t in by_name.get(name, ()))}) for token, words in names.items()}
    width = max((len(r) for r in rows.values()), default=1)
    width = min(width, max_width) if max_width else width
    table = torch.full((len(tokens), width), -1, dtype=torch.long)
    for row, same in rows.items():
        alternatives = [row] + [t for t in same if t != row][: width - 1]
        table[row, : len(alternatives)] = torch.tensor(alternatives)
    return table


def _concepts(label_set: LabelSet, vocab: Vocabulary, n_tokens: int, covered: dict[str, list[int]]) -> dict:
    """The concepts that vocabulary words name (from the lexicon), as tensors."""
    concepts: dict[str, list[int]] = {}
    singular = torch.zeros(n_tokens, dtype=torch.bool)
    for index, word in enumerate(vocab.tokens):
        synset = label_set.synset_named_by(word)
        if synset is not None and synset in covered:
            concepts.setdefault(synset, []).append(index)
            singular[index] = word in label_set.lexicon
    concept_classes = torch.zeros(len(concepts), len(label_set))
    concept_tokens = torch.zeros(len(concepts), n_tokens, dtype=torch.bool)
    for k, (synset, token_ids) in enumerate(concepts.items()):
        concept_classes[k, covered[synset]] = 1.0
        concept_tokens[k, token_ids] = True
    bannable = torch.tensor([len(covered[synset]) >= BAN_MIN_CLASSES for synset in concepts], dtype=torch.bool)
    return {"concept_classes": concept_classes, "concept_tokens": concept_tokens, "singular": singular,
            "bannable": bannable}


def _new_word(label: str, head: str | None, specific_words: list[ClassWord]) -> str:
    """The word to add for a class: the nearest specific single word ("crab" for a king
    crab), else the head of its compound label ("mask" for an oxygen mask), else the
    label itself."""
    single = next((w.word for w in specific_words if w.word.isalpha()), None)
    return single or head or label.lower()


def _confidence_above(probability: torch.Tensor, threshold: float) -> torch.Tensor:
    """0 at ``threshold``, rising linearly to 1 at certainty (clamped to [0, 1])."""
    return ((probability - threshold) / max(1e-6, 1 - threshold)).clamp(0, 1)


def _padded_indices(mask: torch.Tensor) -> torch.Tensor:
    """``(B, V)`` bool -> ``(B, P)`` the True columns of each row, padded with -1."""
    counts = mask.sum(dim=1)
    width = int(counts.max()) if mask.size(0) else 0
    order = mask.float().argsort(dim=1, descending=True, stable=True)[:, :width]  # True columns first
    return torch.where(torch.arange(width, device=mask.device) < counts.unsqueeze(1), order, -1)


def fix_articles(words: list[str], inserted: set[str]) -> list[str]:
    """"a" before an inserted word that starts with a vowel becomes "an", and the reverse."""
    fixed = list(words)
    for i in range(1, len(fixed)):
        if fixed[i] in inserted and fixed[i - 1] in ("a", "an"):
            fixed[i - 1] = "an" if fixed[i][0] in "aeiou" else "a"
    return fixed
