"""Weight averaging: one model whose weights are the mean of several of the same shape.

Averaging the checkpoints of one training run (for example the best epoch and the last
ones) usually scores a little better than any of them.
"""

from __future__ import annotations

from pathlib import Path

from .captioner import Captioner
from .consensus import encoder_fingerprint
from .errors import ModelLoadError


def _architecture(captioner: Captioner) -> tuple:
    config = captioner.model_config()
    return config.encoder, config.encoder_config, config.decoder, config.decoder_hparams


def average_models(folders: list[str | Path], device: str | None = "cpu") -> Captioner:
    """The first model of ``folders`` with every floating-point tensor replaced by the mean over all.

    It keeps the first model's caption memory and people detector only if its encoder is unchanged (a frozen one):
    both read the encoder's features.
    """
    if not folders:
        raise ValueError("average_models needs at least one model folder")
    captioner = Captioner.from_pretrained(folders[0], device=device)
    encoder_before = encoder_fingerprint(captioner.encoder)
    state = captioner.model.state_dict()
    total = {name: value.cpu().double() for name, value in state.items() if value.is_floating_point()}
    for folder in folders[1:]:
        other = Captioner.from_pretrained(folder, device="cpu")  # validates config, vocabulary and shapes
        if _architecture(other) != _architecture(captioner) or other.vocab != captioner.vocab:
            raise ModelLoadError(f"{folder}: not the same architecture and vocabulary as {folders[0]}; cannot average")
        for name, value in other.model.state_dict().items():
            if name in total:
                total[name] += value.double()
    captioner.model.load_state_dict(
        {name: (total[name] / len(folders)).to(value.dtype) if name in total else value for name, value in state.items()}
    )
    captioner.metadata["averaged_from"] = [str(Path(folder)) for folder in folders]
    if captioner.memory is not None and captioner.memory.encoder != encoder_fingerprint(captioner.encoder):
        # The average changed the encoder (fine-tuned checkpoints): the first folder's memory no longer fits.
        captioner.memory = None
        captioner.decoding = captioner.decoding.updated(consensus_neighbours=0)
    if encoder_fingerprint(captioner.encoder) != encoder_before:
        captioner.people_detector = None  # so does its people detector
    return captioner
