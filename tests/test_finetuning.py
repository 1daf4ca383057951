"""Fine-tuning the encoder: images kept in memory, caption-safe augmentation, a classifier kept true."""

import pytest
import torch
from conftest import tiny_trunk
from test_training import config, interrupt_in_third_epoch_then_resume, metrics
from torch import nn

from captioner import Captioner, EncoderConfig, FeatureMapEncoder, hookimpl
from captioner.images import load_image, preprocess
from captioner.plugins import register_plugin, unregister_plugin
from captioner.training import Trainer
from captioner.training.augment import Augmentation, mirrorable
from captioner.training.distillation import classifier_drift
from captioner.training.pixels import PixelStore
from captioner.training.sources import DecodedPixels, FrozenStageActivations

CLASSIFIER_CONFIG = EncoderConfig(input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), feature_dim=8,
                                  spatial=True, classes="imagenet-1k")


def make_classifying_encoder(pretrained: bool = True, weights=None) -> FeatureMapEncoder:
    return FeatureMapEncoder(tiny_trunk(), CLASSIFIER_CONFIG, nn.Linear(8, 1000))


class ClassifyingEncoderPlugin:
    @hookimpl
    def register_encoders(self, register):
        register("tiny_cnn_classifier", make_classifying_encoder, config=CLASSIFIER_CONFIG)


@pytest.fixture(scope="module", autouse=True)
def classifying_encoder_plugin():
    name = register_plugin(ClassifyingEncoderPlugin(), "tiny-test-classifying-encoder")
    yield
    unregister_plugin(name)


def test_captions_that_name_a_side_forbid_mirroring():
    assert mirrorable("A dog runs on the grass .")
    assert not mirrorable("a man holds a ball in his left hand")
    assert not mirrorable("The RIGHT lane")
    assert mirrorable("a bright light")  # whole words only


def test_augmentation_mirrors_only_where_the_caption_allows():
    torch.manual_seed(0)
    pixels = torch.rand(4, 3, 8, 8)
    mirror_only = Augmentation(min_scale=1.0, mirror=1.0, brightness=0.0, contrast=0.0)
    out = mirror_only(pixels, torch.tensor([True, False, True, False]))
    assert torch.allclose(out[0], pixels[0].flip(-1), atol=1e-5) and torch.allclose(out[2], pixels[2].flip(-1), atol=1e-5)
    assert torch.allclose(out[1], pixels[1], atol=1e-5) and torch.allclose(out[3], pixels[3], atol=1e-5)


def test_augmentation_is_seeded_and_stays_in_range():
    pixels = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    augmentation = Augmentation()
    first = augmentation(pixels, generator=torch.Generator().manual_seed(7))
    again = augmentation(pixels, generator=torch.Generator().manual_seed(7))
    other = augmentation(pixels, generator=torch.Generator().manual_seed(8))
    assert first.shape == pixels.shape and torch.equal(first, again) and not torch.equal(first, other)
    assert first.min() >= 0 and first.max() <= 1


def test_pixel_store_gives_what_preprocessing_gives(tiny_flickr):
    paths = sorted((tiny_flickr / "images").glob("*.jpg"))
    store = PixelStore(paths, CLASSIFIER_CONFIG, torch.device("cpu"), progress=False)
    assert store.pixels.dtype == torch.uint8 and store.pixels.shape == (len(paths), 3, 32, 32)
    expected = torch.stack([preprocess(load_image(paths[i]), CLASSIFIER_CONFIG) for i in (3, 0)])
    assert torch.allclose(store.batch(torch.tensor([3, 0])), expected, atol=1e-6)


def test_classifier_drift_is_zero_for_the_same_logits_and_grows_apart():
    logits = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    assert classifier_drift(logits, logits).abs() < 1e-6
    assert classifier_drift(logits, logits * 3) > classifier_drift(logits, logits * 1.5) > 0


def drift_after_finetuning(tiny_flickr, tmp_path, weight: float) -> float:
    cfg = config(tiny_flickr, tmp_path / str(weight), encoder="tiny_cnn_classifier", mode="finetune",
                 finetune_stages=4, epochs=2, encoder_lr=3e-2, classifier_distillation=weight)
    trainer = Trainer(cfg, progress=False)
    pixels = trainer.data.train.batch(torch.arange(len(trainer.data.train)))
    with torch.no_grad():
        before = trainer.captioner.encoder(pixels).class_logits
    trainer.run()
    with torch.no_grad():
        after = trainer.captioner.encoder.eval()(pixels).class_logits
    return classifier_drift(after, before).item()


def test_distillation_keeps_the_fine_tuned_classifier_close_to_where_it_started(tiny_flickr, tmp_path):
    free, held = (drift_after_finetuning(tiny_flickr, tmp_path, weight) for weight in (0.0, 50.0))
    assert held < free / 2
    assert "classifier_drift" in metrics(tmp_path / "50.0" / "run")[0]
    assert "classifier_drift" not in metrics(tmp_path / "0.0" / "run")[0]


def test_init_from_keeps_that_model_encoder_and_reset_decoder_starts_a_new_decoder(tiny_flickr, tmp_path):
    first = Trainer(config(tiny_flickr, tmp_path / "first", mode="finetune", finetune_stages=4, epochs=1,
                           encoder_lr=1e-2), progress=False).run()
    base = Captioner.from_pretrained(first, device="cpu")
    member = Trainer(config(tiny_flickr, tmp_path / "member", init_from=str(first), reset_decoder=True, seed=1,
                            epochs=1), progress=False).run()
    trained = Captioner.from_pretrained(member, device="cpu")
    assert trained.vocab == base.vocab
    for name, value in base.encoder.state_dict().items():  # the fine-tuned encoder, not a fresh one
        assert torch.equal(trained.encoder.state_dict()[name], value), name
    weight = "output.weight"
    assert not torch.equal(trained.decoder.state_dict()[weight], base.decoder.state_dict()[weight])


def test_reset_decoder_needs_a_model_to_start_from(tiny_flickr, tmp_path):
    with pytest.raises(ValueError, match="reset_decoder needs init_from"):
        config(tiny_flickr, tmp_path, reset_decoder=True)


@pytest.mark.parametrize("first_stage", [1, 2, 3])
def test_encoder_stages_compose_the_encoder(first_stage):
    torch.manual_seed(0)
    encoder = make_classifying_encoder().eval()
    images = torch.randn(2, 3, 32, 32)
    hidden = encoder.activations(images, first_stage)
    whole, resumed = encoder(images), encoder.forward_from(hidden, first_stage)
    assert all(torch.allclose(getattr(whole, f), getattr(resumed, f)) for f in ("pooled", "grid", "class_logits"))


def test_efficientnet_stages_compose_the_network():
    from captioner import create_encoder

    torch.manual_seed(0)
    encoder = create_encoder("efficientnet_lite0", pretrained=False).eval()
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        whole = encoder(images)
        resumed = encoder.forward_from(encoder.activations(images, 7), 7)  # block 6 and the head conv run last
    assert torch.allclose(whole.pooled, resumed.pooled, atol=1e-5)
    assert torch.allclose(whole.class_logits, resumed.class_logits, atol=1e-4)


def test_cached_activations_train_like_pixels_without_augmentation(tiny_flickr, tmp_path):
    runs = {}
    for cached in (False, True):
        cfg = config(tiny_flickr, tmp_path / str(cached), encoder="tiny_cnn_classifier", mode="finetune",
                     finetune_stages=2, epochs=2, encoder_lr=1e-2, augment=False, cache_activations=cached)
        trainer = Trainer(cfg, progress=False)
        bottom = trainer.captioner.encoder.trunk[0].weight.detach().clone()
        trainer.run()
        assert torch.equal(trainer.captioner.encoder.trunk[0].weight, bottom)  # below the tuned stages: frozen
        assert isinstance(trainer.data, FrozenStageActivations if cached else DecodedPixels)
        runs[cached] = metrics(tmp_path / str(cached) / "run")
    for pixels, cached in zip(runs[False], runs[True]):  # the cache holds float16 activations: near, not equal
        assert cached["train_loss"] == pytest.approx(pixels["train_loss"], rel=1e-2)
        assert cached["classifier_drift"] == pytest.approx(pixels["classifier_drift"], rel=0.1, abs=1e-4)


def test_cached_activations_cannot_augment(tiny_flickr, tmp_path):
    with pytest.raises(ValueError, match="cannot augment"):
        config(tiny_flickr, tmp_path, mode="finetune", cache_activations=True)


def test_fine_tuning_resumes_exactly_with_the_classifier_held_to_where_it_started(tiny_flickr, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from captioner.training import train

    base = Trainer(config(tiny_flickr, tmp_path / "base", encoder="tiny_cnn_classifier", epochs=1),
                   progress=False).run()

    def finetune(name):
        return config(tiny_flickr, tmp_path / name, encoder="tiny_cnn_classifier", init_from=str(base), mode="finetune",
                      finetune_stages=2, epochs=3, encoder_lr=1e-2, classifier_distillation=5.0)

    train(finetune("straight"), progress=False)
    interrupt_in_third_epoch_then_resume(finetune("resumed"), monkeypatch)

    a, b = (load_file(tmp_path / name / "run" / "checkpoints" / "epoch-0003" / "model.safetensors")
            for name in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    drifts = [metrics(tmp_path / name / "run")[2]["classifier_drift"] for name in ("straight", "resumed")]
    assert drifts[0] == drifts[1]  # held to the init_from encoder after the resume too
