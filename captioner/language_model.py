"""A caption language model: how captions are worded, learned from caption text alone.

The decoder learned its sentences from Flickr8k's photos, a world of people and dogs,
so around a recognised object it writes what it saw there: "a lizard ... with a stick
in its mouth". :class:`CaptionLanguageModel` is an LSTM over the caption model's own
vocabulary, trained on captions without photos (Flickr30k, COCO) as well as
Flickr8k's, and conditioned on *evidence*: whether the caption has people in it and
whether it has a dog. Given "no people, no dog" it has learned how captions of
everything else are worded ("a lizard sitting on a rock"). In the beam its
log-probabilities are added to the decoder's (shallow fusion, :class:`FusedDecoder`),
with the evidence that the photo gives (:mod:`captioner.evidence`).

It lives in a model folder as ``language_model.safetensors`` (config in its metadata);
:func:`train_language_model` trains one (``scripts/train_language_model.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .atomic import atomic_write_bytes
from .decoder import DecoderStep, State, StepDecoder
from .encoder import EncoderOutput
from .errors import ModelLoadError, describe_exception
from .evidence import said_evidence
from .labelset import LabelSet
from .vocab import SPECIALS, Vocabulary, tokenize

LANGUAGE_MODEL_FILE = "language_model.safetensors"
EVIDENCE = ("people", "dog")  # what a caption is conditioned on, in this order
MAX_WORDS = 20  # words of a training caption
# A word needs what it is said with in this share of the captions that have it (and are at
# least SAID_WITH_CAPTIONS): "shirt" (98%) needs people, "mouth" (96%) people or a dog.
SAID_WITH = 0.96
SAID_WITH_CAPTIONS = 50
DECODER = "decoder."  # the fused decoder's state keys that are the decoder's own


@dataclass(frozen=True)
class LanguageModelConfig:
    vocab_size: int
    embed_dim: int = 256
    hidden_dim: int = 512
    evidence: tuple[str, ...] = EVIDENCE


class CaptionLanguageModel(nn.Module):
    """An LSTM caption language model conditioned on evidence ``(B, E)`` in [0, 1].

    ``said_with (E, V)`` holds, for each word, the share of the training captions with
    it that also say each piece of evidence, the first cumulatively with the next
    (people; people or a dog): "shirt" is said with people in 98% of captions, "mouth"
    with people or a dog in 96%. :meth:`ruled_out` turns that into the words a photo's
    evidence rules out.
    """

    said_with: torch.Tensor  # a buffer, for type checkers

    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.evidence_projection = nn.Linear(len(config.evidence), config.embed_dim)
        self.lstm = nn.LSTM(config.embed_dim, config.hidden_dim, batch_first=True)
        self.output = nn.Linear(config.hidden_dim, config.vocab_size)
        self.register_buffer("said_with", torch.zeros(len(config.evidence), config.vocab_size))

    def ruled_out(self, evidence: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
        """``(B, V)`` the words that need what a photo's ``evidence (B, E)`` rules out: those
        said with people (in ``SAID_WITH`` of captions) where people are under the first
        threshold, those said with people or a dog where both are under theirs."""
        absent = (evidence < evidence.new_tensor(thresholds)).cumprod(dim=1).float()  # (B, E): none of the first e
        return (absent @ (self.said_with >= SAID_WITH).float()) > 0

    def forward(self, tokens: torch.Tensor, evidence: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``tokens (B, T)`` starting with ``<start>`` -> logits ``(B, T, V)`` and the LSTM state."""
        inputs = self.embedding(tokens) + self.evidence_projection(evidence).unsqueeze(1)  # (B, T, E)
        hidden, state = self.lstm(inputs, state)  # (B, T, H)
        return self.output(hidden), state

    def save(self, folder: str | Path) -> Path:
        """Write ``language_model.safetensors`` into a model folder: weights in float16, the word shares in
        float32 (a share of exactly ``SAID_WITH`` must stay at it, or a loaded model rules out less)."""
        path = Path(folder) / LANGUAGE_MODEL_FILE
        tensors = {k: v.detach().to(torch.float32 if k == "said_with" else torch.float16).contiguous().cpu()
                   for k, v in self.state_dict().items()}
        atomic_write_bytes(path, save(tensors, metadata={"config": json.dumps(asdict(self.config))}))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> CaptionLanguageModel | None:
        """The language model of a model folder, or None if it has none."""
        path = Path(folder) / LANGUAGE_MODEL_FILE
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                data = json.loads((handle.metadata() or {})["config"])
                data["evidence"] = tuple(data["evidence"])
                model = cls(LanguageModelConfig(**data))
                model.load_state_dict({k: handle.get_tensor(k).float() for k in handle.keys()})
        except (OSError, SafetensorError, KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ModelLoadError(f"{path}: not a caption language model ({describe_exception(error)})") from None
        return model.eval()


@dataclass(frozen=True)
class FusedSource:
    """What a :class:`FusedDecoder` starts from: the encoder's features, and per image the
    evidence ``(B, E)`` the language model is given and its weight ``(B,)``."""

    features: EncoderOutput
    evidence: torch.Tensor
    weight: torch.Tensor

    @property
    def pooled(self) -> torch.Tensor:
        return self.features.pooled

    def rows(self, index: torch.Tensor) -> FusedSource:
        return FusedSource(self.features.rows(index), self.evidence[index], self.weight[index])


class FusedDecoder(StepDecoder):
    """A decoder whose every step adds a weight times the language model's log-probabilities
    to its own (shallow fusion), each image with its own evidence and weight (a
    :class:`FusedSource`); the language model runs only for the rows of images whose
    weight is above 0.

    The state is the decoder's, under ``decoder.``, beside the language model's LSTM state
    and each row's evidence and weight, under ``lm.``.
    """

    def __init__(self, decoder: StepDecoder, language_model: CaptionLanguageModel) -> None:
        super().__init__()
        self.decoder, self.language_model = decoder, language_model
        self.image_state = tuple(f"{DECODER}{key}" for key in decoder.image_state) + ("lm.evidence", "lm.weight")

    def init_state(self, source: FusedSource) -> State:
        hidden = source.evidence.new_zeros(source.evidence.size(0), self.language_model.config.hidden_dim)
        lm_state = {"lm.h": hidden, "lm.c": hidden, "lm.evidence": source.evidence,
                    "lm.weight": source.weight.unsqueeze(1)}
        return self._join(self.decoder.init_state(source.features), lm_state)

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        inner, lm_state = self._split(state)
        out = self.decoder.step(tokens, inner)
        dtype = torch.promote_types(out.logits.dtype, torch.float32)  # float64 decoders stay float64
        fused = out.logits.to(dtype).log_softmax(dim=-1)  # (R, V)
        h, c = lm_state["lm.h"], lm_state["lm.c"]
        rows = (lm_state["lm.weight"][:, 0] > 0).nonzero().squeeze(1)  # the language model runs where it counts
        if rows.numel():
            evidence, weight = lm_state["lm.evidence"][rows], lm_state["lm.weight"][rows]
            lm_logits, (h_rows, c_rows) = self.language_model(
                tokens[rows].unsqueeze(1), evidence, (h[rows].unsqueeze(0), c[rows].unsqueeze(0)))  # (r, 1, V)
            fused = fused.index_add(0, rows, (weight * lm_logits[:, 0].log_softmax(dim=-1)).to(dtype))
            h, c = h.index_copy(0, rows, h_rows[0]), c.index_copy(0, rows, c_rows[0])
        return DecoderStep(fused, self._join(out.state, {**lm_state, "lm.h": h, "lm.c": c}), out.attention)

    def reorder_state(self, state: State, index: torch.Tensor) -> State:
        inner, lm_state = self._split(state)
        return self._join(self.decoder.reorder_state(inner, index), super().reorder_state(lm_state, index))

    def reorder_beams(self, state: State, index: torch.Tensor) -> State:
        inner, lm_state = self._split(state)
        lm_state = {key: value if key in self.image_state else value.index_select(0, index)
                    for key, value in lm_state.items()}
        return self._join(self.decoder.reorder_beams(inner, index), lm_state)

    @staticmethod
    def _split(state: State) -> tuple[State, State]:
        inner = {key[len(DECODER):]: value for key, value in state.items() if key.startswith(DECODER)}
        return inner, {key: value for key, value in state.items() if not key.startswith(DECODER)}

    @staticmethod
    def _join(inner: State, lm_state: State) -> State:
        return {**{f"{DECODER}{key}": value for key, value in inner.items()}, **lm_state}


def encode_captions(captions: Sequence[str], vocab: Vocabulary, label_set: LabelSet) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(N, MAX_WORDS + 2)`` (``<start> ... <end>``, padded) and the evidence each caption says ``(N, 2)``."""
    rows = torch.zeros(len(captions), MAX_WORDS + 2, dtype=torch.long)
    evidence = torch.zeros(len(captions), len(EVIDENCE))
    for i, caption in enumerate(captions):
        words = tokenize(caption)[:MAX_WORDS]
        ids = [vocab.start_id, *(vocab.id(w) for w in words), vocab.end_id]
        rows[i, : len(ids)] = torch.tensor(ids)
        evidence[i] = torch.tensor(said_evidence(words, label_set))
    return rows, evidence


def said_with(tokens: torch.Tensor, evidence: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``(E, V)``: per word, the share of captions ``(N, T)`` with it whose ``evidence (N, E)``
    says each piece, the first cumulatively with the next (people; people or a dog); 0 for
    words in fewer than ``SAID_WITH_CAPTIONS`` captions."""
    rows = torch.arange(len(tokens)).unsqueeze(1).expand_as(tokens)
    pairs = torch.unique(rows * vocab_size + tokens)  # each (caption, word) once
    caption, word = pairs // vocab_size, pairs % vocab_size
    keep = word >= len(SPECIALS)
    caption, word = caption[keep], word[keep]
    counts = torch.bincount(word, minlength=vocab_size).float()  # (V,) captions with each word
    cumulative = evidence.float().cummax(dim=1).values  # (N, E): people; people or a dog
    shares = torch.stack([torch.bincount(word, weights=cumulative[caption, e], minlength=vocab_size)
                          for e in range(evidence.size(1))]) / counts.clamp(min=1)  # (E, V)
    return shares.masked_fill(counts < SAID_WITH_CAPTIONS, 0.0)


def perplexity(model: CaptionLanguageModel, tokens: torch.Tensor, evidence: torch.Tensor, batch_size: int = 512) -> float:
    """Per-word perplexity of encoded captions (:func:`encode_captions`), ``<end>`` included."""
    total, count = 0.0, 0
    with torch.inference_mode():
        for rows, said in zip(tokens.split(batch_size), evidence.split(batch_size)):
            logits, _ = model(rows[:, :-1], said)
            total += nn.functional.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten(), ignore_index=0,
                                                 reduction="sum").item()
            count += int((rows[:, 1:] != 0).sum())
    return math.exp(total / max(1, count))


def train_language_model(
    tokens: torch.Tensor, evidence: torch.Tensor, config: LanguageModelConfig, *, epochs: int = 4,
    batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
    after_epoch: Callable[[int, CaptionLanguageModel], None] = lambda epoch, model: None,
) -> CaptionLanguageModel:
    """Train on encoded captions (:func:`encode_captions`) with Adam and a one-cycle schedule;
    ``after_epoch`` sees the model after each epoch (in eval mode)."""
    torch.manual_seed(seed)
    model = CaptionLanguageModel(config)
    model.said_with.copy_(said_with(tokens, evidence, config.vocab_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(tokens) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in torch.randperm(len(tokens), generator=generator).split(batch_size):
            rows = tokens[batch]
            rows = rows[:, : int((rows != 0).sum(dim=1).max())]  # (b, T): no all-padding columns
            logits, _ = model(rows[:, :-1], evidence[batch])
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten(), ignore_index=0)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
        model.eval()
        after_epoch(epoch, model)
    return model
