"""A short note on what the serving model was trained on and what it does not know."""

from __future__ import annotations

from pathlib import Path

from ..captioner import Captioner

DATASETS = {
    "flickr8k": "Flickr8k: 8,000 everyday photos from Flickr, mostly people and dogs, each with five English captions",
    "flickr30k": "Flickr30k: 31,000 everyday photos from Flickr, each with five English captions",
    "coco": "COCO: 120,000 photos of common objects in context, each with five English captions",
}
SPECIAL_TOKENS = 4  # <pad> <start> <end> <unk>


def about_model(label: str, captioner: Captioner) -> str:
    """Markdown: the training data (from the model's metadata), its vocabulary, and its limits."""
    data = captioner.metadata.get("training", {}).get("data")
    name = Path(str(data)).name.lower() if data else ""
    source = DATASETS.get(name, f"`{Path(str(data)).name}`" if data else "data its metadata does not name")
    sentences = [
        f"#### About this model\n`{label}` learnt to caption from {source}. It writes English in the style of those "
        f"captions, from a vocabulary of {len(captioner.vocab) - SPECIAL_TOKENS:,} words.",
    ]
    if captioner.encoder_config.classes == "imagenet-1k":
        sentences.append("Its image encoder also recognises the 1,000 ImageNet kinds of things and names the one it "
                         "is surest of in the caption (\"Name recognised objects\" in the settings).")
    sentences.append("It does not read text, know who people are, count reliably or know places and events it has "
                     "not seen, and it can be confidently wrong: check a caption before you rely on it. Translations "
                     "are made by a separate translator, word order and all.")
    return " ".join(sentences)
