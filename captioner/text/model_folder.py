"""The text-model folder: ``config.json`` + ``tokenizer.json`` + ``model.safetensors``.

``config.json`` names the kind of model (``sentiment-rnn``, ``translate-rnn``), the
hyper-parameters that rebuild it and free-form metadata (languages, labels, scores).
As for caption models, nothing is unpickled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import ModelLoadError
from ..model_folder import read_json
from .tokenizer import SubwordTokenizer

FORMAT_NAME = "captioner-text-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class TextModelConfig:
    """The parsed ``config.json`` of a text-model folder."""

    kind: str
    hparams: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
            "kind": self.kind, "hparams": self.hparams, "metadata": self.metadata,
        }


@dataclass
class TextModelFiles:
    """Everything a text-model folder holds, read and checked."""

    config: TextModelConfig
    tokenizer: SubwordTokenizer
    weights: dict[str, torch.Tensor]


def save_text_model(
    folder: Path, kind: str, module: torch.nn.Module, hparams: dict[str, Any], tokenizer: SubwordTokenizer,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write a text model; weights are stored in float16 to keep shipped folders small."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = {name: value.detach().to("cpu", torch.float16).contiguous() for name, value in module.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(weights))
    tokenizer.save(folder / TOKENIZER_FILE)
    config = TextModelConfig(kind, hparams, metadata or {})
    atomic_write_text(folder / CONFIG_FILE, json.dumps(config.to_json(), indent=2, ensure_ascii=False) + "\n")


def read_text_model(folder: Path, kind: str) -> TextModelFiles:
    """Read and check a text-model folder of the given kind; weights come back in float32."""
    where = str(folder / CONFIG_FILE)
    data = read_json(folder / CONFIG_FILE)
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ModelLoadError(f"{where}: not a {FORMAT_NAME} config")
    if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
        raise ModelLoadError(
            f"{where}: format_version {data.get('format_version')!r} is not supported (newest: {FORMAT_VERSION})"
        )
    if data.get("kind") != kind:
        raise ModelLoadError(f"{where}: holds a {data.get('kind')!r} model, not {kind!r}")
    if not isinstance(data.get("hparams"), dict) or not isinstance(data.get("metadata", {}), dict):
        raise ModelLoadError(f"{where}: 'hparams' and 'metadata' must be JSON objects")
    try:
        tokenizer = SubwordTokenizer.from_file(folder / TOKENIZER_FILE)
    except Exception as error:  # tokenizers raises plain Exceptions for missing or malformed files
        raise ModelLoadError(f"{folder / TOKENIZER_FILE}: cannot be read ({error})") from None
    try:
        weights = {name: value.float() for name, value in load_file(str(folder / WEIGHTS_FILE)).items()}
    except (FileNotFoundError, SafetensorError, OSError) as error:
        raise ModelLoadError(f"{folder / WEIGHTS_FILE}: cannot be read ({error})") from None
    return TextModelFiles(TextModelConfig(kind, data["hparams"], data.get("metadata", {})), tokenizer, weights)


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], where: Path) -> None:
    """Load ``weights`` into ``module``; a mismatch is a :class:`ModelLoadError` naming the folder."""
    try:
        module.load_state_dict(weights)
    except RuntimeError as error:
        detail = " ".join(line.strip() for line in str(error).splitlines()[1:]) or str(error)
        raise ModelLoadError(f"{where}: weights do not match the config ({detail})") from None


class TextModel:
    """A trained text network with its tokenizer and metadata, stored as a text-model folder.

    Subclasses name their ``kind``, their ``network`` (an ``nn.Module`` built from one
    config dataclass, kept as its ``config``) and that ``config_type``.
    """

    kind: ClassVar[str]
    network: ClassVar[type[torch.nn.Module]]
    config_type: ClassVar[type]

    def __init__(self, model: Any, tokenizer: SubwordTokenizer, metadata: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.metadata = metadata or {}

    @classmethod
    def load(cls, folder: Path) -> Any:
        files = read_text_model(folder, cls.kind)
        try:
            model = cls.network(cls.config_type(**files.config.hparams))
        except TypeError as error:
            raise ModelLoadError(f"{folder / CONFIG_FILE}: bad 'hparams' ({error})") from None
        load_weights(model, files.weights, folder)
        return cls(model, files.tokenizer, files.config.metadata)

    def save(self, folder: Path, metadata: dict[str, Any] | None = None) -> None:
        save_text_model(folder, self.kind, self.model, asdict(self.model.config), self.tokenizer,
                        metadata or self.metadata)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device
