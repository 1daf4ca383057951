"""The model folder format: ``config.json`` + ``vocab.json`` + ``model.safetensors`` (and a caption
memory, ``memory.safetensors``, which :mod:`captioner.consensus` reads and writes).

Nothing is ever unpickled: weights are safetensors, everything else is JSON, and every
field is checked before a module is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .atomic import atomic_write_bytes, atomic_write_text
from .encoder import EncoderConfig
from .errors import ModelLoadError, one_line
from .vocab import Vocabulary

FORMAT_NAME = "captioner-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class ModelConfig:
    """The parsed ``config.json`` of a model folder."""

    encoder: str
    encoder_config: EncoderConfig
    decoder: str
    decoder_hparams: dict[str, Any]
    vocab_size: int
    decoding: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    encoder_members: list[str] = field(default_factory=list)  # a stack's encoders (their configs: encoder_config)

    def to_json(self) -> dict[str, Any]:
        encoder: dict[str, Any] = {"name": self.encoder, "config": self.encoder_config.to_dict()}
        if self.encoder_members:
            encoder["members"] = self.encoder_members
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "encoder": encoder,
            "decoder": {"name": self.decoder, "vocab_size": self.vocab_size, "hparams": self.decoder_hparams},
            "vocab": VOCAB_FILE,
            "decoding": self.decoding,
            "metadata": self.metadata,
        }


def _require(data: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ModelLoadError(f"{where}: missing {key!r}")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise ModelLoadError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def read_json(path: Path) -> Any:
    """A JSON file, or a one-line :class:`ModelLoadError` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path}: not valid JSON ({error})") from None


def parse_config(data: Any, where: str) -> ModelConfig:
    """Validate a loaded ``config.json`` document."""
    if not isinstance(data, dict):
        raise ModelLoadError(f"{where}: must be a JSON object")
    if data.get("format") != FORMAT_NAME:
        raise ModelLoadError(f"{where}: 'format' is {data.get('format')!r}, expected {FORMAT_NAME!r}")
    version = _require(data, "format_version", int, where)
    if version > FORMAT_VERSION:
        raise ModelLoadError(
            f"{where}: format_version {version} is newer than this captioner reads ({FORMAT_VERSION}); upgrade captioner"
        )
    encoder = _require(data, "encoder", dict, where)
    decoder = _require(data, "decoder", dict, where)
    try:
        encoder_config = EncoderConfig.from_dict(_require(encoder, "config", dict, f"{where} encoder"))
    except (TypeError, ValueError) as error:
        raise ModelLoadError(f"{where}: encoder config is invalid ({error})") from None
    members = _require(encoder, "members", list, f"{where} encoder") if "members" in encoder else []
    if not all(isinstance(name, str) for name in members) or len(members) != len(encoder_config.members):
        raise ModelLoadError(f"{where}: encoder 'members' must name each of the {len(encoder_config.members)} encoders "
                             "its config stacks")
    return ModelConfig(
        encoder=_require(encoder, "name", str, f"{where} encoder"),
        encoder_config=encoder_config,
        decoder=_require(decoder, "name", str, f"{where} decoder"),
        decoder_hparams=_require(decoder, "hparams", dict, f"{where} decoder"),
        vocab_size=_require(decoder, "vocab_size", int, f"{where} decoder"),
        decoding=data.get("decoding") or {},
        metadata=data.get("metadata") or {},
        encoder_members=members,
    )


def read_config(folder: Path) -> ModelConfig:
    """Read and validate ``folder/config.json``."""
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: not a model folder (no such directory)")
    if not path.is_file():
        raise ModelLoadError(f"{folder}: not a model folder (no {CONFIG_FILE})")
    return parse_config(read_json(path), str(path))


def read_vocab(folder: Path, expected_size: int) -> Vocabulary:
    """Read ``folder/vocab.json`` and check it has ``expected_size`` tokens."""
    path = folder / VOCAB_FILE
    try:
        vocab = Vocabulary.from_json(read_json(path))
    except ValueError as error:
        raise ModelLoadError(f"{path}: {error}") from None
    if len(vocab) != expected_size:
        raise ModelLoadError(
            f"{path}: has {len(vocab)} tokens but config.json says the decoder was trained on {expected_size}"
        )
    return vocab


def read_weights(folder: Path, module: torch.nn.Module, prefix: str = "") -> None:
    """Load ``folder/model.safetensors`` into ``module`` after checking names and shapes.

    With ``prefix`` (e.g. ``"decoder."``) only those tensors are read, into the submodule.
    """
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise ModelLoadError(f"{path}: missing")
    try:
        tensors = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: not a valid safetensors file ({one_line(error)})") from None
    tensors = {name[len(prefix) :]: value for name, value in tensors.items() if name.startswith(prefix)}
    expected = module.state_dict()
    problems = [f"missing {name}" for name in expected if name not in tensors]
    problems += [f"unexpected {name}" for name in tensors if name not in expected]
    problems += [
        f"{name} has shape {tuple(tensors[name].shape)}, expected {tuple(value.shape)}"
        for name, value in expected.items()
        if name in tensors and tensors[name].shape != value.shape
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ModelLoadError(f"{path}: weights do not match the model in config.json: {shown}")
    module.load_state_dict({name: tensors[name].to(value.dtype) for name, value in expected.items()})


def write_model_folder(
    folder: Path, config: ModelConfig, vocab: Vocabulary, module: torch.nn.Module, dtype: torch.dtype | None
) -> None:
    """Write the three files of a model folder, each atomically."""
    tensors = {}
    for name, value in module.state_dict().items():
        value = value.detach().cpu()
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[name] = value.contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / WEIGHTS_FILE, save(tensors))
    atomic_write_text(folder / VOCAB_FILE, json.dumps(vocab.to_json(), indent=0) + "\n")
    atomic_write_text(folder / CONFIG_FILE, json.dumps(config.to_json(), indent=2) + "\n")
