"""Caption decoding: batched beam search, greedy decoding and sampling."""

from __future__ import annotations

from collections.abc import Sequence

from ..decoder import ImageRows, StepDecoder
from .beam import beam_search
from .guided import guided_beam_search
from .lexical import LexicalConstraints
from .options import DecodingOptions, Hypothesis
from .sampling import sample

__all__ = ["DecodingOptions", "Hypothesis", "LexicalConstraints", "beam_search", "decode", "guided_beam_search", "sample"]


def decode(
    decoder: StepDecoder,
    features: ImageRows,
    options: DecodingOptions,
    *,
    start_id: int,
    end_id: int,
    banned_ids: Sequence[int] = (),
    constraints: LexicalConstraints | None = None,
) -> list[list[Hypothesis]]:
    """Run the search ``options.method`` names; one best-first list per image.

    ``constraints`` need beam search; the other methods do not take them.
    """
    if options.method == "beam" and constraints is not None:
        return guided_beam_search(decoder, features, options, start_id=start_id, end_id=end_id, banned_ids=banned_ids,
                                  constraints=constraints)
    if options.method == "beam":
        return beam_search(decoder, features, options, start_id=start_id, end_id=end_id, banned_ids=banned_ids)
    if constraints is not None:
        raise ValueError(f"lexical constraints need beam search, not {options.method!r}")
    return sample(decoder, features, options, start_id=start_id, end_id=end_id, banned_ids=banned_ids)
