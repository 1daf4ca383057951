"""torchvision ResNet-50 and MobileNetV3-Large encoders.

``pretrained=True`` fetches torchvision's ImageNet weights (cached under ``$TORCH_HOME``);
``weights=PATH`` loads a local state dict (``.pth`` or ``.safetensors``) instead, for
machines without internet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from captioner import EncoderConfig, FeatureMapEncoder, hookimpl
from captioner.errors import WeightsUnavailableError, one_line

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _config(feature_dim: int) -> EncoderConfig:
    return EncoderConfig(
        input_size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD, feature_dim=feature_dim, spatial=True,
        classes="imagenet-1k",
    )


# name -> (builder, weights enum member, trunk extractor, ImageNet head on pooled features, feature dim)
MODELS: dict[str, tuple[Callable[..., nn.Module], object, Callable[[Any], nn.Module],
                        Callable[[Any], nn.Module], int]] = {
    "resnet50": (
        torchvision.models.resnet50,
        torchvision.models.ResNet50_Weights.IMAGENET1K_V2,
        lambda m: nn.Sequential(*list(m.children())[:-2]),  # drop avgpool and fc
        lambda m: m.fc,
        2048,
    ),
    "mobilenet_v3_large": (
        torchvision.models.mobilenet_v3_large,
        torchvision.models.MobileNet_V3_Large_Weights.IMAGENET1K_V2,
        lambda m: m.features,
        lambda m: m.classifier,
        960,
    ),
}


def _load_local(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsUnavailableError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _download(name: str, weights) -> dict[str, torch.Tensor]:
    try:
        return weights.get_state_dict(progress=True)
    except (URLError, OSError, RuntimeError) as error:
        raise WeightsUnavailableError(
            f"{name}: could not download torchvision weights {weights} ({one_line(error)}); "
            f"connect to the internet once (they are cached under $TORCH_HOME), "
            f"or download {weights.url} and pass weights=PATH"
        ) from None


def create_encoder(name: str, pretrained: bool = True, weights: str | Path | None = None) -> FeatureMapEncoder:
    builder, default_weights, extract_trunk, extract_head, feature_dim = MODELS[name]
    model = builder(weights=None)
    if weights is not None:
        model.load_state_dict(_load_local(Path(weights)))
    elif pretrained:
        model.load_state_dict(_download(name, default_weights))
    return FeatureMapEncoder(extract_trunk(model), _config(feature_dim), extract_head(model))


@hookimpl
def register_encoders(register):
    for name, (*_, feature_dim) in MODELS.items():
        register(name, lambda name=name, **options: create_encoder(name, **options), config=_config(feature_dim))
