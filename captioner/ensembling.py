"""Ensembles: models that share a vocabulary, decoded together as one model.

Unlike averaging (one set of weights from several checkpoints of a run), an ensemble
keeps every member's decoder and averages their predictions at each step; it costs
one decoder pass per member. Members that share an encoder (weights included) read
its features once; members with different encoders (say EfficientNet-Lite0 and
-Lite2) read their own, from an encoder stack (:mod:`captioner.encoder_stack`) that
runs each distinct encoder once per batch. Different encoders make the members'
mistakes differ, which is where most of an ensemble's gain comes from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch

from .captioner import Captioner
from .decoder import Decoder
from .encoder import Encoder
from .encoder_stack import EncoderStack
from .errors import ModelLoadError
from .registry import create_decoder

ENSEMBLE_DECODER = "ensemble"  # registered by the built-in ensemble plugin


def _same_encoder(one: Encoder, two: Encoder) -> bool:
    """Whether two encoders compute the same features: same registered name, config and weights."""
    if (getattr(one, "registered_name", None), one.config) != (getattr(two, "registered_name", None), two.config):
        return False
    mine, theirs = one.state_dict(), two.state_dict()
    return mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k].to(mine[k].device)) for k in mine)


@dataclass
class _Members:
    """The distinct encoders met so far, and each decoder with the index of the encoder it reads."""

    encoders: list[Encoder] = field(default_factory=list)
    decoders: list[tuple[Decoder, int]] = field(default_factory=list)

    def source(self, encoder: Encoder) -> int:
        """``encoder``'s index, added if no encoder met so far computes the same features."""
        for i, known in enumerate(self.encoders):
            if _same_encoder(known, encoder):
                return i
        self.encoders.append(encoder)
        return len(self.encoders) - 1

    def add(self, folder: str | Path, captioner: Captioner) -> None:
        """A model's decoders (an ensemble's members, flattened) and their encoders."""
        decoder, encoder = captioner.decoder, captioner.encoder
        if getattr(decoder, "registered_name", None) != ENSEMBLE_DECODER:
            self.decoders.append((decoder, self.source(encoder)))
            return
        sources = decoder.config.sources
        if sources is not None and not isinstance(encoder, EncoderStack):
            raise ModelLoadError(f"{folder}: its ensemble decoder reads an encoder stack, but its encoder is not one")
        stacked = cast(EncoderStack, encoder).encoders if sources is not None else [encoder]
        indices = [self.source(member) for member in stacked]
        for i, member in enumerate(cast(Iterable[Decoder], decoder.members)):
            self.decoders.append((member, indices[sources[i] if sources is not None else 0]))


def ensemble_models(folders: list[str | Path], device: str | None = "cpu") -> Captioner:
    """One model whose decoder is every decoder of ``folders`` (ensembles are flattened).

    The folders must share the vocabulary. Members whose encoders are the same (name,
    config and weights, for example decoders trained with ``reset_decoder`` from one
    model) read one encoder's features; otherwise the encoders are stacked, each run
    once. The first folder's decoding defaults and caption memory are kept, and its encoder's features are
    the ones attention maps are drawn over. The metadata lists the folders and keeps
    each one's own; ``training.data`` is kept where every member names the same data.
    """
    if len(folders) < 2:
        raise ValueError("an ensemble needs at least two model folders")
    loaded = [Captioner.from_pretrained(folder, device="cpu") for folder in folders]
    first = loaded[0]
    members = _Members()
    for folder, model in zip(folders, loaded):
        if model.vocab != first.vocab:
            raise ModelLoadError(f"{folder}: its vocabulary differs from {folders[0]}'s; cannot ensemble")
        members.add(folder, model)
    stacked = len(members.encoders) > 1
    encoder = EncoderStack(members.encoders) if stacked else members.encoders[0]
    decoders = [decoder for decoder, _ in members.decoders]
    decoder = create_decoder(
        ENSEMBLE_DECODER, vocab_size=len(first.vocab), feature_dim=encoder.config.feature_dim,
        members=[{"decoder": m.registered_name, "hparams": m.hparams} for m in decoders],
        sources=[source for _, source in members.decoders] if stacked else None,
        feature_dims=[m.feature_dim for m in decoders] if stacked else None,
    )
    for target, member in zip(decoder.members, decoders):
        target.load_state_dict(member.state_dict())
    metadata: dict = {"ensemble_of": [str(Path(folder)) for folder in folders],
                      "members": [model.metadata for model in loaded]}
    data = {model.metadata.get("training", {}).get("data") for model in loaded}
    if len(data) == 1 and None not in data:
        metadata["training"] = {"data": data.pop()}  # what the web interface's "About" names
    # The ensemble's pooled features are its first member's encoder's, so the first model's memory still fits.
    return Captioner(encoder, decoder, first.vocab, device=device, decoding=first.decoding, metadata=metadata,
                     memory=first.memory)
