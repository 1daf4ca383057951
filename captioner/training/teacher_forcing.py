"""Teacher-forced decoding for training, with optional scheduled sampling."""

from __future__ import annotations

import torch
from torch import nn

from ..decoder import Decoder
from ..encoder import EncoderOutput


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
