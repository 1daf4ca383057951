"""The trained default model shipped in assets/ loads offline and captions real photos."""

from pathlib import Path

import pytest

from captioner import Captioner
from captioner.encoder_stack import EncoderStack
from captioner.model_catalog import DEFAULT_MODEL, describe_models, resolve_model

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "assets" / "examples").glob("*.jpg"))


@pytest.fixture(scope="module")
def default_model():
    return Captioner.from_pretrained(device="cpu")


def test_default_model_is_shipped_small_and_listed():
    folder = resolve_model(None)
    assert folder.name == DEFAULT_MODEL
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size <= 40 * 1024 * 1024
    assert (folder / "README.md").is_file()  # the model card
    assert any(info.name == DEFAULT_MODEL and info.error is None for info in describe_models())


def test_default_model_captions_the_example_photos(default_model):
    results = default_model.caption([str(p) for p in EXAMPLES])
    assert len(results) == 3
    for result in results:
        assert result.ok and len(result.text.split()) >= 3
        assert "<unk>" not in result.text and len(result.candidates) == default_model.decoding.beam_size
    again = default_model.caption([str(p) for p in EXAMPLES])
    assert [r.to_dict() for r in results] == [r.to_dict() for r in again]  # deterministic


def test_default_model_sees_a_dog_in_a_flickr8k_validation_photo(default_model):
    shared = ROOT.parent / "shared" / "data" / "flickr8k"
    if not shared.is_dir():
        pytest.skip("../shared/data/flickr8k is not present")
    # a validation photo whose five references all mention a dog
    image = shared / "images" / "3695064885_a6922f06b2.jpg"
    assert "dog" in default_model.caption(str(image)).text.split()


def test_the_more_accurate_ensemble_ships_beside_it_and_names_the_cat():
    ensemble = Captioner.from_pretrained("flickr8k-ensemble", device="cpu")
    assert isinstance(ensemble.encoder, EncoderStack)
    assert [member.registered_name for member in ensemble.encoder.encoders] == [
        "efficientnet_lite0", "efficientnet_lite2", "efficientnet_lite1", "efficientnet_lite0"]
    assert ensemble.decoder.config.sources == (0, 1, 2, 3)
    assert (resolve_model("flickr8k-ensemble") / "README.md").is_file()  # its model card
    results = {Path(r.image).name: r for r in ensemble.caption([str(p) for p in EXAMPLES])}
    assert all(r.ok and "<unk>" not in r.text for r in results.values())
    assert "cat" in results["cat.jpg"].text.split()  # four classifiers agree on the cat; guidance names it
    # Its beam is reranked by consensus with the captions of similar Flickr8k training photos (its memory).
    assert ensemble.memory is not None and len(ensemble.memory) == 6000
    assert ensemble.decoding.consensus_neighbours == 30
    cat = results["cat.jpg"]
    assert len(cat.candidates) == 3 and all(c.consensus is not None for c in cat.candidates)
