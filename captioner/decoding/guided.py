"""Guided decoding: the decoder's own caption where it meets the constraints, constrained beam search elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..decoder import ImageRows, StepDecoder
from .beam import beam_search
from .lexical import LexicalConstraints
from .options import DecodingOptions, Hypothesis


def guided_beam_search(
    decoder: StepDecoder,
    features: ImageRows,
    options: DecodingOptions,
    *,
    start_id: int,
    end_id: int,
    banned_ids: Sequence[int] = (),
    constraints: LexicalConstraints,
) -> list[list[Hypothesis]]:
    """Beam search with the bans alone first; images whose best caption does not meet
    the constraints as constrained search would (:meth:`LexicalConstraints.met_by`)
    are searched again with constrained beam search.

    An image whose free caption already names its object ("two dogs" for a retriever)
    keeps it: constrained search would prune its beams differently and could lose it.
    """
    results = beam_search(decoder, features, options, start_id=start_id, end_id=end_id, banned_ids=banned_ids,
                          constraints=constraints.without_required())
    met = constraints.met_by([hypotheses[0].token_ids for hypotheses in results])
    missing = [b for b, ok in enumerate(met) if not ok]
    if missing:
        index = torch.tensor(missing, device=features.pooled.device)
        constrained = beam_search(decoder, features.rows(index), options, start_id=start_id, end_id=end_id,
                                  banned_ids=banned_ids, constraints=constraints.rows(index))
        for b, hypotheses in zip(missing, constrained):
            results[b] = hypotheses
    return results
