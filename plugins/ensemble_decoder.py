"""An ensemble decoder: several decoders of one vocabulary and one encoder decoded as one.

Each step runs every member on the same previous tokens and returns the mean of
their log-probabilities, so one beam search (or any other search) follows the
ensemble's combined belief. Form one from trained models with ``captioner ensemble``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from captioner import Decoder, DecoderStep, EncoderOutput, create_decoder, hookimpl
from captioner.decoder import State


@dataclass(frozen=True)
class EnsembleConfig:
    members: tuple[dict[str, Any], ...]  # each {"decoder": registered name, "hparams": {...}}


class EnsembleDecoder(Decoder):
    """Members' states live side by side in one state dict, under keys ``"<member>.<key>"``."""

    def __init__(self, vocab_size: int, feature_dim: int, members: list[dict[str, Any]]) -> None:
        super().__init__(vocab_size, feature_dim)
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two member decoders")
        self.config = EnsembleConfig(tuple({"decoder": m["decoder"], "hparams": dict(m["hparams"])} for m in members))
        self.members = nn.ModuleList(
            create_decoder(m["decoder"], vocab_size=vocab_size, feature_dim=feature_dim, **m["hparams"]) for m in members
        )
        self.needs_grid = any(member.needs_grid for member in self.decoders)
        self.image_state = tuple(f"{i}.{key}" for i, member in enumerate(self.decoders) for key in member.image_state)

    @property
    def decoders(self) -> list[Decoder]:
        """The members, typed (``members`` is the ``nn.ModuleList`` that holds their weights)."""
        return cast(list[Decoder], list(self.members))

    @staticmethod
    def _split(state: State, count: int) -> list[State]:
        parts: list[State] = [{} for _ in range(count)]
        for key, value in state.items():
            index, _, name = key.partition(".")
            parts[int(index)][name] = value
        return parts

    @staticmethod
    def _join(parts: list[State]) -> State:
        return {f"{i}.{key}": value for i, part in enumerate(parts) for key, value in part.items()}

    def init_state(self, features: EncoderOutput) -> State:
        return self._join([member.init_state(features) for member in self.decoders])

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        outs = [member.step(tokens, part) for member, part in zip(self.decoders, self._split(state, len(self.members)))]
        log_probs = torch.stack([out.logits.float().log_softmax(dim=-1) for out in outs]).mean(dim=0)  # (R, V)
        attentions = [out.attention for out in outs if out.attention is not None]
        attention = torch.stack(attentions).mean(dim=0) if len(attentions) == len(outs) else None  # (R, N)
        return DecoderStep(log_probs, self._join([out.state for out in outs]), attention)

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        parts = self._split(state, len(self.members))
        return self._join([member.reorder_state(part, index) for member, part in zip(self.decoders, parts)])

    def reorder_beams(self, state: State, index: torch.Tensor) -> State:
        parts = self._split(state, len(self.members))
        return self._join([member.reorder_beams(part, index) for member, part in zip(self.decoders, parts)])


@hookimpl
def register_decoders(register):
    register("ensemble", EnsembleDecoder)
