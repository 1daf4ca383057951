"""Ensembles: models that share an encoder and a vocabulary, decoded together as one model.

Unlike averaging (one set of weights from several checkpoints of a run), an ensemble
keeps every member's decoder and averages their predictions at each step; it costs
one decoder pass per member.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

import torch

from .captioner import Captioner
from .decoder import Decoder
from .errors import ModelLoadError
from .registry import create_decoder

ENSEMBLE_DECODER = "ensemble"  # registered by the built-in ensemble plugin


def _members(captioner: Captioner) -> list[Decoder]:
    decoder = captioner.decoder
    return list(cast(Iterable[Decoder], decoder.members)) if captioner.model_config().decoder == ENSEMBLE_DECODER else [decoder]


def _same_encoder(first: Captioner, other: Captioner) -> bool:
    one, two = first.model_config(), other.model_config()
    if (one.encoder, one.encoder_config) != (two.encoder, two.encoder_config):
        return False
    mine, theirs = first.encoder.state_dict(), other.encoder.state_dict()
    return mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k].to(mine[k].device)) for k in mine)


def ensemble_models(folders: list[str | Path], device: str | None = "cpu") -> Captioner:
    """One model whose decoder is every decoder of ``folders`` (ensembles are flattened).

    The folders must share the vocabulary and the encoder, weights included (for
    example decoders trained with ``reset_decoder`` from one model); the first
    folder's encoder, decoding defaults and metadata are kept.
    """
    if len(folders) < 2:
        raise ValueError("an ensemble needs at least two model folders")
    first = Captioner.from_pretrained(folders[0], device="cpu")
    members = _members(first)
    for folder in folders[1:]:
        other = Captioner.from_pretrained(folder, device="cpu")
        if other.vocab != first.vocab:
            raise ModelLoadError(f"{folder}: its vocabulary differs from {folders[0]}'s; cannot ensemble")
        if not _same_encoder(first, other):
            raise ModelLoadError(f"{folder}: its encoder (or its weights) differs from {folders[0]}'s; cannot ensemble")
        members += _members(other)
    decoder = create_decoder(
        ENSEMBLE_DECODER, vocab_size=len(first.vocab), feature_dim=first.encoder.config.feature_dim,
        members=[{"decoder": m.registered_name, "hparams": m.hparams} for m in members],
    )
    for target, member in zip(decoder.members, members):
        target.load_state_dict(member.state_dict())
    metadata = {**first.metadata, "ensemble_of": [str(Path(folder)) for folder in folders]}
    return Captioner(first.encoder, decoder, first.vocab, device=device, decoding=first.decoding, metadata=metadata)
