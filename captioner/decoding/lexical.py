"""Lexical constraints for beam search: words a caption must contain, words it must not.

This is the decoding half of open-world captioning (Anderson et al. 2017, "Guided
Open Vocabulary Image Captioning with Constrained Beam Search"): the search keeps
beams per set of met constraints and finishes in the state where all are met
(``beam.py``). What the words are and why comes from :mod:`captioner.objects`.

The vocabulary may be extended with *added* tokens the decoder never saw: an added
token borrows the embedding and output weights of an in-vocabulary *source* token
(its logit is the source's logit, and it is fed to the decoder as the source), so it
can be said exactly where its source could.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .constraints import NEG_INF


@dataclass(frozen=True)
class LexicalConstraints:
    """Per-image constraints over a vocabulary of ``V`` decoder tokens plus ``A`` added ones.

    ``required (B, C, S)``: each caption must contain, for each of ``C`` slots, one of
    the slot's ``S`` tokens ("dog" or "dogs" or "retriever"; -1 pads, a slot of
    only -1 is unused).
    ``accepted (B, C, H)``: per slot, the tokens that meet it in a caption written without
    the requirements (:meth:`met_by`): the slot's own and close hypernyms ("mountain" for
    an alp), which the decoder may say but constrained search never inserts.
    ``banned (B, V+A)``: tokens a caption must not contain (never a required one).
    ``replaces (B, P)``: tokens whose probability a required token takes over, so it
    goes where the decoder would have said one of them ("cat" where it wanted "dog");
    they are normally banned too (-1 pads). ``plural (V+A,)`` marks required tokens
    that take nothing over ("cats" does not go where "dog" would).
    ``sources (A,)``: the decoder token each added token borrows from.
    ``nouns (V+A,)``: nouns; a required token never follows one, and none follows a
    required token, so it is never half of a compound ("a spider fence").
    ``margins (B,)``: how much lower (in mean log-probability per word, whatever the
    length penalty) an image's caption may score for meeting more slots; ``inf``
    meets them whatever the cost.

    A slot is met by saying one of its tokens once: until then its tokens move a
    beam to the group with the slot's bit set; after, they are not said again.
    """

    required: torch.Tensor
    accepted: torch.Tensor
    banned: torch.Tensor
    replaces: torch.Tensor
    sources: torch.Tensor
    nouns: torch.Tensor
    plural: torch.Tensor
    margins: torch.Tensor

    @property
    def slots(self) -> int:
        return self.required.size(1)

    def rows(self, index: torch.Tensor) -> LexicalConstraints:
        """The constraints of some images."""
        return replace(
            self, required=self.required[index], accepted=self.accepted[index], banned=self.banned[index],
            replaces=self.replaces[index], margins=self.margins[index],
        )

    def without_required(self) -> LexicalConstraints:
        """The same bans and added tokens, with nothing required."""
        nothing = self.required.new_full((self.required.size(0), 0, 1), -1)
        return replace(self, required=nothing, accepted=nothing)

    def met_by(self, captions: list[list[int]]) -> list[bool]:
        """Whether each image's caption (token ids, one per image), written without the
        requirements, meets its slots as constrained search would: one ``accepted`` token
        of each slot, said once, with no noun right before or after it. Reads the
        constraints off the device once for the batch."""
        nouns = self.nouns.tolist()
        return [_meets(slots, token_ids, nouns) for slots, token_ids in zip(self.accepted.tolist(), captions)]

    def decoder_inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids as the decoder knows them: an added token becomes its source."""
        vocab = self.banned.size(1) - self.sources.numel()
        if not self.sources.numel():
            return tokens
        added = tokens >= vocab
        return torch.where(added, self.sources[(tokens - vocab).clamp(min=0)], tokens)

    def for_rows(self, row_image: torch.Tensor) -> RowConstraints:
        """The constraints of a search's rows (``row_image (R,)``: the image of each row),
        gathered once per search rather than at every step."""
        required = self.required.index_select(0, row_image).flatten(1)  # (R, C*S)
        replaces = self.replaces.index_select(0, row_image)
        width = self.banned.size(1)
        columns = torch.where(required >= 0, required, width)
        return RowConstraints(
            required=required,
            columns=columns,
            is_required=torch.zeros(required.size(0), width + 1, dtype=torch.bool, device=required.device)
            .scatter_(1, columns, True)[:, :-1],
            plural=self.plural[required.clamp(min=0)],
            replaces=replaces.clamp(min=0),
            replaces_nothing=replaces < 0,
            banned=self.banned.index_select(0, row_image),
            sources=self.sources,
            nouns=self.nouns,
        )


@dataclass(frozen=True)
class RowConstraints:
    """:class:`LexicalConstraints` laid out per search row (``R`` rows, ``V+A`` tokens)."""

    required: torch.Tensor  # (R, C*S) required tokens, -1 pads
    columns: torch.Tensor  # (R, C*S) where each goes: its token, or a spare last column for a pad
    is_required: torch.Tensor  # (R, V+A) whether a token is one of the row's required tokens
    plural: torch.Tensor  # (R, C*S) required tokens that take nothing over
    replaces: torch.Tensor  # (R, P) tokens a required token takes over (0 where padded)
    replaces_nothing: torch.Tensor  # (R, P) padding of ``replaces``
    banned: torch.Tensor  # (R, V+A)
    sources: torch.Tensor  # (A,)
    nouns: torch.Tensor  # (V+A,)

    def logprobs(self, logprobs: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """``(R, V)`` decoder log-probs -> ``(R, V+A)`` with added tokens, replacements and bans.

        ``previous (R,)`` is the token each row said last. Each required token's
        log-prob becomes the log of its own probability plus that of the tokens it
        replaces. The result is a fresh tensor, written in place after one copy.
        """
        rows, vocab = logprobs.shape
        buffer = logprobs.new_empty(rows, self.banned.size(1) + 1)  # a spare last column for padded slots
        out = buffer[:, :-1]  # (R, V+A)
        out[:, :vocab] = logprobs
        if self.sources.numel():
            out[:, vocab:] = logprobs.index_select(1, self.sources)
        replaced = out.gather(1, self.replaces).masked_fill_(self.replaces_nothing, NEG_INF)  # (R, P)
        own = out.gather(1, self.required.clamp(min=0))  # (R, C*S)
        merged = torch.cat([own.unsqueeze(2), replaced.unsqueeze(1).expand(-1, own.size(1), -1)], dim=2).logsumexp(2)
        merged = torch.where(self.plural, own, merged)
        merged.masked_fill_(self.nouns[previous].unsqueeze(1), NEG_INF)  # never right after a noun
        out.masked_fill_(self.banned, NEG_INF)
        buffer.scatter_(1, self.columns, merged)  # padding lands in the spare column: no data-dependent shapes
        after_required = (self.required == previous.unsqueeze(1)).any(dim=1)  # (R,)
        return out.masked_fill_(after_required.unsqueeze(1) & self.nouns, NEG_INF)


def _meets(slots: list[list[int]], token_ids: list[int], nouns: list[bool]) -> bool:
    """:meth:`LexicalConstraints.met_by` for one caption."""
    for slot in slots:
        tokens = {t for t in slot if t >= 0}
        if not tokens:
            continue
        places = [i for i, t in enumerate(token_ids) if t in tokens]
        if len(places) != 1:
            return False
        i = places[0]
        if (i > 0 and nouns[token_ids[i - 1]]) or (i + 1 < len(token_ids) and nouns[token_ids[i + 1]]):
            return False
    return True
