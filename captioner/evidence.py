"""Evidence of what a photo holds that the caption must respect: people, and a dog.

The decoder's prior comes from Flickr8k, where almost every photo has a person or a
dog, so it writes "a man in a blue shirt" in front of a guillotine. Evidence says
whether a caption may have them:

* **people**: a :class:`PeopleDetector`, a logistic regression on the encoder's
  pooled features and class probabilities, trained on Flickr8k's photos with what
  their five captions say (the share that mention a person), which counts a photo
  unlike any training photo as less likely to have people (``captioner evidence``
  trains it into a model folder as ``evidence.safetensors``);
* **dog**: the classifier's probability of the dog classes.

A caption's own evidence (:func:`said_evidence`) is what it says: the words of
people (``LabelSet.people``) and of dogs. The caption language model learns to word
captions given each, and which words are said only with people or dogs
(:mod:`captioner.language_model`); with a photo's evidence, guidance bans those it
rules out and fuses the language model into the beam (``Captioner.describe``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .atomic import atomic_write_bytes
from .errors import ModelLoadError, describe_exception
from .labelset import LabelSet
from .vocab import tokenize

EVIDENCE_FILE = "evidence.safetensors"
# The regression's L2 penalty, chosen on the development photos labelled by eye (a weaker
# one fits Flickr8k better and carries worse to photos of other things).
WEIGHT_DECAY = 0.01
# Familiarity: the mean similarity to the NEIGHBOURS nearest of REFERENCE_PHOTOS training
# photos, weighted by FAMILIARITY_WEIGHT in the detector's logit (chosen on the same photos:
# it takes the detector's AUC there from 0.875 to 0.921).
REFERENCE_PHOTOS = 1000
NEIGHBOURS = 5
FAMILIARITY_WEIGHT = 10.0
UNFAMILIAR_FROM, UNFAMILIAR_AT = 0.07, 0.17
DOG = "n02084071"  # dog.n.01: "dog", "dogs", "puppy" and the 118 breeds


def said_evidence(words: Sequence[str], label_set: LabelSet) -> tuple[float, float]:
    """(people, dog) that a caption's words say: 1.0 where it names them."""
    people = any(label_set.names_people(word) for word in words)
    dog = any(label_set.synset_named_by(word) == DOG for word in words)
    return float(people), float(dog)


def people_targets(captions: Sequence[Sequence[str]], label_set: LabelSet) -> torch.Tensor:
    """``(N,)`` per photo, the share of its captions that name people."""
    return torch.tensor([sum(said_evidence(tokenize(c), label_set)[0] for c in photo) / len(photo) for photo in captions])


def dog_probability(probabilities: torch.Tensor, label_set: LabelSet) -> torch.Tensor:
    """``(B, C)`` class probabilities -> ``(B,)`` the probability that the photo shows a dog."""
    dogs = torch.tensor([DOG in ancestors for ancestors in label_set.ancestors], device=probabilities.device)
    return probabilities[:, dogs].sum(dim=1)


class PeopleDetector(nn.Module):
    """``P(people)`` from pooled features ``(B, D)`` and class probabilities ``(B, C)``.

    A logistic regression learned on Flickr8k, plus ``familiarity_weight`` times how much
    more familiar the photo is than a training photo: its mean cosine similarity to its
    ``NEIGHBOURS`` nearest ``references`` (training photos' unit-length features), minus
    the training photos' own mean. Flickr8k's photos nearly all have people or dogs, so
    a photo unlike all of them (a guillotine, an espresso) is one the regression knows
    little about, and usually one without people.
    """

    references: torch.Tensor  # (N, D) buffers, for type checkers
    usual_familiarity: torch.Tensor

    def __init__(self, feature_dim: int, classes: int, references: int = REFERENCE_PHOTOS,
                 familiarity_weight: float = FAMILIARITY_WEIGHT) -> None:
        super().__init__()
        self.feature_dim, self.classes, self.familiarity_weight = feature_dim, classes, familiarity_weight
        self.linear = nn.Linear(feature_dim + classes, 1)
        self.register_buffer("references", torch.zeros(references, feature_dim))  # (N, D) unit length
        self.register_buffer("usual_familiarity", torch.zeros(()))

    def familiarity(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B,)`` the mean cosine similarity of each photo to its nearest reference photos."""
        similarity = nn.functional.normalize(pooled.float(), dim=1) @ self.references.T  # (B, N)
        return similarity.topk(min(NEIGHBOURS, similarity.size(1)), dim=1).values.mean(dim=1)

    def unfamiliarity(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B,)`` in [0, 1]: 0 for a photo about as familiar as a training photo (at most
        ``UNFAMILIAR_FROM`` below the usual familiarity), rising to 1 at ``UNFAMILIAR_AT``
        below it (91% of Flickr8k's validation photos are at 0; the ImageNet sample's median is 0.89)."""
        below = self.usual_familiarity - self.familiarity(pooled)
        return ((below - UNFAMILIAR_FROM) / (UNFAMILIAR_AT - UNFAMILIAR_FROM)).clamp(0, 1)

    def forward(self, pooled: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,)``."""
        learned = self.linear(torch.cat([pooled.float(), probabilities.float()], dim=1)).squeeze(1)
        return learned + self.familiarity_weight * (self.familiarity(pooled) - self.usual_familiarity)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / EVIDENCE_FILE
        tensors = {k: v.detach().to(torch.float16 if k == "references" else torch.float32).contiguous().cpu()
                   for k, v in self.state_dict().items()}
        shape = json.dumps({"feature_dim": self.feature_dim, "classes": self.classes,
                            "references": int(self.references.size(0)), "familiarity_weight": self.familiarity_weight})
        atomic_write_bytes(path, save(tensors, metadata={"people_detector": shape}))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> PeopleDetector | None:
        """The detector of a model folder, or None if it has none."""
        path = Path(folder) / EVIDENCE_FILE
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                detector = cls(**json.loads((handle.metadata() or {})["people_detector"]))
                detector.load_state_dict({k: handle.get_tensor(k) for k in handle.keys()})
        except (OSError, SafetensorError, KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ModelLoadError(f"{path}: not a people detector ({describe_exception(error)})") from None
        return detector.eval()


def fit_people_detector(pooled: torch.Tensor, probabilities: torch.Tensor, targets: torch.Tensor,
                        weight_decay: float = WEIGHT_DECAY, seed: int = 0) -> PeopleDetector:
    """A :class:`PeopleDetector` for training photos' features ``(N, D)``, class probabilities
    ``(N, C)`` and :func:`people_targets` ``(N,)``: a logistic regression with an L2 penalty of
    ``weight_decay`` (L-BFGS, deterministic), and ``REFERENCE_PHOTOS`` of the photos (drawn with
    ``seed``) to measure familiarity against."""
    references = torch.randperm(len(pooled), generator=torch.Generator().manual_seed(seed))[:REFERENCE_PHOTOS]
    detector = PeopleDetector(pooled.size(1), probabilities.size(1), len(references))
    nn.init.zeros_(detector.linear.weight)
    nn.init.zeros_(detector.linear.bias)
    with torch.no_grad():
        # Rounded to float16 as saved, so that a loaded detector gives exactly what this one does.
        detector.references.copy_(nn.functional.normalize(pooled[references].float(), dim=1).half())
        others = torch.ones(len(pooled), dtype=torch.bool)
        others[references] = False  # a reference photo is its own nearest neighbour
        detector.usual_familiarity.fill_(float(detector.familiarity(pooled[others]).mean()) if others.any() else 1.0)
    optimizer = torch.optim.LBFGS(detector.linear.parameters(), max_iter=500, line_search_fn="strong_wolfe")
    learned_part = lambda: detector.linear(torch.cat([pooled.float(), probabilities.float()], dim=1)).squeeze(1)  # noqa: E731

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = nn.functional.binary_cross_entropy_with_logits(learned_part(), targets.float())
        value = value + weight_decay * detector.linear.weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    return detector.eval()
