"""The encoder interface: an ``nn.Module`` that turns image batches into features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

ResizeMode = Literal["squash", "center_crop"]


@dataclass(frozen=True)
class EncoderConfig:
    """Everything needed to feed an encoder: preprocessing and the shape of its output.

    ``resize_mode="squash"`` resizes straight to ``input_size`` ignoring aspect ratio
    (how the Flickr8k copy was made); ``"center_crop"`` resizes the short side and
    crops the centre.

    A stack of encoders (:mod:`captioner.encoder_stack`) has its members' configs in
    ``members``: each member's input is prepared from the photo as that member's config
    says, and the stack's pixels hold them side by side, 3 channels each, on a canvas
    of ``input_size`` (the largest member's height and width).
    """

    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature_dim: int
    spatial: bool  # yields a grid of region features (needed by attention decoders)
    resize_mode: ResizeMode = "squash"
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    classes: str | None = None  # label set of the encoder's classifier (e.g. "imagenet-1k"), None without one
    members: tuple[EncoderConfig, ...] = ()  # a stack's members (see above); empty for one encoder

    def __post_init__(self) -> None:
        problems = []
        if len(self.input_size) != 2 or not all(isinstance(v, int) and v > 0 for v in self.input_size):
            problems.append(f"input_size must be (height, width) in positive pixels, not {self.input_size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or not all(v > 0 for v in self.std):
            problems.append("mean and std must have 3 values each (RGB), std > 0")
        if not (isinstance(self.feature_dim, int) and self.feature_dim > 0):
            problems.append(f"feature_dim must be a positive int, not {self.feature_dim!r}")
        if self.resize_mode not in ("squash", "center_crop"):
            problems.append(f"resize_mode must be 'squash' or 'center_crop', not {self.resize_mode!r}")
        if self.interpolation not in ("bilinear", "bicubic"):
            problems.append(f"interpolation must be 'bilinear' or 'bicubic', not {self.interpolation!r}")
        if len(self.members) == 1 or any(not isinstance(m, EncoderConfig) or m.members for m in self.members):
            problems.append("members must be the configs of two or more single encoders")
        elif any(m.input_size[0] > self.input_size[0] or m.input_size[1] > self.input_size[1] for m in self.members):
            problems.append(f"input_size {self.input_size!r} must hold every member's input")
        if problems:
            raise ValueError("EncoderConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "members"}
        values.update(input_size=list(self.input_size), mean=list(self.mean), std=list(self.std))
        if self.members:  # single encoders' configs are written as they always were
            values["members"] = [member.to_dict() for member in self.members]
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        values = dict(data)
        for key in ("input_size", "mean", "std"):
            values[key] = tuple(values[key])
        members = values.get("members") or []
        if not isinstance(members, (list, tuple)) or not all(isinstance(member, dict) for member in members):
            raise ValueError("members must be a list of encoder configs")
        values["members"] = tuple(cls.from_dict(member) for member in members)
        return cls(**values)


class EncoderOutput(NamedTuple):
    """Pooled features ``(B, D)``, for spatial encoders a grid ``(B, N, D)``, and for
    encoders with a classifier its logits ``(B, C)`` over ``EncoderConfig.classes``.

    A stack of encoders (:mod:`captioner.encoder_stack`) also returns each member's own
    output in ``members``; its pooled features and grid are then its first member's.
    ``colours`` ``(B, bins)`` is not the encoder's: :meth:`Captioner.encode` adds the
    photos' :func:`~captioner.colours.colour_shares`, which guidance checks colour words against.
    """

    pooled: torch.Tensor
    grid: torch.Tensor | None
    class_logits: torch.Tensor | None = None
    members: tuple[EncoderOutput, ...] | None = None
    colours: torch.Tensor | None = None

    def _map(self, tensor_fn: Callable[[torch.Tensor], torch.Tensor]) -> EncoderOutput:
        """``tensor_fn`` applied to every tensor, the members' included."""
        grid, class_logits, colours = (None if value is None else tensor_fn(value)
                                       for value in (self.grid, self.class_logits, self.colours))
        members = None if self.members is None else tuple(member._map(tensor_fn) for member in self.members)
        return EncoderOutput(tensor_fn(self.pooled), grid, class_logits, members, colours)

    def rows(self, index: slice | torch.Tensor | list[int]) -> EncoderOutput:
        """The features of some images, e.g. ``features.rows(slice(i, i + 1))`` for image ``i``."""
        return self._map(lambda value: value[index])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> EncoderOutput:
        """The same features on ``device`` (and in ``dtype`` if given)."""
        return self._map(lambda value: value.to(device, dtype))

    def float(self) -> EncoderOutput:
        """The same features in float32 (after mixed-precision encoding)."""
        return self._map(lambda value: value.float())


def check_features(features: Any, config: EncoderConfig, batch: int) -> None:
    """Raise ``ValueError`` if an encoder's output breaks what its config declares.

    Run where the features leave the encoder, so a wrong ``feature_dim`` is blamed on
    the encoder, not on the decoder that trips over it.
    """
    if not isinstance(features, EncoderOutput):
        raise ValueError(f"returned {type(features).__name__}, not an EncoderOutput")
    if features.pooled.dim() != 2 or tuple(features.pooled.shape) != (batch, config.feature_dim):
        raise ValueError(f"pooled features have shape {tuple(features.pooled.shape)}, but its config declares "
                         f"({batch}, feature_dim={config.feature_dim})")
    if config.spatial and (features.grid is None or features.grid.dim() != 3
                           or features.grid.shape[0] != batch or features.grid.shape[2] != config.feature_dim):
        shape = None if features.grid is None else tuple(features.grid.shape)
        raise ValueError(f"grid features have shape {shape}, but its config declares spatial "
                         f"({batch}, regions, feature_dim={config.feature_dim})")


class Encoder(nn.Module):
    """Base class of encoders: ``forward(images (B, 3, H, W)) -> EncoderOutput``.

    An encoder with a classifier sets ``config.classes`` to its label set and returns
    ``class_logits``; it keeps the head as its ``classifier`` submodule, so that a
    model saved without one can drop it (``encoder.classifier = None``).
    """

    config: EncoderConfig

    def stages(self) -> list[nn.Module]:
        """The network's stages from input to output (fine-tuning unfreezes the last few)."""
        return list(self.children())

    def activations(self, images: torch.Tensor, first_stage: int) -> torch.Tensor:
        """The input of stage ``first_stage``: images run through the stages before it."""
        for stage in self.stages()[:first_stage]:
            images = stage(images)
        return images

    def forward_from(self, activations: torch.Tensor, first_stage: int) -> EncoderOutput:
        """The encoder's output from the input of stage ``first_stage`` (see :meth:`activations`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot start from a stage's input")

    def fused_for_inference(self) -> Encoder | None:
        """A faster copy for inference only (e.g. BatchNorm folded into convolutions), or None.

        The copy must give the same features as ``self`` in eval mode; ``self`` is
        left untouched, so it can still be trained and saved.
        """
        return None


class FeatureMapEncoder(Encoder):
    """Wraps a CNN trunk that returns a feature map ``(B, D, h, w)``.

    ``classifier`` (e.g. the network's own ImageNet head, ``nn.Linear(D, C)``) maps
    the pooled features to class logits; ``config.classes`` names its label set.
    """

    def __init__(self, trunk: nn.Module, config: EncoderConfig, classifier: nn.Module | None = None) -> None:
        super().__init__()
        self.trunk = trunk
        self.config = config
        self.classifier = classifier

    def stages(self) -> list[nn.Module]:
        """The trunk's stages; called in order they must compute what the trunk computes."""
        trunk_stages = getattr(self.trunk, "stages", None)
        return trunk_stages() if callable(trunk_stages) else list(self.trunk.children())

    def forward_from(self, activations: torch.Tensor, first_stage: int) -> EncoderOutput:
        for stage in self.stages()[first_stage:]:
            activations = stage(activations)
        return self._output(activations)

    def fused_for_inference(self) -> Encoder | None:
        """Uses the trunk's own ``fused_for_inference()`` if it has one."""
        fuse = getattr(self.trunk, "fused_for_inference", None)
        trunk = fuse() if callable(fuse) else None
        return FeatureMapEncoder(trunk, self.config, self.classifier).eval() if trunk is not None else None

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        return self._output(self.trunk(images))

    def _output(self, feature_map: torch.Tensor) -> EncoderOutput:
        """Grid, pooled features and class logits from the trunk's feature map ``(B, D, h, w)``."""
        grid = feature_map.flatten(2).transpose(1, 2)  # (B, h*w, D)
        pooled = grid.mean(dim=1)  # (B, D)
        logits = self.classifier(pooled) if self.classifier is not None else None  # (B, C)
        return EncoderOutput(pooled, grid if self.config.spatial else None, logits)
