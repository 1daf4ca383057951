"""The decoder interface shared by every recurrent decoder the beam search drives.

A decoder writes its output one token at a time:

* ``init_state(source)`` builds the recurrent state from the encoder output (an
  image's :class:`EncoderOutput` for captions, a sentence's states for translation);
* ``step(tokens, state)`` takes the previous token of each row and returns
  next-token logits, the new state and (for attention decoders) the attention weights;
* ``reorder_state(state, index)`` selects/duplicates rows, which is how beam search
  expands images into beams and follows the surviving beams;
* ``reorder_beams(state, index)`` is the same for an ``index`` that keeps every row
  within its own source: keys named in ``image_state`` (tensors that depend only on
  the source, such as attention memory) are then left as they are, not copied.

State is a ``dict`` of tensors whose first dimension is the row, so the default
``reorder_state`` works for every decoder that keeps to that rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, NamedTuple, Protocol, Self, cast

import torch
from torch import nn

from .encoder import EncoderOutput

State = dict[str, torch.Tensor]


class ImageRows(Protocol):
    """What the caption searches start from: per image, pooled features ``(B, D)`` at least,
    and the rows of some images (an :class:`EncoderOutput`, or one with more per image)."""

    @property
    def pooled(self) -> torch.Tensor: ...

    def rows(self, index: torch.Tensor) -> Self: ...


class DecoderStep(NamedTuple):
    """One decoding step: logits ``(R, V)``, next state, attention ``(R, N)`` or None."""

    logits: torch.Tensor
    state: State
    attention: torch.Tensor | None = None


class StepDecoder(nn.Module):
    """What the searches in :mod:`captioner.decoding` drive: one token per row per step."""

    image_state: tuple[str, ...] = ()  # state keys that are the same for every beam of a source

    def init_state(self, source: Any) -> State:
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        raise NotImplementedError

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        return {key: value.index_select(0, index) for key, value in state.items()}

    def reorder_beams(self, state: State, index: torch.Tensor) -> State:
        """``reorder_state`` for an index that maps each row to a row of the same source."""
        return {key: value if key in self.image_state else value.index_select(0, index) for key, value in state.items()}


class Decoder(StepDecoder):
    """Base class of caption decoders. Subclasses set ``config`` (a dataclass) and ``needs_grid``."""

    needs_grid: bool = False
    config: Any

    def __init__(self, vocab_size: int, feature_dim: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.feature_dim = feature_dim

    @property
    def hparams(self) -> dict[str, Any]:
        """Hyper-parameters that rebuild this decoder (saved in ``config.json``)."""
        config = getattr(self, "config", None)
        if not is_dataclass(config) or isinstance(config, type):
            raise ValueError(f"{type(self).__name__} has no config, so it cannot be saved: set self.config to a "
                             "dataclass of the hyper-parameters its factory takes (see docs/plugins.md)")
        return asdict(config)

    def init_state(self, features: EncoderOutput) -> State:
        raise NotImplementedError

    def forward(self, features: EncoderOutput, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``tokens (B, T)`` starting with ``<start>`` -> logits ``(B, T, V)``."""
        state = self.init_state(features)
        logits = []
        for t in range(tokens.size(1)):
            out = self.step(tokens[:, t], state)
            logits.append(out.logits)
            state = out.state
        return torch.stack(logits, dim=1)


def member_states(state: State, count: int) -> list[State]:
    """An ensemble's state, whose keys are ``"<member>.<key>"``, split into its ``count`` members' states."""
    parts: list[State] = [{} for _ in range(count)]
    for key, value in state.items():
        index, _, name = key.partition(".")
        parts[int(index)][name] = value
    return parts


def joined_states(parts: list[State]) -> State:
    """Members' states side by side in one state, under keys ``"<member>.<key>"``."""
    return {f"{i}.{key}": value for i, part in enumerate(parts) for key, value in part.items()}


def reorder_members(decoders: Sequence[StepDecoder], state: State, index: torch.Tensor, *, beams: bool = False) -> State:
    """An ensemble's ``reorder_state`` (``reorder_beams`` with ``beams``): each member reorders its own state."""
    parts = member_states(state, len(decoders))
    return joined_states([(member.reorder_beams if beams else member.reorder_state)(part, index)
                          for member, part in zip(decoders, parts)])


def mean_log_probs(logits: list[torch.Tensor]) -> torch.Tensor:
    """Members' step logits ``(R, V)`` each -> the mean of their log-probabilities ``(R, V)``, in float32."""
    return torch.stack([member.float().log_softmax(dim=-1) for member in logits]).mean(dim=0)


class MeanOfDecoders(StepDecoder):
    """Step decoders of one vocabulary searched as one (an ensemble): each step, the mean of their
    log-probabilities. ``init_state`` takes one source per member; no attention is reported."""

    def __init__(self, decoders: list[StepDecoder]) -> None:
        super().__init__()
        self.members = nn.ModuleList(decoders)
        self.image_state = tuple(f"{i}.{key}" for i, member in enumerate(decoders) for key in member.image_state)

    @property
    def decoders(self) -> list[StepDecoder]:
        """The members, typed (``members`` is the ``nn.ModuleList`` that holds their weights)."""
        return cast(list[StepDecoder], list(self.members))

    def init_state(self, source: Any) -> State:
        return joined_states([member.init_state(s) for member, s in zip(self.decoders, source, strict=True)])

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        outs = [member.step(tokens, part) for member, part in zip(self.decoders, member_states(state, len(self.members)))]
        return DecoderStep(mean_log_probs([out.logits for out in outs]), joined_states([out.state for out in outs]))

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        return reorder_members(self.decoders, state, index)

    def reorder_beams(self, state: State, index: torch.Tensor) -> State:
        return reorder_members(self.decoders, state, index, beams=True)


@torch.inference_mode()
def check_decoder_step(decoder: StepDecoder, source: Any, start_id: int, vocab_size: int) -> None:
    """Raise ``ValueError`` if one step from ``source`` (one row) breaks the step contract.

    Run where the decoder's output enters the search, so a decoder that returns the
    wrong shapes is blamed by name, not the search that trips over them.
    """
    state = decoder.init_state(source)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) and v.size(0) == 1 for v in state.values()):
        raise ValueError("init_state must return a dict of tensors with one row per input")
    device = next((v.device for v in state.values()), next((p.device for p in decoder.parameters()), None))
    out = decoder.step(torch.full((1,), start_id, dtype=torch.long, device=device), state)
    if not isinstance(out, DecoderStep):
        raise ValueError(f"step returned {type(out).__name__}, not a DecoderStep")
    check_step_logits(out.logits, 1, vocab_size)


def check_step_logits(logits: torch.Tensor, rows: int, vocab_size: int) -> None:
    """Raise ``ValueError`` unless a step's ``logits`` are ``(rows, vocab_size)`` with no NaN or +inf
    (-inf is how a decoder rules a token out)."""
    if tuple(logits.shape) != (rows, vocab_size):
        raise ValueError(f"step returned logits of shape {tuple(logits.shape)}, not (rows, vocab_size) = "
                         f"({rows}, {vocab_size})")
    if not bool((logits < math.inf).all()):
        raise ValueError("step returned NaN or +inf logits")


class CheckedDecoder(StepDecoder):
    """``decoder`` with every step's logits checked (:func:`check_step_logits`), so a decoder that goes
    wrong only with more rows, or only later in a caption, is blamed before its scores are used."""

    def __init__(self, decoder: StepDecoder, vocab_size: int) -> None:
        super().__init__()
        self.decoder, self.vocab_size = decoder, vocab_size
        self.image_state = decoder.image_state

    def init_state(self, source: Any) -> State:
        return self.decoder.init_state(source)

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        out = self.decoder.step(tokens, state)
        check_step_logits(out.logits, tokens.size(0), self.vocab_size)
        return out

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        return self.decoder.reorder_state(state, index)

    def reorder_beams(self, state: State, index: torch.Tensor) -> State:
        return self.decoder.reorder_beams(state, index)
