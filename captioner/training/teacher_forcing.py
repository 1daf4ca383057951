"""Cross-entropy training: teacher-forced decoding (with optional scheduled sampling) and its loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..decoder import Decoder
from ..encoder import Encoder, EncoderOutput
from ..vocab import Vocabulary
from .distillation import classifier_drift
from .word_distillation import distillation_loss


class TeacherForcing(nn.Module):
    """``forward(features, inputs (B, T)) -> (logits (B, T, V), attention (B, T, N) or None)``.

    With ``sample_prob > 0`` each input after the first is, with that probability, the
    model's own most likely previous word instead of the reference word (scheduled
    sampling). A plain recurrent decoder without sampling uses its fast ``forward``.
    """

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(
        self,
        features: EncoderOutput,
        inputs: torch.Tensor,
        sample_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if sample_prob == 0.0 and not self.decoder.needs_grid:
            return self.decoder(features, inputs), None
        state = self.decoder.init_state(features)
        logits: list[torch.Tensor] = []
        attention: list[torch.Tensor] = []
        tokens = inputs[:, 0]
        for t in range(inputs.size(1)):
            if t > 0:
                tokens = inputs[:, t]
                if sample_prob > 0.0:
                    use_own = torch.rand(tokens.shape, generator=generator, device="cpu").to(tokens.device) < sample_prob
                    tokens = torch.where(use_own, logits[-1].argmax(dim=-1).detach(), tokens)
            out = self.decoder.step(tokens, state)
            logits.append(out.logits)
            if out.attention is not None:
                attention.append(out.attention)
            state = out.state
        return torch.stack(logits, 1), (torch.stack(attention, 1) if attention else None)


def caption_loss(logits: torch.Tensor, attention: torch.Tensor | None, targets: torch.Tensor,
                 label_smoothing: float = 0.0, attention_regularization: float = 0.0,
                 teacher: tuple[torch.Tensor, torch.Tensor] | None = None, teacher_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy of ``logits (B, T, V)`` against ``targets (B, T)`` (padding ignored), plus the
    doubly stochastic attention penalty of Show, Attend and Tell: every region ``(B, T, N)`` should
    get about one unit of attention over the caption. With a ``teacher``'s next-word distributions
    (``(ids, probs)``, each ``(B, T, K)``), ``teacher_weight`` of the word loss is against those."""
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                           ignore_index=Vocabulary.pad_id, label_smoothing=label_smoothing)
    if teacher is not None:
        loss = (1.0 - teacher_weight) * loss + teacher_weight * distillation_loss(logits, teacher, targets)
    if attention is not None and attention_regularization > 0:
        mask = (targets != Vocabulary.pad_id).unsqueeze(-1).to(attention.dtype)  # (B, T, 1)
        coverage = (attention * mask).sum(dim=1)  # (B, N): attention each region got over the caption
        loss = loss + attention_regularization * ((1.0 - coverage) ** 2).mean()
    return loss


class TrainingModule(nn.Module):
    """What DDP wraps: teacher forcing, after the encoder when fine-tuning.

    ``source`` is cached features (no ``encoder``), pixels (``first_stage`` 0) or the
    cached input of stage ``first_stage``; given the class logits the encoder started
    with, the drift of its classifier from them (:func:`classifier_drift`) comes back too.
    """

    def __init__(self, decoder: Decoder, encoder: Encoder | None, first_stage: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.first_stage = first_stage
        self.teacher_forcing = TeacherForcing(decoder)

    def encode(self, source: Any, reference_logits: torch.Tensor | None = None) -> tuple[EncoderOutput, torch.Tensor | None]:
        """Features of ``source`` (cached features pass through) and the classifier's drift, if asked."""
        if self.encoder is None:
            return source, None
        features = self.encoder(source) if self.first_stage == 0 else self.encoder.forward_from(source, self.first_stage)
        drift = None
        if reference_logits is not None and features.class_logits is not None:
            drift = classifier_drift(features.class_logits, reference_logits)
        return features, drift

    def forward(self, source: Any, reference_logits: torch.Tensor | None, inputs: torch.Tensor, sample_prob: float,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Logits ``(B, T, V)``, attention ``(B, T, N)`` or None, and the classifier's drift or None."""
        features, drift = self.encode(source, reference_logits)
        return *self.teacher_forcing(features, inputs, sample_prob, generator), drift
