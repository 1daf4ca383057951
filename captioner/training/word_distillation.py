"""Word-level knowledge distillation (Hinton et al. 2015; Kim & Rush 2016): next to each training
caption's next word, the student learns the distribution a teacher model (for example
``flickr8k-ensemble``) gives over the next word, kept to the teacher's ``top_k`` words.

The teacher reads every training caption once, teacher-forced, before training starts;
its targets are saved in the run folder and reused when the run resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from tqdm import tqdm

from ..atomic import atomic_write_bytes
from ..captioner import Captioner
from ..data import CaptionedImage
from ..encoder import EncoderOutput
from ..errors import CaptionerError
from ..vocab import Vocabulary
from .batching import CaptionPairs

TARGETS_FILE = "teacher-targets.safetensors"


@dataclass
class TeacherTargets:
    """Per training caption and position: the teacher's ``top_k`` next words ``(P, T, K)`` and
    their probabilities, renormalised over those ``K`` (float16, rows sum to 1)."""

    ids: torch.Tensor
    probs: torch.Tensor

    def rows(self, batch: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets of caption rows ``batch`` for their first ``length`` positions."""
        return self.ids[batch, :length].long(), self.probs[batch, :length].float()


def distillation_loss(logits: torch.Tensor, targets: tuple[torch.Tensor, torch.Tensor],
                      words: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student's ``logits (B, T, V)`` against the teacher's distributions
    ``(ids, probs)`` (each ``(B, T, K)``), averaged over the positions where ``words (B, T)``
    is not padding."""
    ids, probs = targets
    log_probs = logits.float().log_softmax(dim=-1).gather(-1, ids)  # (B, T, K)
    per_position = -(probs * log_probs).sum(dim=-1)  # (B, T)
    mask = (words != Vocabulary.pad_id).float()
    return (per_position * mask).sum() / mask.sum().clamp(min=1.0)


@torch.inference_mode()
def compute_teacher_targets(teacher: Captioner, images: list[CaptionedImage], pairs: CaptionPairs, top_k: int,
                            batch_size: int = 32, progress: bool = True) -> TeacherTargets:
    """Teacher-force every caption of ``pairs`` through ``teacher`` and keep its ``top_k`` next words."""
    inputs = pairs.tokens[:, :-1]  # the last position is never an input
    ids = torch.zeros(*inputs.shape, top_k, dtype=torch.int16)
    probs = torch.zeros(*inputs.shape, top_k, dtype=torch.float16)
    order = pairs.image_index.argsort(stable=True)
    starts = torch.searchsorted(pairs.image_index[order], torch.arange(len(images) + 1))
    with tqdm(total=len(images), desc="teacher", unit="image", disable=not progress) as bar:
        for first in range(0, len(images), batch_size):
            batch = images[first : first + batch_size]
            features = _encode_all(teacher, batch)
            rows = order[starts[first] : starts[first + len(batch)]]
            length = int((inputs[rows] != Vocabulary.pad_id).sum(1).max())
            image_rows = pairs.image_index[rows] - first
            logits = teacher.decoder(features.rows(image_rows), inputs[rows, :length].to(teacher.device))
            top = logits.float().log_softmax(dim=-1).topk(top_k, dim=-1)
            ids[rows, :length] = top.indices.cpu().to(torch.int16)
            probs[rows, :length] = top.values.softmax(dim=-1).cpu().to(torch.float16)
            bar.update(len(batch))
    return TeacherTargets(ids, probs)


def _encode_all(teacher: Captioner, images: list[CaptionedImage]) -> EncoderOutput:
    """The teacher's features of every one of ``images`` (a training image it cannot read stops training)."""
    errors: list[str] = []
    encoded = list(teacher.encode_images([image.path for image in images], batch_size=len(images),
                                         on_error=errors.append))
    if errors:
        raise CaptionerError(f"the teacher cannot read a training image: {errors[0]}")
    return encoded[0][1]


def teacher_targets(teacher_name: str, student_vocab: Vocabulary, images: list[CaptionedImage],
                    pairs: CaptionPairs, top_k: int, folder: Path, device: torch.device,
                    progress: bool = True) -> TeacherTargets:
    """The targets saved in ``folder`` for these captions, or the teacher's, computed and saved there."""
    path = folder / TARGETS_FILE
    if path.exists():
        with safe_open(path, "pt") as handle:
            made_by = json.loads((handle.metadata() or {}).get("word_distillation", "{}")).get("teacher")
        saved = load_file(path)
        if made_by == teacher_name and torch.equal(saved["tokens"], pairs.tokens) and saved["ids"].size(-1) == top_k:
            return TeacherTargets(saved["ids"], saved["probs"])
    teacher = Captioner.from_pretrained(teacher_name, device=str(device))
    if list(teacher.vocab.tokens) != list(student_vocab.tokens):
        raise CaptionerError(f"teacher {teacher_name!r} has another vocabulary than the model being trained; "
                             "word-level distillation needs the same words on both sides")
    targets = compute_teacher_targets(teacher, images, pairs, top_k, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"tokens": pairs.tokens.contiguous(), "ids": targets.ids, "probs": targets.probs}
    atomic_write_bytes(path, save(tensors, metadata={"word_distillation": json.dumps({"teacher": teacher_name})}))
    return targets
