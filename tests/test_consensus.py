"""Consensus reranking: CIDEr-D against a caption memory, and the beam reordered by it."""

import json
import random
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from pycocoevalcap.cider.cider_scorer import CiderScorer

from captioner import Captioner
from captioner.cli import cli
from captioner.cider import Captions, CiderD
from captioner.consensus import MEMORY_FILE, CaptionMemory, encoder_fingerprint
from captioner.errors import ModelLoadError
from captioner.testing import random_photo
from captioner.vocab import tokenize

WORDS = "a dog cat man runs jumps in the grass park over ball red blue".split()


def test_cider_d_is_pycocoevalcaps_when_idf_comes_from_the_same_references():
    rng = random.Random(0)

    def sentence() -> list[str]:
        return [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]

    photos = [(sentence(), [sentence() for _ in range(5)]) for _ in range(40)]
    scorer = CiderScorer(n=4, sigma=6.0)
    for candidate, references in photos:
        scorer += (" ".join(candidate), [" ".join(r) for r in references])
    _, expected = scorer.compute_score()
    cider = CiderD([references for _, references in photos])
    ours = []
    for candidate, references in photos:  # scored beside two other candidates, against references packed in parts
        candidates = cider.pack([sentence(), candidate, [rng.choice(WORDS)]])
        ours.append(cider.consensus(candidates, Captions.join([cider.pack(references[:2]), cider.pack(references[2:])]))[1])
    np.testing.assert_allclose(ours, expected, rtol=1e-9)
    assert cider.score(photos[0][0], 0, photos[0][1]) == pytest.approx(expected[0])  # the self-critical reward


def memory_of(captions: list[list[str]]) -> CaptionMemory:
    """A memory whose photo ``i`` has the one-hot feature ``i``."""
    return CaptionMemory(torch.eye(len(captions)), captions, encoder="made in a test")


def test_agreement_is_with_the_nearest_photos_captions():
    memory = memory_of([["a cat sits on a mat", "a grey cat on a mat"], ["a dog runs in the park", "a dog in a park"],
                        ["a man rides a bike", "a man on a bike"]])
    query = torch.tensor([[0.9, 0.3, 0.0]])  # most like photo 0, then photo 1
    assert memory.nearest(query, 2) == [[0, 1]]
    candidates = [[tokenize("a dog runs in the park"), tokenize("a cat sits on a mat")]]
    [(agreement, score)] = memory.rerank_scores(query, candidates, [[0.0, -5.0]], neighbours=1)
    assert agreement[1] > agreement[0] == 0  # only photo 0's captions count
    np.testing.assert_allclose(score, agreement)  # weight 0: the model's own score is ignored
    [(_, weighted)] = memory.rerank_scores(query, candidates, [[0.0, -5.0]], neighbours=1, weight=1.0)
    np.testing.assert_allclose(weighted, agreement + [0.0, -5.0])


def test_the_generic_penalty_favours_the_specific_caption_over_the_stock_phrase():
    stock, specific = "a man in a red shirt", "a man climbs a rock wall"
    photos = [[stock, specific]] + [[stock, f"a man holds a {thing}"] if i % 2 else [f"a {thing} on a table"]
                                    for i, thing in enumerate(["cup", "book", "lamp", "phone", "plate", "clock"])]
    memory = memory_of(photos)
    candidates = [[tokenize(stock), tokenize(specific)]]
    query = torch.eye(len(photos))[:1]
    [(agreement, plain)] = memory.rerank_scores(query, candidates, [[0.0, 0.0]], neighbours=1)
    [(_, penalised)] = memory.rerank_scores(query, candidates, [[0.0, 0.0]], neighbours=1, generic=1.0)
    assert abs(agreement[0] - agreement[1]) < 0.5 * agreement.max()  # both are one of photo 0's captions
    assert penalised[1] - penalised[0] > plain[1] - plain[0] + 1.0
    assert penalised.argmax() == 1


def test_a_memory_needs_a_feature_row_and_a_caption_list_per_photo():
    with pytest.raises(ValueError, match=r"^\(3, 4\) features for 2 photos' captions$"):
        CaptionMemory(torch.zeros(3, 4), [["a"], ["b"]], "x")
    with pytest.raises(ValueError, match="^photo 1's captions must be a non-empty list of strings$"):
        CaptionMemory(torch.zeros(2, 4), [["a"], []], "x")
    with pytest.raises(ValueError, match="^photo 0's captions"):
        CaptionMemory(torch.zeros(2, 4), ["a dog", "a cat"], "x")  # a caption is not a list of captions
    with pytest.raises(ValueError, match="neighbours must be >= 1"):
        memory_of([["a dog"], ["a cat"]]).rerank_scores(torch.ones(1, 2), [[["a"]]], [[0.0]], neighbours=0)
    [(agreement, _)] = memory_of([["a dog"], ["a cat"]]).rerank_scores(torch.ones(1, 2), [[["a", "dog"]]], [[0.0]],
                                                                          neighbours=50)  # more than it holds
    assert agreement.shape == (1,) and agreement[0] > 0


def test_a_compressed_memory_finds_the_same_neighbours_in_less_room(tmp_path):
    generator = torch.Generator().manual_seed(0)
    directions = torch.randn(4, 64, generator=generator)  # photos that vary along 4 of 64 dimensions
    photos = torch.randn(200, 4, generator=generator) @ directions + 0.01 * torch.randn(200, 64, generator=generator)
    queries = torch.randn(20, 4, generator=generator) @ directions
    full = CaptionMemory(photos, [[f"photo {i}"] for i in range(200)], encoder="made in a test")
    small = full.compressed(4)
    assert small.features.shape == (200, 4) and small.feature_dim == 64 and small.captions == full.captions
    assert small.nearest(queries, 5) == full.nearest(queries, 5)
    (tmp_path / "full").mkdir()
    (tmp_path / "small").mkdir()
    full.save(tmp_path / "full")
    small.save(tmp_path / "small")
    assert (tmp_path / "small" / MEMORY_FILE).stat().st_size < (tmp_path / "full" / MEMORY_FILE).stat().st_size / 4
    loaded = CaptionMemory.load(tmp_path / "small")
    assert loaded is not None and loaded.projection is not None and loaded.feature_dim == 64
    assert loaded.nearest(queries, 5) == full.nearest(queries, 5)


def test_a_memory_is_compressed_once_to_fewer_components_than_it_has():
    memory = CaptionMemory(torch.randn(10, 8, generator=torch.Generator().manual_seed(0)),
                           [["a dog"]] * 10, encoder="made in a test")
    for components in (0, 8):
        with pytest.raises(ValueError, match=rf"^a memory of 10 photos' 8-d features can keep 1 to 7 "
                                             rf"components, not {components}$"):
            memory.compressed(components)
    with pytest.raises(ValueError, match="^this memory is already compressed to 3 components$"):
        memory.compressed(3).compressed(2)
    with pytest.raises(ValueError, match=r"^a \(8, 3\) projection does not lead to 2-d features$"):
        CaptionMemory(torch.zeros(10, 2), [["a dog"]] * 10, "x", torch.zeros(8, 3))


def photos_with_captions(tmp_path, vocab_words: list[str], count: int = 6) -> list:
    from captioner.data.readers import CaptionedImage

    rng = random.Random(1)
    images = []
    for i in range(count):
        path = tmp_path / f"photo{i}.png"
        Image.fromarray(random_photo(200 + i)).save(path)
        captions = tuple(" ".join(rng.choice(vocab_words) for _ in range(4)) for _ in range(3))
        images.append(CaptionedImage(path, captions))
    return images


@pytest.mark.parametrize("tiny_captioner", ["lstm"], indirect=True)
def test_a_captioner_reranks_its_beam_and_keeps_its_memory(tiny_captioner, vocab, tmp_path):
    from captioner.consensus import build_memory

    images = photos_with_captions(tmp_path, [w for w in vocab.tokens[4:]])
    errors: list[str] = []
    tiny_captioner.memory = build_memory(tiny_captioner, images + [images[0].__class__(tmp_path / "gone.jpg", ("a",))],
                                         batch_size=4, on_error=errors.append)
    assert len(tiny_captioner.memory) == len(images) and len(errors) == 1 and "gone.jpg" in errors[0]
    photo = random_photo(7)
    plain = tiny_captioner.caption(photo, beam_size=4, max_length=5)
    reranked = tiny_captioner.caption(photo, beam_size=4, max_length=5, consensus_neighbours=3)
    assert sorted(c.text for c in reranked.candidates) == sorted(c.text for c in plain.candidates)
    assert all(c.consensus is not None for c in reranked.candidates) and plain.candidates[0].consensus is None
    agreement = [c.consensus for c in reranked.candidates]
    assert agreement == sorted(agreement, reverse=True)  # weight 0: by agreement alone
    [best] = tiny_captioner.caption(photo, beam_size=4, n_best=1, max_length=5, consensus_neighbours=3).candidates
    assert best.text == reranked.candidates[0].text
    assert reranked.to_dict()["nbest"][0]["consensus"] == agreement[0]

    tiny_captioner.decoding = tiny_captioner.decoding.updated(consensus_neighbours=3)
    tiny_captioner.save(tmp_path / "model")
    loaded = Captioner.from_pretrained(tmp_path / "model")
    assert loaded.memory is not None and loaded.memory.captions == tiny_captioner.memory.captions
    torch.testing.assert_close(loaded.memory.features, tiny_captioner.memory.features, atol=1e-3, rtol=0)
    assert loaded.caption(photo, beam_size=4, max_length=5).text == reranked.text


@pytest.mark.parametrize("tiny_captioner", ["gru"], indirect=True)
def test_consensus_without_a_memory_or_with_the_wrong_one_is_a_clear_error(tiny_captioner, vocab, tmp_path):
    with pytest.raises(ValueError, match="caption memory"):
        tiny_captioner.caption(random_photo(1), consensus_neighbours=5)
    with pytest.raises(ValueError, match="consensus_neighbours must be >= 0"):
        tiny_captioner.caption(random_photo(1), consensus_neighbours=-1)
    folder = tmp_path / "model"
    tiny_captioner.save(folder)
    other = Captioner("tiny_cnn", "gru", vocab, device="cpu", decoder_hparams={"embed_dim": 16, "hidden_dim": 24})
    CaptionMemory(torch.zeros(2, other.encoder_config.feature_dim), [["a"], ["b"]],
                  encoder_fingerprint(other.encoder)).save(folder)  # another encoder's weights
    with pytest.raises(ModelLoadError, match=f"^{folder}: its caption memory was made with another encoder's"):
        Captioner.from_pretrained(folder)
    (folder / MEMORY_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match=f"^{folder / MEMORY_FILE}: SafetensorError"):
        Captioner.from_pretrained(folder)
    tiny_captioner.save(folder)  # saving a model without a memory removes the folder's old one
    assert not (folder / MEMORY_FILE).exists()
    config = json.loads((folder / "config.json").read_text())
    config["decoding"]["consensus_neighbours"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="rerank by consensus, but it has no caption memory"):
        Captioner.from_pretrained(folder)


@pytest.mark.parametrize("tiny_captioner", ["lstm"], indirect=True)
def test_an_ensemble_keeps_its_first_models_memory_and_an_average_drops_a_stale_one(tiny_captioner, vocab, tmp_path):
    from captioner.averaging import average_models
    from captioner.evidence import PeopleDetector
    from captioner.consensus import build_memory
    from captioner.ensembling import ensemble_models

    tiny_captioner.memory = build_memory(tiny_captioner, photos_with_captions(tmp_path, list(vocab.tokens[4:])))
    tiny_captioner.decoding = tiny_captioner.decoding.updated(consensus_neighbours=2)
    tiny_captioner.people_detector = PeopleDetector(8, 1000)  # reads the encoder's features too
    tiny_captioner.save(tmp_path / "first")
    torch.manual_seed(1)
    other = Captioner("tiny_cnn", "lstm", vocab, device="cpu", decoder_hparams={"embed_dim": 16, "hidden_dim": 24})
    other.save(tmp_path / "second")  # other encoder weights

    ensemble = ensemble_models([tmp_path / "first", tmp_path / "second"])
    assert ensemble.memory is tiny_captioner.memory or ensemble.memory.captions == tiny_captioner.memory.captions
    ensemble.save(tmp_path / "ensemble")
    assert Captioner.from_pretrained(tmp_path / "ensemble").caption(random_photo(2)).candidates[0].consensus is not None

    averaged = average_models([tmp_path / "first", tmp_path / "second"])
    assert averaged.memory is None and averaged.decoding.consensus_neighbours == 0 and averaged.people_detector is None
    same = average_models([tmp_path / "first", tmp_path / "first"])  # the encoder unchanged: the memory fits
    assert same.memory is not None and same.decoding.consensus_neighbours == 2 and same.people_detector is not None


@pytest.mark.parametrize("tiny_captioner", ["attention_lstm"], indirect=True)
def test_the_memory_command_adds_a_memory_and_its_decoding_default(tiny_captioner, tiny_flickr, tmp_path):
    tiny_captioner.save(tmp_path / "model")
    result = CliRunner().invoke(cli, ["memory", str(tmp_path / "model"), "--data", str(tiny_flickr),
                                      "-o", str(tmp_path / "remembering"), "--set", "consensus_neighbours=2"])
    assert result.exit_code == 0, result.output
    assert "remembered 6 photos" in result.output
    assert (tmp_path / "remembering" / MEMORY_FILE).is_file()
    loaded = Captioner.from_pretrained(tmp_path / "remembering")
    assert loaded.decoding.consensus_neighbours == 2 and len(loaded.memory) == 6
    assert loaded.caption(random_photo(3), max_length=5).candidates[0].consensus is not None
    off = CliRunner().invoke(cli, ["caption", str(tiny_flickr / "images" / "img0.jpg"), "-m",
                                   str(tmp_path / "remembering"), "--consensus-neighbours", "0", "--format", "jsonl"])
    assert off.exit_code == 0, off.output
    assert "consensus" not in json.loads(off.output.splitlines()[-1])["nbest"][0]


@pytest.mark.parametrize("tiny_captioner", ["lstm"], indirect=True)
def test_the_memory_command_keeps_as_many_components_as_it_is_asked_for(tiny_captioner, tiny_flickr, tmp_path):
    tiny_captioner.save(tmp_path / "model")
    command = ["memory", str(tmp_path / "model"), "--data", str(tiny_flickr), "--set", "consensus_neighbours=2"]
    result = CliRunner().invoke(cli, [*command, "-o", str(tmp_path / "small"), "--components", "3"])
    assert result.exit_code == 0, result.output
    loaded = Captioner.from_pretrained(tmp_path / "small")
    assert loaded.memory is not None and loaded.memory.features.shape == (6, 3)
    assert loaded.caption(random_photo(3), max_length=5).candidates[0].consensus is not None
    too_many = CliRunner().invoke(cli, [*command, "-o", str(tmp_path / "bad"), "--components", "6"])
    assert too_many.exit_code != 0
    assert too_many.output.strip().splitlines()[-1].endswith("can keep 1 to 5 components, not 6")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("tiny_captioner", ["attention_lstm"], indirect=True)
def test_the_tuning_script_scores_every_setting_and_each_half_with_the_others_choice(
        tiny_captioner, tiny_flickr, tmp_path, monkeypatch, capsys):
    tiny_captioner.save(tmp_path / "model")
    CliRunner().invoke(cli, ["memory", str(tmp_path / "model"), "--data", str(tiny_flickr),
                             "-o", str(tmp_path / "remembering")], catch_exceptions=False)
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "tune_reranking.py")

    def run(*args: str) -> list[str]:
        monkeypatch.setattr(sys, "argv", [script, *args, "--data", str(tiny_flickr)])
        runpy.run_path(script, run_name="__main__")  # in this process, where the tiny encoder is registered
        return capsys.readouterr().out.splitlines()

    lines = run(str(tmp_path / "remembering"), "--split", "train", "--length-penalty", "0.6", "--length-penalty",
                "1.0", "--neighbours", "2", "--generic", "0", "--generic", "1")
    for lp in ("0.6", "1"):
        assert any(line.startswith(f"length penalty {lp}, no reranking: (") for line in lines)
        assert sum(line.startswith(f"length penalty {lp}, 2 neighbours, generic ") and ", halves (" in line
                   for line in lines) == 2
    assert sum(line.startswith("chosen on photos ") for line in lines) == 2  # photos 0-2 and 3-5
    assert lines[-1].startswith("each half captioned with the setting chosen on the other: (")
    with pytest.raises(SystemExit, match="has no caption memory"):
        run(str(tmp_path / "model"))
