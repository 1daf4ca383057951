"""Show-and-Tell style decoders: the image is the first input of an LSTM or GRU.

The pooled image feature is projected to the word-embedding size and fed to the
recurrent network before ``<start>``; every later input is the previous word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from captioner import Decoder, DecoderStep, EncoderOutput, hookimpl
from captioner.decoder import State


@dataclass(frozen=True)
class RecurrentDecoderConfig:
    rnn: Literal["lstm", "gru"] = "lstm"
    embed_dim: int = 512
    hidden_dim: int = 512
    num_layers: int = 1
    dropout: float = 0.5


class ShowAndTellDecoder(Decoder):
    """``image -> rnn -> words``; state rows are ``(R, layers, hidden)`` tensors."""

    def __init__(self, vocab_size: int, feature_dim: int, **hparams) -> None:
        super().__init__(vocab_size, feature_dim)
        self.config = config = RecurrentDecoderConfig(**hparams)
        self.image_projection = nn.Sequential(nn.Linear(feature_dim, config.embed_dim), nn.Dropout(config.dropout))
        self.embedding = nn.Embedding(vocab_size, config.embed_dim, padding_idx=0)
        rnn_class = nn.LSTM if config.rnn == "lstm" else nn.GRU
        self.rnn = rnn_class(
            config.embed_dim,
            config.hidden_dim,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_dim, vocab_size)

    def _pack(self, hidden) -> State:
        if self.config.rnn == "lstm":
            h, c = hidden
            return {"h": h.transpose(0, 1), "c": c.transpose(0, 1)}  # (R, layers, H)
        return {"h": hidden.transpose(0, 1)}

    def _unpack(self, state: State):
        h = state["h"].transpose(0, 1).contiguous()  # (layers, R, H)
        if self.config.rnn == "lstm":
            return h, state["c"].transpose(0, 1).contiguous()
        return h

    def init_state(self, features: EncoderOutput) -> State:
        image = self.image_projection(features.pooled).unsqueeze(1)  # (B, 1, E)
        _, hidden = self.rnn(image)
        return self._pack(hidden)

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        output, hidden = self.rnn(self.embedding(tokens).unsqueeze(1), self._unpack(state))  # (R, 1, H)
        logits = self.output(self.dropout(output.squeeze(1)))
        return DecoderStep(logits, self._pack(hidden))

    def forward(self, features: EncoderOutput, tokens: torch.Tensor) -> torch.Tensor:
        """All steps in one cuDNN/oneDNN call: logits ``(B, T, V)`` for ``tokens (B, T)``."""
        image = self.image_projection(features.pooled).unsqueeze(1)  # (B, 1, E)
        inputs = torch.cat([image, self.embedding(tokens)], dim=1)  # (B, 1+T, E)
        outputs, _ = self.rnn(inputs)
        return self.output(self.dropout(outputs[:, 1:]))


@hookimpl
def register_decoders(register):
    register("lstm", lambda **options: ShowAndTellDecoder(**{**options, "rnn": "lstm"}))
    register("gru", lambda **options: ShowAndTellDecoder(**{**options, "rnn": "gru"}))
