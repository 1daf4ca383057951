"""A stack of encoders run on one batch: how an ensemble reads several kinds of image features.

Decoders trained on different encoders (say EfficientNet-Lite0, -Lite1 and -Lite2) make
different mistakes, so decoding them together helps far more than averaging decoders
that read the same features. Each member sees the photo exactly as it did in training:
preprocessing makes every member's input from the photo with that member's own config
and puts them side by side in one pixel tensor (:func:`captioner.images.preprocess`).
The stack returns every member's :class:`EncoderOutput` in ``members``; its own pooled
features and grid are its first member's, and its class logits are the log of the
members' mean class probabilities, so recognition and open-world guidance use every
classifier.

Stacks are formed from trained models by :func:`captioner.ensembling.ensemble_models`
and saved in a model folder as encoder :data:`STACK_ENCODER` with the members' names;
they are not a plugin and are not trained.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from .encoder import Encoder, EncoderConfig, EncoderOutput

STACK_ENCODER = "stack"  # the encoder name a model folder records for a stack


def stack_config(configs: list[EncoderConfig]) -> EncoderConfig:
    """The stack's config: its members', on a canvas as large as the largest input; the rest is the first's."""
    first = configs[0]
    canvas = (max(config.input_size[0] for config in configs), max(config.input_size[1] for config in configs))
    classes = first.classes if all(config.classes == first.classes for config in configs) else None
    return replace(first, input_size=canvas, classes=classes, members=tuple(configs))


class EncoderStack(Encoder):
    """``members`` (encoders, each with its own config) run on one batch of side-by-side inputs."""

    registered_name = STACK_ENCODER

    def __init__(self, members: list[Encoder]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("a stack needs at least two encoders")
        self.members = nn.ModuleList(members)
        self.config = stack_config([member.config for member in members])

    @property
    def encoders(self) -> list[Encoder]:
        """The members, typed (``members`` is the ``nn.ModuleList`` that holds their weights)."""
        return list(self.members)  # type: ignore[arg-type]

    @property
    def classifier(self) -> nn.Module | None:
        """The first classifier head among the members', or None if none has one (open-world guidance checks this)."""
        return next((head for member in self.encoders if (head := getattr(member, "classifier", None)) is not None),
                    None)

    def stages(self) -> list[nn.Module]:
        raise NotImplementedError("a stack of encoders cannot be fine-tuned; fine-tune its members' models instead")

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        """``images (B, 3 * members, H, W)``: member ``i``'s input is channels ``3i..3i+2``, top left."""
        outputs = []
        for i, member in enumerate(self.encoders):
            height, width = member.config.input_size
            outputs.append(member(images[:, 3 * i : 3 * i + 3, :height, :width]))
        return self._output(tuple(outputs))

    def _output(self, outputs: tuple[EncoderOutput, ...]) -> EncoderOutput:
        first = outputs[0]
        logits = [out.class_logits.float() for out in outputs if out.class_logits is not None]
        class_logits = None
        if logits and self.config.classes is not None:
            log_probs = torch.stack([values.log_softmax(dim=1) for values in logits])  # (members, B, C)
            class_logits = log_probs.logsumexp(dim=0) - math.log(len(logits))  # log of the mean probability
        return EncoderOutput(first.pooled, first.grid, class_logits, outputs)

    def fused_for_inference(self) -> Encoder | None:
        """A stack of the members' fused copies (members without one are used as they are)."""
        fused = [member.fused_for_inference() or member for member in self.encoders]
        if all(copy is member for copy, member in zip(fused, self.encoders)):
            return None
        return EncoderStack(fused).eval()  # the same members' configs, so the same stack config
