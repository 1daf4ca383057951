"""A captioner plugin with an image encoder and a caption decoder (the plugin guide's second tutorial)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from captioner import Decoder, DecoderStep, EncoderConfig, EncoderOutput, FeatureMapEncoder, hookimpl
from captioner.decoder import State

# How images must be prepared for this encoder, and what it yields. Frozen: the
# registry, the model folder's config.json and the preprocessing all read it.
TINY_CNN = EncoderConfig(
    input_size=(64, 64),  # (height, width) after resizing
    mean=(0.5, 0.5, 0.5),  # per-channel normalisation of pixels in [0, 1]
    std=(0.25, 0.25, 0.25),
    feature_dim=32,  # D: the size of each feature vector the decoder receives
    spatial=True,  # also yields a grid of region features (attention decoders need it)
    resize_mode="squash",  # or "center_crop"
    interpolation="bilinear",  # or "bicubic"
)


def create_tiny_cnn(pretrained: bool = True, weights: str | Path | None = None) -> FeatureMapEncoder:
    """The encoder factory. ``pretrained``: load the network's published weights (ours has none);
    ``weights``: a local weights file to load instead (e.g. for machines without internet)."""
    trunk = nn.Sequential(  # (B, 3, 64, 64) -> (B, 32, 4, 4)
        nn.Conv2d(3, 16, kernel_size=4, stride=4), nn.ReLU(),
        nn.Conv2d(16, 32, kernel_size=4, stride=4), nn.ReLU(),
    )
    if weights is not None:
        trunk.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return FeatureMapEncoder(trunk, TINY_CNN)  # pools the (B, D, h, w) map; pass a classifier for class logits


@dataclass(frozen=True)
class TinyGRUConfig:
    """The decoder's hyper-parameters: `decoder_hparams` in the API, a training config and `config.json`."""

    embed_dim: int = 32
    hidden_dim: int = 64


class TinyGRUDecoder(Decoder):
    """One GRU cell, started from the pooled image features."""

    def __init__(self, vocab_size: int, feature_dim: int, **hparams) -> None:
        super().__init__(vocab_size, feature_dim)  # the base class stores both
        self.config = config = TinyGRUConfig(**hparams)  # saved in config.json as `hparams`
        self.init_h = nn.Linear(feature_dim, config.hidden_dim)
        self.embedding = nn.Embedding(vocab_size, config.embed_dim, padding_idx=0)
        self.cell = nn.GRUCell(config.embed_dim, config.hidden_dim)
        self.output = nn.Linear(config.hidden_dim, vocab_size)

    def init_state(self, features: EncoderOutput) -> State:
        return {"h": torch.tanh(self.init_h(features.pooled))}  # (B, H): every value has rows first

    def step(self, tokens: torch.Tensor, state: State) -> DecoderStep:
        h = self.cell(self.embedding(tokens), state["h"])  # tokens (R,) -> h (R, H)
        return DecoderStep(self.output(h), {"h": h})  # logits (R, V); no attention


@hookimpl
def register_encoders(register):
    register("tiny_cnn_tutorial", create_tiny_cnn, config=TINY_CNN)


@hookimpl
def register_decoders(register):
    register("tiny_gru_tutorial", TinyGRUDecoder)
