"""Training caption models: configuration, checkpoints and the training loop."""

from .config import TrainConfig
from .trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
