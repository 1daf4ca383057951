"""Evidence of people and dogs, the caption language model and its fusion with the decoder."""

import runpy
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from captioner import Captioner, DecodingOptions, Vocabulary
from captioner.cli import cli
from captioner.decoding import beam_search
from captioner.evidence import PeopleDetector, dog_probability, fit_people_detector, people_targets, said_evidence
from captioner.labelset import LabelSet, load_label_set
from captioner.language_model import (
    CaptionLanguageModel,
    FusedDecoder,
    FusedSource,
    LanguageModelConfig,
    encode_captions,
    perplexity,
    said_with,
    train_language_model,
)
from captioner.objects import ObjectWords
from captioner.packed_layers import PackedLSTM, packing_available
from captioner.testing import write_tiny_flickr

from conftest import random_photo
from reference_search import reference_beam_search
from test_beam_search import BANNED, END, START, one_row, random_problem
from test_open_world import ClassifierEncoderPlugin


@pytest.fixture(scope="module")
def imagenet() -> LabelSet:
    return load_label_set("imagenet-1k")


def test_people_words_come_from_wordnet(imagenet):
    for word in ("man", "women", "skiers", "crowd", "she", "his", "toddler", "biker", "player"):
        assert imagenet.names_people(word), word
    for word in ("dog", "grass", "ball", "boxer", "shepherd", "pacifier", "tiger", "flock", "white"):
        assert not imagenet.names_people(word), word


def test_captions_say_their_evidence(imagenet):
    assert said_evidence("a man throws a ball to his puppy".split(), imagenet) == (1.0, 1.0)
    assert said_evidence("a lizard on a rock".split(), imagenet) == (0.0, 0.0)
    assert said_evidence("two skiers".split(), imagenet) == (1.0, 0.0)
    targets = people_targets([["a man", "a dog"], ["a lizard"]], imagenet)
    assert targets.tolist() == [0.5, 0.0]
    probabilities = torch.zeros(2, 1000)
    dogs = [i for i, ancestors in enumerate(imagenet.ancestors) if "n02084071" in ancestors]
    probabilities[0, dogs[:3]] = 0.2
    probabilities[1, 0] = 1.0  # a tench
    assert dog_probability(probabilities, imagenet).tolist() == pytest.approx([0.6, 0.0])


def test_the_people_detector_learns_saves_and_loads(tmp_path):
    generator = torch.Generator().manual_seed(0)

    def photos(count):  # features in 5 of 6 dimensions; people where the first is positive
        pooled = torch.nn.functional.pad(torch.randn(count, 5, generator=generator), (0, 1))
        return pooled, torch.rand(count, 4, generator=generator).softmax(dim=1), (pooled[:, 0] > 0).float()

    pooled, probabilities, targets = photos(1500)
    detector = fit_people_detector(pooled, probabilities, targets, weight_decay=1e-3)
    assert detector.references.shape == (1000, 6) and 0 < float(detector.usual_familiarity) < 1
    new_pooled, new_probabilities, new_targets = photos(300)
    predicted = detector(new_pooled, new_probabilities).sigmoid()
    assert ((predicted > 0.5).float() == new_targets).float().mean() > 0.9
    # A photo unlike every training photo (the sixth dimension) counts as less likely to have people.
    familiar, unfamiliar = torch.tensor([[1.0, 0, 0, 0, 0, 0]]), torch.tensor([[1.0, 0, 0, 0, 0, 3.0]])
    assert detector.familiarity(unfamiliar) < detector.familiarity(familiar)
    assert detector(unfamiliar, new_probabilities[:1]) < detector(familiar, new_probabilities[:1])
    loaded = PeopleDetector.load(detector.save(tmp_path).parent)
    assert loaded is not None and torch.equal(loaded(new_pooled, new_probabilities), detector(new_pooled, new_probabilities))
    assert PeopleDetector.load(tmp_path / "nowhere") is None


def test_words_said_only_with_people_or_dogs_are_ruled_out_without_them(imagenet):
    vocab = Vocabulary.from_words("a man shirt mouth cat dog on".split())
    captions = ["a man on a cat", "a man shirt", "a dog mouth", "a man mouth", "a cat on a mat", "a dog"] * 50
    tokens, evidence = encode_captions(captions, vocab, imagenet)
    shares = said_with(tokens, evidence, len(vocab))  # (people; people or a dog) per word
    assert shares[:, vocab.id("shirt")].tolist() == [1.0, 1.0] and shares[:, vocab.id("mouth")].tolist() == [0.5, 1.0]
    assert shares[:, vocab.id("cat")].tolist() == [0.5, 0.5] and shares[:, vocab.id("a")].tolist() == pytest.approx([0.5, 5 / 6])
    assert not said_with(tokens[:6], evidence[:6], len(vocab)).any()  # too few captions to tell
    model = tiny_language_model(len(vocab))
    model.said_with.copy_(shares)
    photos = torch.tensor([[0.1, 0.01], [0.1, 0.9], [0.9, 0.01]])  # nobody; a dog; people (probabilities)
    ruled_out = model.ruled_out(photos, (0.5, 0.05))
    words = lambda row: {vocab.tokens[i] for i in ruled_out[row].nonzero().flatten().tolist()}  # noqa: E731
    assert words(0) == {"man", "shirt", "mouth", "dog"} and words(1) == {"man", "shirt"} and words(2) == set()


def test_ruled_out_words_are_banned_but_nothing_takes_their_place():
    label_set = LabelSet(
        name="tiny", wnids=("n1",), labels=("cat",), heads=(None,), words=((),), ancestors=(("n1",),), lexicon={},
        nouns=frozenset({"cat", "man"}),
    )
    vocab = Vocabulary.from_words("a man men cat on".split())
    words = ObjectWords.match(label_set, vocab)
    man, men = vocab.id("man"), vocab.id("men")
    ruled_out = torch.zeros(2, len(vocab), dtype=torch.bool)
    ruled_out[0, [man, men]] = True
    constraints = words.constraints(torch.ones(2, 1), DecodingOptions(), ruled_out)
    assert constraints.banned[0, man] and constraints.banned[0, men] and not constraints.banned[1, [man, men]].any()
    assert (constraints.replaces < 0).all()  # "a group of people" does not become "a group of cats"


def tiny_language_model(vocab_size: int, seed: int = 0) -> CaptionLanguageModel:
    torch.manual_seed(seed)
    return CaptionLanguageModel(LanguageModelConfig(vocab_size=vocab_size, embed_dim=5, hidden_dim=6)).double().eval()


def test_a_fused_step_adds_the_language_models_log_probabilities():
    decoder, features = random_problem(0, "attention_lstm")
    language_model = tiny_language_model(9)
    evidence = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, 0.2]], dtype=torch.float64)
    fused = FusedDecoder(decoder, language_model)
    tokens = torch.tensor([[START, 4, 5], [START, 6, 4], [START, 8, 7]])
    source = FusedSource(features, evidence, torch.full((3,), 0.7, dtype=torch.float64))
    some = source.rows(torch.tensor([2, 0]))  # guided search decodes some images again: they keep their own evidence
    assert torch.equal(some.evidence, evidence[[2, 0]]) and torch.equal(some.pooled, features.pooled[[2, 0]])
    state, inner = fused.init_state(source), decoder.init_state(features)
    lm_logits, _ = language_model(tokens, evidence)  # teacher-forced over the whole prefix
    for t in range(tokens.size(1)):
        out, alone = fused.step(tokens[:, t], state), decoder.step(tokens[:, t], inner)
        expected = alone.logits.log_softmax(-1) + 0.7 * lm_logits[:, t].log_softmax(-1)
        torch.testing.assert_close(out.logits, expected)
        torch.testing.assert_close(out.attention, alone.attention)
        state, inner = out.state, alone.state


@pytest.mark.parametrize("decoder_name", ["gru", "attention_lstm"])
def test_fused_beam_search_matches_the_one_image_reference(decoder_name):
    options = DecodingOptions(beam_size=3, max_length=7, length_penalty=1.0)
    for seed in range(4):
        decoder, features = random_problem(seed, decoder_name)
        language_model = tiny_language_model(9, seed)
        evidence = torch.rand(3, 2, dtype=torch.float64)
        weight = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
        fused = FusedDecoder(decoder, language_model)
        batched = beam_search(fused, FusedSource(features, evidence, weight), options,
                              start_id=START, end_id=END, banned_ids=BANNED)
        for b in range(3):
            alone = FusedSource(one_row(features, b), evidence[b : b + 1], weight[b : b + 1])
            expected = reference_beam_search(fused, alone, options, START, END, BANNED)
            assert [h.token_ids for h in batched[b]] == [e[0] for e in expected], f"seed {seed} image {b}"
            assert [h.score for h in batched[b]] == pytest.approx([e[1] for e in expected], abs=1e-9)
        plain = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)
        assert [h.token_ids for h in batched[0]] == [h.token_ids for h in plain[0]]  # weight 0: the decoder alone


def test_the_language_model_learns_what_evidence_says_and_round_trips(tmp_path, imagenet):
    vocab = Vocabulary.from_words("a man dog lizard rock runs sits on the".split())
    captions = ["a man runs on the rock", "a dog runs on the rock", "a lizard sits on the rock"] * 17
    tokens, evidence = encode_captions(captions, vocab, imagenet)
    assert evidence[:3].tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    config = LanguageModelConfig(vocab_size=len(vocab), embed_dim=8, hidden_dim=16)
    model = train_language_model(tokens, evidence, config, epochs=15, batch_size=8, lr=3e-2)
    assert perplexity(model, tokens[:3], evidence[:3]) < 1.5
    start, nobody = torch.tensor([[vocab.start_id, vocab.id("a")]]), torch.tensor([[0.0, 0.0]])
    loaded = CaptionLanguageModel.load(model.save(tmp_path).parent)
    assert loaded is not None and loaded.config == config and torch.equal(loaded.said_with, model.said_with)
    with torch.inference_mode():
        logits, _ = model(start, nobody)
        assert int(logits[0, -1].argmax()) == vocab.id("lizard")  # no people, no dog: the lizard
        torch.testing.assert_close(loaded(start, nobody)[0], logits, atol=2e-2, rtol=1e-2)  # saved in float16


def test_a_captioner_with_evidence_saves_loads_and_keeps_people_out(tmp_path, captioner_plugin, imagenet):
    captioner_plugin(ClassifierEncoderPlugin(), "tiny-classifier")
    vocab = Vocabulary.from_words("a man woman dog cat on grass".split())
    torch.manual_seed(0)
    model = Captioner("tiny_classifier_cnn", "gru", vocab, device="cpu", decoder_hparams={"hidden_dim": 16})
    with torch.no_grad():  # a decoder that wants to say "man" after "a"
        model.decoder.output.bias[vocab.id("man")] += 8.0
    photo = random_photo(1)
    assert "man" in model.caption(photo).text.split()
    model.people_detector = PeopleDetector(8, 1000)
    with torch.no_grad():
        model.people_detector.linear.bias.fill_(-5.0)  # sure there is nobody
    model.language_model = tiny_language_model(len(vocab)).float()
    model.language_model.said_with[:, [vocab.id("man"), vocab.id("woman")]] = 1.0  # said with people, always
    model.decoding = model.decoding.updated(people_threshold=0.5, language_weight=0.5)
    result = model.caption(photo)
    assert not {"man", "woman"} & set(result.text.split())
    assert "man" in model.caption(photo, people_threshold=0.0, language_weight=0.0).text.split()
    assert "man" in model.caption(photo, guide=False).text.split()  # evidence is part of guidance
    with torch.no_grad():  # every photo unfamiliar: the language model runs for all of them
        model.people_detector.references.copy_(torch.nn.functional.normalize(torch.randn(1000, 8), dim=1))
        model.people_detector.usual_familiarity.fill_(2.0)
    photos = [random_photo(seed) for seed in range(5)]
    alone = [model.caption(photo).text for photo in photos]
    assert [r.text for r in model.caption(photos)] == alone  # a photo's caption does not depend on its batch
    assert [r.text for r in model.caption(photos[::-1])] == alone[::-1]
    result = model.caption(photo)
    loaded = Captioner.from_pretrained(model.save(tmp_path / "model"), device="cpu")
    assert loaded.people_detector is not None and loaded.language_model is not None
    assert loaded.caption(photo).text == result.text
    model.people_detector = model.language_model = None
    assert Captioner.from_pretrained(model.save(tmp_path / "model"), device="cpu").people_detector is None


@pytest.mark.skipif(not packing_available(), reason="this PyTorch has no oneDNN")
def test_with_packed_weights_the_fused_search_runs_the_packed_language_model(captioner_plugin):
    captioner_plugin(ClassifierEncoderPlugin(), "tiny-classifier")
    vocab = Vocabulary.from_words("a man woman dog cat on grass".split())
    torch.manual_seed(0)
    model = Captioner("tiny_classifier_cnn", "gru", vocab, device="cpu", decoder_hparams={"hidden_dim": 16})
    model.people_detector = PeopleDetector(8, 1000)
    model.language_model = tiny_language_model(len(vocab)).float()
    with torch.no_grad():  # every photo unfamiliar: the language model runs for all of them
        model.people_detector.references.copy_(torch.nn.functional.normalize(torch.randn(1000, 8), dim=1))
        model.people_detector.usual_familiarity.fill_(2.0)
    model.decoding = model.decoding.updated(language_weight=0.5)
    photos = [random_photo(seed) for seed in range(3)]
    model.decoder_weights = "float32"
    assert model.inference_language_model() is model.language_model
    reference = model.caption(photos)
    model.decoder_weights = "packed"
    packed = model.inference_language_model()
    assert packed is not model.language_model and isinstance(packed.lstm, PackedLSTM)
    assert model.inference_language_model() is packed  # kept
    used = []
    with pytest.MonkeyPatch.context() as patch:
        step = FusedDecoder.step
        patch.setattr(FusedDecoder, "step", lambda self, *args: used.append(self.language_model) or step(self, *args))
        captions = model.caption(photos)
    assert used and all(language_model is packed for language_model in used)
    for a, b in zip(reference, captions):
        assert b.text == a.text and b.candidates[0].score == pytest.approx(a.candidates[0].score, abs=1e-4)


def test_evidence_command_trains_a_people_detector_into_a_model(tmp_path, captioner_plugin, vocab):
    captioner_plugin(ClassifierEncoderPlugin(), "tiny-classifier")
    torch.manual_seed(0)
    model = Captioner("tiny_classifier_cnn", "gru", vocab, device="cpu", decoder_hparams={"hidden_dim": 16})
    model.save(tmp_path / "model")
    data = write_tiny_flickr(tmp_path / "flickr")
    result = CliRunner().invoke(cli, ["evidence", str(tmp_path / "model"), "--data", str(data), "-o",
                                      str(tmp_path / "out"), "--set", "people_threshold=0.4", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    assert "learned from 6 photos, 0.00 of whose captions name people" in result.output
    loaded = Captioner.from_pretrained(tmp_path / "out", device="cpu")
    assert loaded.people_detector is not None and loaded.decoding.people_threshold == 0.4


@pytest.mark.parametrize("tiny_captioner", ["gru"], indirect=True)
def test_the_training_script_gives_a_model_its_language_model(tiny_captioner, tiny_flickr, tmp_path, monkeypatch,
                                                              capsys):
    tiny_captioner.save(tmp_path / "model")
    text = tmp_path / "captions.tsv"
    text.write_text("".join(f"{i}\ta cat runs on the grass\n{i}\ta red ball on the grass\n" for i in range(40)))
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "train_language_model.py")
    monkeypatch.setattr(sys, "argv", [script, str(tmp_path / "model"), "--text", str(text), "--data", str(tiny_flickr),
                                      "--epochs", "2", "-o", str(tmp_path / "model")])
    runpy.run_path(script, run_name="__main__")  # in this process, where the tiny encoder is registered
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("92 captions (4 held out); people in 0.00, a dog in 0.")
    assert [line.split(":")[0] for line in lines[1:3]] == ["epoch 1", "epoch 2"]
    loaded = Captioner.from_pretrained(tmp_path / "model", device="cpu")
    assert loaded.language_model is not None and loaded.language_model.config.vocab_size == len(loaded.vocab)
    assert loaded.language_model.said_with[0, loaded.vocab.id("grass")] == 0.0  # in 92 captions, none with people
