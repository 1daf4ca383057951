"""Caption metrics through pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L and CIDEr.

References and hypotheses go through its PTB tokenizer (Java). Without Java, METEOR is
skipped with a note and the text is tokenised by :func:`captioner.vocab.tokenize`
instead, so the other metrics are still computed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from tqdm import tqdm

from .batch_loader import BatchLoader
from .errors import ImageError
from .vocab import tokenize

ALL_METRICS = ("BLEU", "METEOR", "ROUGE_L", "CIDEr")


@dataclass
class Scores:
    """Corpus-level scores by name (``BLEU-1`` .. ``BLEU-4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``)."""

    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        width = max((len(name) for name in self.values), default=6)
        lines = [f"{'metric':<{width}}  score", f"{'-' * width}  ------"]
        lines += [f"{name:<{width}}  {value:.4f}" for name, value in self.values.items()]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def java_available() -> bool:
    return shutil.which("java") is not None


def _tokenized(references: dict[str, list[str]], hypotheses: dict[str, str], use_java: bool):
    if use_java:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        tokenizer = PTBTokenizer()
        refs = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in references.items()})
        hyps = tokenizer.tokenize({k: [{"caption": hypotheses[k]}] for k in references})
        return refs, hyps
    refs = {k: [" ".join(tokenize(c)) for c in v] for k, v in references.items()}
    hyps = {k: [" ".join(tokenize(hypotheses[k]))] for k in references}
    return refs, hyps


def score_captions(
    references: dict[str, list[str]], hypotheses: dict[str, str], metrics: tuple[str, ...] = ALL_METRICS
) -> Scores:
    """Corpus scores of one hypothesis per image against its references (same keys)."""
    missing = set(references) - set(hypotheses)
    if missing:
        raise ValueError(f"{len(missing)} images have references but no hypothesis, e.g. {sorted(missing)[0]}")
    scores = Scores()
    use_java = java_available()
    if not use_java:
        scores.notes.append("java not found: METEOR skipped, PTB tokenizer replaced by captioner's tokenizer")
    refs, hyps = _tokenized(references, hypotheses, use_java)
    for metric in metrics:
        if metric == "BLEU":
            from pycocoevalcap.bleu.bleu import Bleu

            values, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
            scores.values.update({f"BLEU-{n}": float(v) for n, v in enumerate(values, 1)})
        elif metric == "METEOR" and use_java:
            from pycocoevalcap.meteor.meteor import Meteor

            meteor = Meteor()
            try:
                scores.values["METEOR"] = float(meteor.compute_score(refs, hyps)[0])
            finally:  # this pycocoevalcap release has no close(): end its Java process ourselves
                meteor.meteor_p.kill()
                meteor.meteor_p.wait()
        elif metric == "ROUGE_L":
            from pycocoevalcap.rouge.rouge import Rouge

            scores.values["ROUGE_L"] = float(Rouge().compute_score(refs, hyps)[0])
        elif metric == "CIDEr":
            from pycocoevalcap.cider.cider import Cider

            scores.values["CIDEr"] = float(Cider().compute_score(refs, hyps)[0])
    return scores


def caption_images(captioner, images, settings: list[dict], batch_size: int = 64, progress: bool = True) -> list[list[str]]:
    """Captions of dataset images for each decoding setting (dicts of ``DecodingOptions`` fields).

    Every batch of image files is read, preprocessed and encoded once, then decoded
    once per setting; an unreadable image is an error.
    """
    options = [captioner.decoding.updated(**setting) for setting in settings]
    captions: list[list[str]] = [[] for _ in settings]
    with BatchLoader(captioner.encoder_config, captioner.device) as loader, \
            tqdm(total=len(images), desc="captioning", unit="image", disable=not progress) as bar:
        for batch in loader.batches([str(image.path) for image in images], batch_size):
            if batch.errors:
                raise ImageError(next(iter(batch.errors.values())))
            features = captioner.encode(batch.pixels)
            for texts, option in zip(captions, options):
                texts += [candidates[0].text for candidates in captioner.decode(features, option)]
            bar.update(len(batch.names))
    return captions


def score_dataset_captions(images, captions: list[str], metrics: tuple[str, ...] = ALL_METRICS) -> Scores:
    """Scores of one caption per dataset image (``CaptionedImage`` list) against its references,
    plus how many of the captions are distinct."""
    references = {str(i): list(image.captions) for i, image in enumerate(images)}
    scores = score_captions(references, {str(i): text for i, text in enumerate(captions)}, metrics=metrics)
    scores.values["distinct_captions"] = float(len(set(captions)))
    return scores


def evaluate(captioner, images, settings: list[dict], batch_size: int = 64, progress: bool = True):
    """Scores and captions of ``images`` (``CaptionedImage`` list) for each decoding setting."""
    return [(score_dataset_captions(images, captions), captions)
            for captions in caption_images(captioner, images, settings, batch_size, progress)]
