"""An ensemble decoder: several decoders of one vocabulary decoded as one.

Each step runs every member on the same previous tokens and returns the mean of
their log-probabilities, so one beam search (or any other search) follows the
ensemble's combined belief. Members read the same features, or, with ``sources``,
each reads its own member of an encoder stack (:mod:`captioner.encoder_stack`).
Form one from trained models with ``captioner ensemble``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from captioner import Decoder, DecoderStep, EncoderOutput, create_decoder, hookimpl
from captioner.decoder import State, joined_states, mean_log_probs, member_states, reorder_members


@dataclass(frozen=True)
class EnsembleConfig:
    members: tuple[dict[str, Any], ...]  # each {"decoder": registered name, "hparams": {...}}
    # per member, the encoder stack member whose output it reads (None: all read the same features)
    sources: tuple[int, ...] | None = None
    # per member, its features' size if not the ensemble's feature_dim (members of a stack may differ)
    feature_dims: tuple[int, ...] | None = None


class EnsembleDecoder(Decoder):
    """Members' states live side by side in one state dict, under keys ``"<member>.<key>"``."""

    def __init__(self, vocab_size: int, feature_dim: int, members: list[dict[str, Any]],
                 sources: list[int] | None = None, feature_dims: list[int] | None = None) -> None:
        super().__init__(vocab_size, feature_dim)
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two member decoders")
        for name, values in (("sources", sources), ("feature_dims", feature_dims)):
            if values is not None and (len(values) != len(members) or min(values) < 0):
                raise ValueError(f"{name} must have one value of 0 or more per member ({len(members)})")
        self.config = EnsembleConfig(tuple({"decoder": m["decoder"], "hparams": dict(m["hparams"])} for m in members),
                                     None if sources is None else tuple(sources),
                                     None if feature_dims is None else tuple(feature_dims))
        dims = feature_dims or [feature_dim] * len(members)
        self.members = nn.ModuleList(
            create_decoder(m["decoder"], vocab_size=vocab_size, feature_dim=dim, **m["hparams"])
            for m, dim in zip(members, dims)
        )
        # The members that read the features the encoder reports (for a stack, its first member's): the encoder's
        # config is checked against them, and their attention is what is shown.
        self.reporting = [i for i, source in enumerate(sources or [0] * len(members)) if source == 0]
        self.needs_grid = any(self.decoders[i].needs_grid for i in self.reporting)
        self.image_state = tuple(f"{i}.{key}" for i, member in enumerate(self.decoders) for key in member.image_state)

    @property
    def decoders(self) -> list[Decoder]:
        """The members, typed (``members`` is the ``nn.ModuleList`` that holds their weights)."""
        return cast(list[Decoder], list(self.members))

    def init_state(self, features: EncoderOutput) -> State:
        sources = self.config.sources
        if sources is None:
            return joined_states([member.init_state(features) for member in self.decoders])
        if features.members is None or len(features.members) <= max(sources):
            found = 0 if features.members is None else len(features.members)
            raise ValueError(f"this ensemble reads {max(sources) + 1} stacked encoders' features, but got {found}")
        return joined_states([member.init_state(features.members[s]) for member, s in zip(self.decoders, sources)])

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        outs = [member.step(tokens, part) for member, part in zip(self.decoders, member_states(state, len(self.members)))]
        log_probs = mean_log_probs([out.logits for out in outs])  # (R, V)
        attentions = [attention for i in self.reporting if (attention := outs[i].attention) is not None]
        shown = bool(attentions) and len(attentions) == len(self.reporting)  # every reporting member attends
        attention = torch.stack(attentions).mean(dim=0) if shown else None  # (R, N)
        return DecoderStep(log_probs, joined_states([out.state for out in outs]), attention)

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        return reorder_members(self.decoders, state, index)

    def reorder_beams(self, state: State, index: torch.Tensor) -> State:
        return reorder_members(self.decoders, state, index, beams=True)


@hookimpl
def register_decoders(register):
    register("ensemble", EnsembleDecoder)
