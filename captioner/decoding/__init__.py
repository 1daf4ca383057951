"""Caption decoding: batched beam search, greedy decoding and sampling."""

from __future__ import annotations

from typing import Sequence

from ..decoder import Decoder
from ..encoder import EncoderOutput
from .beam import beam_search
from .options import DecodingOptions, Hypothesis
from .sampling import sample

__all__ = ["DecodingOptions", "Hypothesis", "beam_search", "sample", "decode"]


def decode(
    decoder: Decoder,
    features: EncoderOutput,
    options: DecodingOptions,
    *,
    start_id: int,
    end_id: int,
    banned_ids: Sequence[int] = (),
) -> list[list[Hypothesis]]:
    """Run the search ``options.method`` names; one best-first list per image."""
    search = beam_search if options.method == "beam" else sample
    return search(decoder, features, options, start_id=start_id, end_id=end_id, banned_ids=banned_ids)
