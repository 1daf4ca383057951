"""Give a model folder trained on a frozen encoder that encoder's own ImageNet classifier.

usage: python scripts/attach_classifier.py MODEL_FOLDER

Models trained before encoders kept their classifier head have none, so they cannot
recognise objects for open-world captions. When the encoder was frozen during training
(``metadata.training.mode == "frozen"``), its weights are still the pretrained ones and
the pretrained head fits them exactly: this builds the registered encoder with its
pretrained weights, checks that its trunk equals the model's, and saves the model
again with the head (weights in the dtype the folder already uses).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from captioner import Captioner, create_encoder
from captioner.model_folder import WEIGHTS_FILE


def main(folder: Path) -> None:
    model = Captioner.from_pretrained(folder, device="cpu")
    if model.metadata.get("training", {}).get("mode") != "frozen":
        sys.exit(f"{folder}: the encoder was not frozen in training, so the pretrained head does not fit it")
    pretrained = create_encoder(model.model_config().encoder)
    if getattr(pretrained, "classifier", None) is None or pretrained.config.classes is None:
        sys.exit(f"{folder}: encoder {model.model_config().encoder!r} has no classifier")
    for name, value in pretrained.trunk.state_dict().items():
        saved = model.encoder.trunk.state_dict()[name]
        if not torch.allclose(saved.float(), value.float(), atol=1e-2, rtol=1e-2):
            sys.exit(f"{folder}: encoder weight {name} differs from the pretrained one")
    model.encoder.classifier = pretrained.classifier
    model.encoder_config = model.encoder.config = pretrained.config
    dtype = next(t.dtype for t in load_file(folder / WEIGHTS_FILE).values() if t.is_floating_point())
    model.save(folder, dtype=dtype)
    print(f"{folder}: classifier for {pretrained.config.classes!r} attached")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
