"""The Python API: every kind of image input, batching, errors and post-processors."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from captioner import (
    Captioner,
    CaptionerError,
    CaptionResult,
    ImageError,
    PostProcessError,
    PostProcessor,
    UnknownNameError,
    hookimpl,
)
from captioner.device import fast_bfloat16, pick_device
from conftest import random_photo


def as_inputs(array: np.ndarray, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(array).save(path)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return {
        "path": str(path),
        "pathlib": path,
        "pil": Image.fromarray(array),
        "bytes": buffer.getvalue(),
        "array": array,
        "tensor": torch.from_numpy(array).permute(2, 0, 1),
        "float tensor": torch.from_numpy(array).permute(2, 0, 1).float() / 255,
    }


def test_every_input_kind_gives_the_same_caption(tiny_captioner, tmp_path):
    inputs = as_inputs(random_photo(5), tmp_path)
    results = tiny_captioner.caption(list(inputs.values()), max_length=6)
    assert len(results) == len(inputs)
    assert len({r.text for r in results}) == 1 and results[0].text
    assert len({round(r.score, 5) for r in results}) == 1
    assert results[0].image == str(tmp_path / "photo.png") and results[3].image == "<bytes #3>"


def test_single_image_returns_one_result_with_nbest(tiny_captioner):
    result = tiny_captioner.caption(random_photo(1), beam_size=4, max_length=6)
    assert isinstance(result, CaptionResult) and result.ok
    assert len(result.candidates) == 4
    assert result.text == result.candidates[0].text and result.score == result.candidates[0].score
    assert [c.score for c in result.candidates] == sorted((c.score for c in result.candidates), reverse=True)
    assert "<unk>" not in result.text


def test_batching_does_not_change_results(tiny_captioner):
    images = [random_photo(seed, size=(20 + seed, 30)) for seed in range(7)]
    together = [r.to_dict() for r in tiny_captioner.caption(images, max_length=6, batch_size=32)]
    in_pairs = [r.to_dict() for r in tiny_captioner.caption(images, max_length=6, batch_size=2)]
    assert [d["caption"] for d in together] == [d["caption"] for d in in_pairs]
    assert [d["score"] for d in together] == pytest.approx([d["score"] for d in in_pairs], abs=1e-4)


def test_batch_tensor_and_grayscale_and_rgba(tiny_captioner):
    batch = torch.randint(0, 256, (3, 3, 24, 24), dtype=torch.uint8)
    assert len(tiny_captioner.caption(batch, max_length=4)) == 3
    gray = Image.fromarray(random_photo(2)[:, :, 0])
    rgba = Image.fromarray(np.dstack([random_photo(3), np.full((40, 56), 128, np.uint8)]))
    assert all(r.ok for r in tiny_captioner.caption([gray, rgba], max_length=4))


def test_bad_images_in_a_batch_do_not_stop_the_others(tiny_captioner, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    good = random_photo(4)
    results = tiny_captioner.caption(
        [good, str(tmp_path / "empty.jpg"), str(tmp_path / "missing.jpg"), str(tmp_path / "text.png"), good],
        max_length=5,
    )
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert results[1].error.startswith(str(tmp_path / "empty.jpg") + ": ")
    assert results[2].error == f"{tmp_path / 'missing.jpg'}: no such file"
    assert "\n" not in results[3].error
    assert results[0].text == results[4].text
    assert results[1].to_dict() == {"image": str(tmp_path / "empty.jpg"), "error": results[1].error}


def test_single_bad_image_raises_naming_it(tiny_captioner, tmp_path):
    with pytest.raises(ImageError, match="nope.jpg: no such file"):
        tiny_captioner.caption(str(tmp_path / "nope.jpg"))
    with pytest.raises(ImageError, match="unsupported input type int"):
        tiny_captioner.caption(42)


def test_decoding_methods_and_unknown_options(tiny_captioner):
    image = random_photo(6)
    greedy = tiny_captioner.caption(image, method="greedy", max_length=6)
    assert greedy.text == tiny_captioner.caption(image, beam_size=1, length_penalty=0.0, max_length=6).text
    first = tiny_captioner.caption(image, method="sample", seed=3, max_length=6).text
    assert first == tiny_captioner.caption(image, method="sample", seed=3, max_length=6).text
    with pytest.raises(TypeError, match="unknown decoding option"):
        tiny_captioner.caption(image, beam_width=3)


def test_attention_decoder_reports_where_it_looked(vocab):
    captioner = Captioner("tiny_cnn", "attention_lstm", vocab, device="cpu",
                          decoder_hparams={"embed_dim": 8, "hidden_dim": 8, "attention_dim": 4, "memory_dim": 8})
    result = captioner.caption(random_photo(7), max_length=5)
    best = result.candidates[0]
    assert best.attention.shape[0] >= len(best.words) and best.attention.shape[1] == 16  # 4x4 grid


def test_decoder_options_is_the_deprecated_name_of_decoder_hparams(vocab):
    hparams = {"embed_dim": 8, "hidden_dim": 12}
    with pytest.warns(DeprecationWarning, match="decoder_options is deprecated.*use decoder_hparams"):
        old = Captioner("tiny_cnn", "gru", vocab, device="cpu", decoder_options=hparams)
    assert old.decoder.hparams == Captioner("tiny_cnn", "gru", vocab, device="cpu", decoder_hparams=hparams).decoder.hparams
    with pytest.raises(TypeError, match="not both decoder_hparams and its deprecated name decoder_options"):
        Captioner("tiny_cnn", "gru", vocab, decoder_hparams=hparams, decoder_options=hparams)


def test_incompatible_parts_are_refused(vocab):
    with pytest.raises(CaptionerError, match="-d features"):
        from captioner import create_decoder
        Captioner("tiny_cnn", create_decoder("lstm", vocab_size=len(vocab), feature_dim=99), vocab)


def test_device_choice():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(None).type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(CaptionerError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(CaptionerError, match="not a torch device"):
        pick_device("toaster")


def test_bfloat16_only_where_the_hardware_runs_it(monkeypatch):
    assert not fast_bfloat16(torch.device("cuda"))  # CAPTIONER_BFLOAT16=0 (conftest) turns it off everywhere
    monkeypatch.delenv("CAPTIONER_BFLOAT16")
    assert fast_bfloat16(torch.device("cuda")) and not fast_bfloat16(torch.device("mps"))
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert fast_bfloat16(torch.device("cpu"))
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not fast_bfloat16(torch.device("cpu"))
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the probe: assume emulation
    assert not fast_bfloat16(torch.device("cpu"))


def test_the_encoder_runs_under_bfloat16_autocast_only_when_mixed_precision_is_on(tiny_captioner):
    pixels = torch.rand(3, 3, 32, 32)
    tiny_captioner.openvino = False  # PyTorch's autocast (OpenVINO's own bfloat16: test_openvino_encoder.py)
    tiny_captioner.mixed_precision = False
    exact = tiny_captioner.encode(pixels)
    assert torch.equal(exact.pooled, tiny_captioner.inference_encoder()(
        pixels.contiguous(memory_format=torch.channels_last)).pooled)
    tiny_captioner.mixed_precision = True
    mixed = tiny_captioner.encode(pixels)
    assert mixed.pooled.dtype == torch.float32 and not torch.equal(mixed.pooled, exact.pooled)  # rounded to bf16
    assert torch.allclose(mixed.pooled, exact.pooled, rtol=0.05, atol=0.05)


class Shout(PostProcessor):
    """Upper-case the caption and add the option."""

    effect = "rewrite"

    def __init__(self, option=None):
        super().__init__()
        self.suffix = option or "!"

    def process(self, results):
        return [result.text.upper() + self.suffix for result in results]


class Explode(PostProcessor):
    def process(self, results):
        raise RuntimeError("kaboom")


class Length(PostProcessor):
    def process(self, results):
        return [len(result.text.split()) for result in results]


class ShoutPlugin:
    @hookimpl
    def register_postprocessors(self, register):
        register("shout", Shout)
        register("explode", Explode)
        register("length", Length)


def test_postprocessors_chain_in_order_and_failures_are_recorded(tiny_captioner, captioner_plugin, tmp_path):
    captioner_plugin(ShoutPlugin(), "shout-plugin")
    (tmp_path / "bad.jpg").write_bytes(b"x")
    good, bad = tiny_captioner.caption([random_photo(8), str(tmp_path / "bad.jpg")], max_length=5,
                                       postprocess=["length", "shout:?!", "explode"])
    model_caption = good.candidates[0].text
    assert good.text == model_caption.upper() + "?!" and good.original_text == model_caption
    assert good.extras["length"] == len(model_caption.split())  # ran before the rewrite
    assert good.postprocess_errors == {"explode": "RuntimeError: kaboom (plugin 'shout-plugin')"}
    data = good.to_dict()
    assert data["caption"] == good.text and data["original_caption"] == model_caption and data["length"] >= 1
    assert bad.error and not bad.extras and bad.rewritten is None


def test_bad_postprocessor_specs_raise_before_captioning(tiny_captioner, captioner_plugin):
    captioner_plugin(ShoutPlugin(), "shout-plugin")
    with pytest.raises(PostProcessError, match="post-processor 'length:3': takes no option, got '3'"):
        tiny_captioner.caption([random_photo(8)], postprocess=["length:3"])
    with pytest.raises(UnknownNameError, match="unknown post-processor 'nope'; installed post-processors: .*shout"):
        tiny_captioner.caption([random_photo(8)], postprocess=["nope"])


def test_a_result_is_one_table_row_for_csv_and_parquet():
    from captioner.objects import RecognizedObject
    from captioner.results import ROW_COLUMNS, Candidate, CaptionResult

    result = CaptionResult("a.jpg", [Candidate("un perro", ["un", "perro"], -0.5, -1.0, True)],
                           extras={"sentiment": {"label": "neutral"}}, postprocess_errors={"hashtags": "boom"},
                           language="es", rewritten="un perro",
                           objects=[RecognizedObject("Egyptian cat", "n02124075", 0.82, "cat")])
    row = result.to_row()
    assert tuple(row) == ROW_COLUMNS
    assert row["caption"] == "un perro" and row["original_caption"] == "un perro"
    assert row["objects"] == "Egyptian cat 0.82" and row["error"] is None
    assert json.loads(row["postprocessing"]) == {"sentiment": {"label": "neutral"}, "postprocess_errors": {"hashtags": "boom"}}
    failed = CaptionResult("b.jpg", error="b.jpg: not a readable image").to_row()
    assert failed["caption"] is None and failed["error"] == "b.jpg: not a readable image" and failed["postprocessing"] is None
