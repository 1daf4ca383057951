"""Training configuration: a dataclass read from a JSON/TOML file and/or command-line flags."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved beside its checkpoints)."""

    data: str  # a Flickr folder, or a COCO / Karpathy JSON file (then set `images`)
    output: str  # run folder: checkpoints/, best/ (the selected model), metrics.jsonl
    images: str | None = None
    train_splits: list[str] = field(default_factory=lambda: ["train"])
    val_split: str = "val"
    encoder: str = "efficientnet_lite0"
    decoder: str = "attention_lstm"
    decoder_hparams: dict[str, Any] = field(default_factory=dict)
    min_word_count: int = 5
    max_words: int = 20  # longer training captions are cut
    init_from: str | None = None  # start from this model folder: its encoder, decoder and vocabulary
    reset_decoder: bool = False  # with init_from: keep its encoder and vocabulary, train a new decoder (ensembles)
    objective: Literal["xe", "scst"] = "xe"  # cross-entropy, or self-critical training with a CIDEr-D reward
    scst_samples: int = 5  # sampled captions per image (scst); a batch is batch_size images
    mode: Literal["frozen", "finetune"] = "frozen"  # frozen: cached features; finetune: train top encoder stages
    finetune_stages: int = 2
    augment: bool = True  # finetune mode: random zoom, shift, colour and caption-safe mirroring
    cache_activations: bool = False  # finetune mode: run the frozen stages once per image (CPU; no augment)
    classifier_distillation: float = 1.0  # finetune mode: keep the encoder's classifier (open-world guidance) true
    teacher: str | None = None  # word-level distillation: a model (folder or name) of the same vocabulary
    teacher_weight: float = 0.5  # the teacher's share of the word loss; the reference words keep the rest
    teacher_top_k: int = 8  # the teacher's most likely next words kept per position
    epochs: int = 30
    batch_size: int = 64
    lr: float = 4e-4
    encoder_lr: float = 1e-4
    weight_decay: float = 0.0
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 200
    label_smoothing: float = 0.1
    grad_clip: float = 5.0
    scheduled_sampling: float = 0.0  # probability of feeding the model's own word, ramped up over the epochs
    attention_regularization: float = 1.0  # doubly stochastic attention (Show, Attend and Tell)
    select_metric: str = "CIDEr"  # or BLEU-4
    patience: int = 5  # epochs without improvement before stopping
    val_beam_size: int = 3
    val_images: int | None = None  # validate on the first N validation images only
    length_penalty: float = 0.0  # shipped with the model as its decoding default
    seed: int = 0
    device: str | None = None
    amp: bool = True  # bfloat16 autocast on CUDA
    num_workers: int = 1  # processes that read images (feature extraction, the fine-tuning image store)
    cache_dir: str | None = None
    save_dtype: Literal["float16", "float32"] = "float16"

    def __post_init__(self) -> None:
        if self.select_metric not in ("CIDEr", "BLEU-4"):
            raise ValueError(f"select_metric must be CIDEr or BLEU-4, not {self.select_metric!r}")
        if self.mode not in ("frozen", "finetune"):
            raise ValueError(f"mode must be frozen or finetune, not {self.mode!r}")
        if self.objective not in ("xe", "scst"):
            raise ValueError(f"objective must be xe or scst, not {self.objective!r}")
        if self.objective == "scst" and self.scst_samples < 2:
            raise ValueError("scst_samples must be >= 2 (the other samples are the baseline)")
        if self.cache_activations and self.augment:
            raise ValueError("cache_activations computes each image's activations once, so it cannot augment: "
                             "set augment = false")
        if self.teacher is not None and (self.objective != "xe" or not 0.0 < self.teacher_weight <= 1.0
                                         or self.teacher_top_k < 1):
            raise ValueError("a teacher needs objective xe, teacher_weight in (0, 1] and teacher_top_k >= 1")
        if self.reset_decoder and not self.init_from:
            raise ValueError("reset_decoder needs init_from (the model whose encoder and vocabulary are kept)")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a ``.json`` or ``.toml`` file; ``overrides`` (not None) win."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return cls.from_dict({**data, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``"decoder_hparams.hidden_dim=512"`` -> ``(["decoder_hparams", "hidden_dim"], 512)``."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_assignments(data: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply ``--set`` assignments to a config dict (nested keys with dots)."""
    for text in assignments:
        path, value = parse_assignment(text)
        target = data
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
    return data
