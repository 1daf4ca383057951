"""Model selection during training: the best validation score so far, and when to stop."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EarlyStopping:
    """Tracks the best score (higher is better) and the epochs since it last improved."""

    patience: int
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, epoch: int, score: float) -> bool:
        """Record an epoch's score; True if it is the best so far."""
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def exhausted(self) -> bool:
        """``patience`` epochs in a row without improvement."""
        return self.bad_epochs >= self.patience

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores to resume exactly (``patience`` comes from the config)."""
        return {key: value for key, value in asdict(self).items() if key != "patience"}

    def load(self, state: dict[str, Any]) -> None:
        self.best_score, self.best_epoch, self.bad_epochs = state["best_score"], state["best_epoch"], state["bad_epochs"]
