"""Open-world captions: words for classes, constrained beam search against brute force, guidance on and off."""

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from captioner import Captioner, DecodingOptions, EncoderConfig, FeatureMapEncoder, Vocabulary, hookimpl
from captioner.cli import cli
from captioner.decoding import beam_search, guided_beam_search
from captioner.decoding.lexical import LexicalConstraints
from captioner.labelset import ClassWord, LabelSet, load_label_set
from captioner.objects import ObjectWords, fix_articles
from captioner.openworld import LabelledImage, NounSlots, score_open_world

from conftest import random_photo
from test_beam_search import BANNED, END, START, exact_logprob, random_problem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "assets" / "examples"
WORDNET = Path("/usr/share/wordnet")
DOG = "n02084071"


@pytest.fixture(scope="module")
def imagenet() -> LabelSet:
    return load_label_set("imagenet-1k")


@pytest.fixture(scope="module")
def default_model():
    return Captioner.from_pretrained(device="cpu")


# -- from classes to words -------------------------------------------------------------


def test_classes_get_the_most_specific_word_the_decoder_can_say(imagenet):
    vocab = Vocabulary.from_words("a cat dog dogs bird animal wind coffee on the is mountain mountains player person "
                                  "vehicle building".split())
    words = ObjectWords.match(imagenet, vocab)
    word = lambda label: words.class_words[imagenet.labels.index(label)]  # noqa: E731
    assert word("Egyptian cat") == "cat"
    assert word("golden retriever") == "dog"
    assert word("macaw") == "bird"
    assert word("harmonica") == "harmonica"  # a wind instrument, but "wind" does not name it
    assert word("king crab") == "crab"  # the nearest single word, added
    # Added words borrow the weights of their nearest sayable hypernym, and only they are added.
    added = dict(zip(words.tokens[len(vocab):], words.sources.tolist()))
    assert vocab.tokens[added["koala"]] == "animal"
    assert "cat" not in added and "dog" not in added
    # Any word naming the same classes meets a requirement for one: "dogs" for a retriever.
    said = lambda table, token: {words.tokens[t] for t in table[words.tokens.index(token)].tolist() if t >= 0}  # noqa: E731
    assert said(words.alternatives, "dog") == said(words.accepted, "dog") == {"dog", "dogs"}
    # A close hypernym the decoder says unguided names the class too, but is never inserted
    # for it; a generic one never does.
    assert word("alp") == "alp" and said(words.alternatives, "alp") == {"alp"}
    assert said(words.accepted, "alp") == {"alp", "mountain", "mountains"}
    assert word("ballplayer") == "ballplayer" and said(words.accepted, "ballplayer") == {"ballplayer", "player"}
    assert said(words.accepted, "tricycle") == {"tricycle"}  # not "vehicle": 67 classes
    assert said(words.accepted, "library") == {"library"}  # not "building": 14 classes
    closed = ObjectWords.match(imagenet, vocab, open_vocabulary=False)
    assert closed.class_words[imagenet.labels.index("koala")] is None
    assert len(closed.tokens) == len(vocab)


def test_label_set_names_plurals_and_kinds_and_knows_nouns(imagenet):
    assert imagenet.synset_named_by("dog") == imagenet.synset_named_by("dogs") == imagenet.synset_named_by("puppy") == DOG
    assert imagenet.synset_named_by("man") is None  # ImageNet cannot confirm or deny a man
    assert imagenet.is_noun("fences") and imagenet.is_noun("children") and imagenet.is_noun("playground")
    assert not any(imagenet.is_noun(w) for w in ("orange", "rides", "while", "playing", "a", "the"))
    assert len(imagenet) == 1000 and imagenet.wnids == tuple(sorted(imagenet.wnids))


@pytest.mark.skipif(not (WORDNET / "data.noun").is_file() and not os.environ.get("CAPTIONER_REQUIRE_WORDNET"),
                    reason="WordNet 3.0 is not installed (apt-get install wordnet-base)")
def test_shipped_label_set_is_what_the_script_generates(tmp_path):
    output = tmp_path / "imagenet-1k.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_label_words.py"), "--output", str(output)],
                   check=True, capture_output=True)
    assert output.read_bytes() == (ROOT / "captioner" / "resources" / "imagenet-1k.json").read_bytes()


# -- constrained beam search -----------------------------------------------------------


def slot_table(slots_per_image) -> torch.Tensor:
    """``(B, C, S)`` from per image a list of slots, each a list of tokens; -1 pads."""
    slots = max(len(r) for r in slots_per_image)
    width = max([len(s) for r in slots_per_image for s in r] + [1])
    table = torch.full((len(slots_per_image), slots, width), -1, dtype=torch.long)
    for b, image in enumerate(slots_per_image):
        for i, slot in enumerate(image):
            table[b, i, : len(slot)] = torch.tensor(slot)
    return table


def make_constraints(required, vocab_size, *, accepted=None, banned=(), replaces=None, nouns=(), sources=(),
                     margin=math.inf):
    """Constraints for a batch: ``required`` (and ``accepted``, by default the same) is per
    image a list of slots, each a list of tokens."""
    table = slot_table(required)
    size = vocab_size + len(sources)
    banned_mask = torch.zeros(len(required), size, dtype=torch.bool)
    for b, tokens in enumerate(banned or [()] * len(required)):
        banned_mask[b, list(tokens)] = True
    noun_mask = torch.zeros(size, dtype=torch.bool)
    noun_mask[list(nouns)] = True
    return LexicalConstraints(
        required=table, accepted=table if accepted is None else slot_table(accepted), banned=banned_mask,
        replaces=torch.tensor(replaces) if replaces is not None else torch.full((len(required), 0), -1),
        sources=torch.tensor(sources, dtype=torch.long), nouns=noun_mask, plural=torch.zeros(size, dtype=torch.bool),
        margins=torch.full((len(required),), margin),
    )


def best_meeting(decoder, features, slots, words=(4, 5, 6), max_words=4):
    """Brute force: the most probable caption saying exactly one token of each slot."""
    best = None
    for n in range(max_words + 1):
        for sequence in itertools.product(words, repeat=n):
            if all(sum(t in slot for t in sequence) == 1 for slot in slots):
                score = exact_logprob(decoder, features, list(sequence))
                best = max(best, (score, list(sequence))) if best else (score, list(sequence))
    return best[1]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("slots", [[[5]], [[4, 6]], [[4], [6]]], ids=["one", "either", "both"])
def test_constrained_search_finds_the_best_caption_meeting_the_constraints(seed, slots):
    decoder, features = random_problem(seed, "attention_lstm", vocab_size=7, batch=2)
    constraints = make_constraints([slots, slots], 7)
    options = DecodingOptions(beam_size=64, max_length=5, length_penalty=0.0, min_length=0, guide=False)
    found = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED,
                        constraints=constraints)
    for b in range(2):
        one = features.rows(slice(b, b + 1))
        assert found[b][0].token_ids == best_meeting(decoder, one, slots)


@pytest.mark.parametrize("seed", range(6))
def test_every_constrained_caption_meets_its_constraints(seed):
    decoder, features = random_problem(seed, "lstm", vocab_size=9, batch=3)
    required = [[[5]], [[6, 7], [8]], []]  # the third image has none
    constraints = make_constraints(required, 9)
    options = DecodingOptions(beam_size=3, max_length=8, n_best=3)
    found = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED,
                        constraints=constraints)
    for hypotheses, slots in zip(found[:2], required):
        for h in hypotheses:
            assert all(sum(t in slot for t in h.token_ids) == 1 for slot in slots), h.token_ids
    plain = beam_search(decoder, features.rows(slice(2, 3)), options, start_id=START, end_id=END, banned_ids=BANNED)
    assert [h.token_ids for h in found[2]] == [h.token_ids for h in plain[0]]


@pytest.mark.parametrize("decoder_name", ["lstm", "attention_lstm"])
def test_constraints_without_requirements_change_nothing(decoder_name):
    decoder, features = random_problem(3, decoder_name)
    options = DecodingOptions(beam_size=3, max_length=8, no_repeat_ngram_size=2)
    plain = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)
    empty = make_constraints([[], [], []], 9).without_required()
    same = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED, constraints=empty)
    assert [[(h.token_ids, h.score) for h in r] for r in same] == [[(h.token_ids, h.score) for h in r] for r in plain]


def test_a_costly_requirement_is_dropped_within_the_margin():
    decoder, features = random_problem(1, "gru", vocab_size=9, batch=1)
    options = DecodingOptions(beam_size=4, max_length=6)
    free = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)[0][0]
    absent = next(t for t in range(4, 9) if t not in free.token_ids)
    forced = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED,
                         constraints=make_constraints([[[absent]]], 9))[0][0]
    assert absent in forced.token_ids and forced.score < free.score
    lenient = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED,
                          constraints=make_constraints([[[absent]]], 9, margin=free.score - forced.score - 1e-6))
    assert absent not in lenient[0][0].token_ids and lenient[0][0].score > forced.score


@pytest.mark.parametrize("length_penalty", [0.6, 1.0])
def test_the_margin_is_in_log_probability_per_word_whatever_the_length_penalty(length_penalty):
    decoder, features = random_problem(0, "gru", vocab_size=9, batch=1)
    options = DecodingOptions(beam_size=4, max_length=8, length_penalty=length_penalty, n_best=4)

    def search(margin=None, banned=()):
        constraints = None if margin is None else make_constraints([[[absent]]], 9, margin=margin)
        return beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=[*BANNED, *banned],
                           constraints=constraints)[0]

    absent = next(t for t in range(4, 9) if t not in search()[0].token_ids)
    without, forced = search(banned=[absent]), search(math.inf)  # the captions without the word, and with it
    # The best mean log-probability per word (the end counts) of each side's candidates.
    per_word = lambda found: max(h.logprob / (len(h.token_ids) + h.finished) for h in found)  # noqa: E731
    cost = per_word(without) - per_word(forced)
    assert cost > 0 and all(absent in h.token_ids for h in forced)
    assert search(cost + 1e-6)[0].token_ids == forced[0].token_ids
    assert search(cost - 1e-6)[0].token_ids == without[0].token_ids


def test_guided_search_keeps_a_free_caption_that_already_meets_the_constraints():
    decoder, features = random_problem(2, "lstm", vocab_size=9, batch=2)
    options = DecodingOptions(beam_size=3, max_length=8)
    free = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)
    ids = free[0][0].token_ids
    said = next(t for t in ids if ids.count(t) == 1)
    absent = next(t for t in range(4, 9) if t not in free[1][0].token_ids)
    guided = guided_beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED,
                                constraints=make_constraints([[[said]], [[absent]]], 9))
    assert guided[0][0].token_ids == free[0][0].token_ids
    assert absent in guided[1][0].token_ids


def test_a_free_caption_meets_the_constraints_only_as_constrained_search_would():
    constraints = make_constraints([[[5, 8]], []], 9, nouns=(6,))

    def met(image: int, caption: list[int]) -> bool:
        captions = [[], []]
        captions[image] = caption
        return constraints.met_by(captions)[image]

    assert met(0, [4, 5, 7]) and met(0, [8])
    assert not met(0, [4, 7])  # not said
    assert not met(0, [4, 5, 8])  # said twice ("an alp with an alp")
    assert not met(0, [6, 5]) and not met(0, [5, 6])  # half of a compound
    assert met(1, [6, 6])  # nothing required
    assert constraints.met_by([[4, 5, 7], [6, 6]]) == [True, True]


def test_a_free_caption_naming_the_object_by_a_close_hypernym_is_kept_but_never_forced():
    decoder, features = random_problem(2, "lstm", vocab_size=9, batch=2)
    options = DecodingOptions(beam_size=3, max_length=8)
    free = beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED)
    ids = free[0][0].token_ids
    hypernym = next(t for t in ids if ids.count(t) == 1)  # "mountain", said once in image 0's caption
    word = next(t for t in range(4, 9) if t not in ids and t not in free[1][0].token_ids)  # "alp", said by neither
    required = [[[word]], [[word]]]
    accepted = [[[word, hypernym]], [[word, hypernym]]]
    constraints = make_constraints(required, 9, accepted=accepted)
    assert constraints.met_by([ids, [word]]) == [True, True]
    assert make_constraints(required, 9).met_by([ids, [word]]) == [False, True]
    guided = guided_beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED,
                                constraints=constraints)
    assert guided[0][0].token_ids == ids  # it already says "mountain": kept
    assert word in guided[1][0].token_ids  # it says neither: the class's own word is inserted


def test_required_words_take_over_what_they_replace_and_stay_out_of_compounds():
    logprobs = torch.log_softmax(torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.5, 2.0]] * 3), dim=1)  # (3 rows, V=6)
    constraints = make_constraints([[[4]]], 6, banned=[(5,)], replaces=[[5]], nouns=(3, 4))
    previous = torch.tensor([1, 3, 4])  # after <start>, after a noun, after the required word
    out = constraints.for_rows(torch.zeros(3, dtype=torch.long)).logprobs(logprobs, previous)
    p = logprobs.exp()
    assert float(out[0, 4]) == pytest.approx(math.log(p[0, 4] + p[0, 5]))  # "cat" where it wanted "dog"
    assert out[0, 5] == -math.inf  # the replaced word is banned
    assert out[1, 4] == -math.inf  # never right after a noun
    assert out[2, 3] == -math.inf and out[2, 2] == logprobs[2, 2]  # no noun right after it


def test_added_tokens_borrow_their_source_and_are_said_only_where_required():
    decoder, features = random_problem(4, "attention_lstm", vocab_size=9, batch=2)
    constraints = make_constraints([[[9]], []], 9, banned=[(), (9,)], sources=[5])  # token 9 is added, like 5
    logprobs = torch.log_softmax(torch.randn(2, 9), dim=1)
    out = constraints.for_rows(torch.tensor([0, 1])).logprobs(logprobs, torch.tensor([1, 1]))
    assert out[0, 9] == logprobs[0, 5] and out[1, 9] == -math.inf
    assert constraints.decoder_inputs(torch.tensor([9, 5, 4])).tolist() == [5, 5, 4]
    options = DecodingOptions(beam_size=3, max_length=7, n_best=3)
    found = guided_beam_search(decoder, features, options, start_id=START, end_id=END, banned_ids=BANNED,
                               constraints=constraints)
    assert all(9 in h.token_ids for h in found[0]) and not any(9 in h.token_ids for h in found[1])


# -- guidance in the captioner ---------------------------------------------------------


def tiny_label_set() -> LabelSet:
    return LabelSet(
        name="tiny", wnids=("n1", "n2"), labels=("koala", "Egyptian cat"), heads=(None, None),
        words=((ClassWord("koala", 0, "n1", 12), ClassWord("animal", 3, "n9", 6)), (ClassWord("cat", 2, "n3", 11),)),
        ancestors=(("n1", "n9"), ("n2", "n3", "n9")), lexicon={"animal": "n9"}, nouns=frozenset({"koala", "cat"}),
    )


def test_object_words_require_the_recognised_object_and_ban_the_absent_ones():
    vocab = Vocabulary.from_words("a cat cats animal on".split())
    words = ObjectWords.match(tiny_label_set(), vocab)
    assert words.tokens[-1] == "koala" and vocab.tokens[int(words.sources[0])] == "animal"
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    constraints = words.constraints(probabilities, DecodingOptions(object_threshold=0.6))
    cautious = words.constraints(probabilities, DecodingOptions(object_threshold=0.6, new_word_threshold=0.95))
    assert (cautious.required[0] < 0).all()  # "koala" was added: 0.9 is not sure enough for it
    koala, cat, cats = len(vocab), vocab.id("cat"), vocab.id("cats")
    assert constraints.required[0, 0].tolist()[:1] == [koala]
    assert set(constraints.required[1, 0].tolist()) - {-1} == {cat, cats}
    assert (constraints.required[2] < 0).all()  # nobody is 60% sure
    assert constraints.banned[1, koala] and constraints.banned[2, koala] and not constraints.banned[0, koala]
    assert [o.word for o in words.recognize(probabilities)[0]] == ["koala", "cat"]


def test_guidance_off_gives_exactly_the_unguided_captions_of_the_shipped_model(default_model):
    results = default_model.caption([str(p) for p in sorted(EXAMPLES.glob("*.jpg"))], guide=False)
    assert [r.text for r in results] == [  # what the model said before guidance existed
        "two men in orange uniforms are standing in front of a crowd",
        "a small dog is playing with a toy in its mouth",
        "a large brown dog is standing in the water with a stick in its mouth",
    ]
    assert all(r.objects and not r.required_words for r in results)  # recognition still reported


def test_the_shipped_model_names_what_it_recognises(default_model):
    cat, coffee = default_model.caption([str(EXAMPLES / "cat.jpg"), str(EXAMPLES / "coffee.jpg")])
    assert cat.objects[0].label == "Egyptian cat" and cat.objects[0].probability > 0.5
    assert "cat" in cat.text.split() and "dog" not in cat.text.split()
    assert "espresso" in coffee.text.split() and "dog" not in coffee.text.split()
    data = cat.to_dict()
    assert data["required_words"] == ["cat"] and data["objects"][0]["label"] == "Egyptian cat"
    for candidate in cat.candidates:  # the n-best list and attention come with guided captions too
        assert "cat" in candidate.words and candidate.attention.shape[0] == len(candidate.words) + 1


def test_the_shipped_model_says_no_people_or_dog_world_details_where_there_are_none(default_model):
    astronaut, coffee = default_model.caption([str(EXAMPLES / "astronaut.jpg"), str(EXAMPLES / "coffee.jpg")])
    unguided = default_model.caption(str(EXAMPLES / "coffee.jpg"), guide=False).text.split()
    assert {"stick", "mouth"} <= set(unguided)  # the decoder alone sees a dog with a stick in its mouth
    label_set = load_label_set("imagenet-1k")
    assert not {"stick", "mouth"} & set(coffee.text.split())
    assert not any(label_set.names_people(word) for word in coffee.text.split())
    assert "men" in astronaut.text.split()  # people where there are people


def test_greedy_decoding_is_guided_and_sampling_refuses_guidance(default_model):
    cat = str(EXAMPLES / "cat.jpg")
    greedy = default_model.caption(cat, method="greedy")
    assert greedy.required_words == ["cat"] and "cat" in greedy.text.split() and "dog" not in greedy.text.split()
    assert "dog" in default_model.caption(cat, method="greedy", guide=False).text.split()
    sampled = default_model.caption(cat, method="sample", seed=0)
    assert sampled.objects and not sampled.required_words
    with pytest.raises(ValueError, match="guidance needs beam search or greedy decoding"):
        default_model.caption(cat, method="sample", guide=True)


class ClassifierEncoderPlugin:
    @hookimpl
    def register_encoders(self, register):
        config = EncoderConfig(input_size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3, feature_dim=8, spatial=True,
                               classes="imagenet-1k")

        def create(pretrained=True, weights=None):
            trunk = torch.nn.Sequential(torch.nn.Conv2d(3, 8, kernel_size=8, stride=8), torch.nn.ReLU())
            return FeatureMapEncoder(trunk, config, torch.nn.Linear(8, 1000))

        register("tiny_classifier_cnn", create, config=config)


def test_models_with_and_without_a_classifier_save_load_and_caption(tmp_path, captioner_plugin, vocab):
    captioner_plugin(ClassifierEncoderPlugin(), "tiny-classifier")
    torch.manual_seed(0)
    model = Captioner("tiny_classifier_cnn", "gru", vocab, device="cpu", decoder_hparams={"hidden_dim": 16})
    photo = random_photo(1)
    result = model.caption(photo)
    assert len(result.objects) >= 1 and result.objects[0].wnid.startswith("n")
    loaded = Captioner.from_pretrained(model.save(tmp_path / "with"), device="cpu")
    assert loaded.caption(photo).to_dict() == result.to_dict()
    # A folder saved before encoders kept their classifier loads without one, unguided.
    model.encoder.classifier = None
    model.encoder.config = model.encoder_config = EncoderConfig(**{**model.encoder_config.to_dict(), "classes": None})
    old = Captioner.from_pretrained(model.save(tmp_path / "without"), device="cpu")
    assert old.object_words() is None and old.caption(photo).objects == []
    assert old.caption(photo).text == model.caption(photo, guide=False).text


def test_fix_articles():
    assert fix_articles("a espresso on a table".split(), {"espresso"}) == "an espresso on a table".split()
    assert fix_articles("an crab and an apple".split(), {"crab"}) == "a crab and an apple".split()


def test_guidance_options_are_checked():
    with pytest.raises(ValueError, match="object_threshold"):
        DecodingOptions(object_threshold=1.5)
    with pytest.raises(ValueError, match="max_objects"):
        DecodingOptions(max_objects=-1)
    with pytest.raises(ValueError, match="new_word_threshold"):
        DecodingOptions(new_word_threshold=2)
    with pytest.raises(ValueError, match="object_margin"):
        DecodingOptions(object_margin=-0.1)


# -- the open-world score --------------------------------------------------------------


def test_open_world_scores_count_named_placed_and_dog():
    images = [LabelledImage(Path(f"{i}.jpg"), label, names) for i, (label, names) in enumerate([
        ("macaw", ("bird", "macaw")), ("tabby", ("cat",)), ("beagle", ("beagle", "dog")), ("koala", ("koala",))])]
    captions = ["a bird is sitting on a branch", "a dog is running", "two dogs play", "a man koala is here"]
    references = ["a dog is running", "the bird is flying", "a man is here"] * 20
    slots = NounSlots.learn(references, lambda w: w in {"dog", "bird", "man"})
    scores = score_open_world(images, captions, slots)
    assert (scores.named, scores.dogs, scores.dogs_named, scores.dog_said) == (3, 1, 1, 1)
    assert scores.placed == 1  # "a bird is" is; "two dogs play" (never seen) and "man koala is" are not
    assert scores.distinct == 4 and "named          3/4" in scores.table()


def test_evaluate_objects_command(tmp_path, default_model):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.open(EXAMPLES / "cat.jpg").save(folder / "cat.jpg")
    Image.fromarray(random_photo(3)).save(folder / "noise.png")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"image": "cat.jpg", "label": "tabby", "names": ["cat", "tabby"]}) + "\n"
                      + json.dumps({"image": "noise.png", "label": "beagle", "names": ["dog", "beagle"]}) + "\n")
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(cli, ["evaluate-objects", str(labels), "--output", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "named          1/2" in result.output
    assert json.loads(out.read_text())["named"] == 1
    off = CliRunner().invoke(cli, ["evaluate-objects", str(labels), "--no-guide", "--device", "cpu"])
    assert off.exit_code == 0 and "guidance off" in off.output and "named          0/2" in off.output
