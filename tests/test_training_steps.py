"""The training run's parts on their own: batches, the cross-entropy loss, the schedule, validation."""

import math

import pytest
import torch

from captioner.training.batching import CaptionPairs, caption_batches, image_batches
from captioner.training.optimization import lr_multiplier
from captioner.training.teacher_forcing import caption_loss
from captioner.vocab import Vocabulary


def pairs_with_lengths(lengths: list[int]) -> CaptionPairs:
    tokens = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, length in enumerate(lengths):
        tokens[row, :length] = 5
    return CaptionPairs(torch.arange(len(lengths)), tokens, torch.ones(len(lengths), dtype=torch.bool))


def test_caption_batches_cover_every_row_once_with_similar_lengths_together():
    lengths = torch.randint(2, 20, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    pairs = pairs_with_lengths(lengths)
    batches = caption_batches(pairs, 8, torch.Generator().manual_seed(1))
    assert sorted(torch.cat(batches).tolist()) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 2  # random batches of 8 would spread over about 14 lengths
    again = caption_batches(pairs, 8, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))  # same seed, same epoch


def test_caption_batches_for_ddp_are_all_full():
    pairs = pairs_with_lengths([3] * 21)
    assert sorted(map(len, caption_batches(pairs, 4, torch.Generator().manual_seed(0)))) == [1, 4, 4, 4, 4, 4]
    assert {len(b) for b in caption_batches(pairs, 4, torch.Generator().manual_seed(0), full_only=True)} == {4}


def test_image_batches_cover_every_image_once():
    batches = image_batches(10, 4, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2] and sorted(torch.cat(batches).tolist()) == list(range(10))


def test_caption_loss_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    targets = torch.tensor([[5, 6, 2, Vocabulary.pad_id], [5, 2, Vocabulary.pad_id, Vocabulary.pad_id]])
    changed = logits.clone()
    changed[0, 3] += 100
    changed[1, 2:] -= 100
    assert caption_loss(logits, None, targets) == pytest.approx(caption_loss(changed, None, targets).item())
    words = logits.reshape(-1, 7)[targets.reshape(-1) != Vocabulary.pad_id]
    expected = -words.log_softmax(-1)[torch.arange(5), torch.tensor([5, 6, 2, 5, 2])].mean()
    assert caption_loss(logits, None, targets) == pytest.approx(expected.item())


def test_attention_penalty_is_zero_when_every_region_gets_one_unit_over_the_caption():
    logits, targets = torch.zeros(1, 4, 7), torch.tensor([[5, 6, 5, 2]])
    even = torch.full((1, 4, 4), 0.25)  # four words, four regions: a quarter each, one unit per region
    focused = torch.zeros(1, 4, 4)
    focused[..., 0] = 1.0  # every word looks at region 0: it gets 4 units, the others none
    plain = caption_loss(logits, None, targets)
    assert caption_loss(logits, even, targets, attention_regularization=1.0) == pytest.approx(plain.item())
    penalty = caption_loss(logits, focused, targets, attention_regularization=1.0) - plain
    assert penalty.item() == pytest.approx((9 + 1 + 1 + 1) / 4)


def test_learning_rate_warms_up_then_decays_to_zero():
    assert [lr_multiplier(s, 4, 20, "cosine") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_multiplier(12, 4, 20, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_multiplier(20, 4, 20, "cosine") == pytest.approx(0.0)
    assert lr_multiplier(20, 4, 20, "constant") == 1.0
