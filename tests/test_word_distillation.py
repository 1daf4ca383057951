"""Word-level distillation: a student decoder learns a teacher's next-word distributions."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from captioner.errors import CaptionerError
from captioner.training import TrainConfig, Trainer, train, word_distillation
from captioner.training.word_distillation import TARGETS_FILE, distillation_loss
from captioner.vocab import Vocabulary

TINY_DECODER = {"embed_dim": 8, "hidden_dim": 16, "attention_dim": 8, "memory_dim": 8, "dropout": 0.1}


def config(tiny_flickr, tmp_path, name, **changes):
    values = dict(
        data=str(tiny_flickr), output=str(tmp_path / name), encoder="tiny_cnn", decoder="attention_lstm",
        decoder_hparams=TINY_DECODER, min_word_count=1, epochs=3, batch_size=4, lr=3e-3, warmup_steps=1,
        cache_dir=str(tmp_path / "cache"), device="cpu", num_workers=0, val_beam_size=2, patience=10,
    )
    values.update(changes)
    return TrainConfig(**values)


def loss_against(trainer: Trainer, targets) -> float:
    """The distillation loss of the trainer's decoder (dropout off) against ``targets``, over every training caption."""
    rows = torch.arange(len(trainer.pairs.tokens))
    tokens = trainer.pairs.tokens
    length = int((tokens != Vocabulary.pad_id).sum(1).max())
    source, _ = trainer.data.train_batch(trainer.pairs.image_index, torch.zeros(len(rows), dtype=torch.bool),
                                         torch.Generator().manual_seed(0))
    trainer.captioner.decoder.eval()
    with torch.no_grad():
        logits, _, _ = trainer.module(source, None, tokens[:, : length - 1], 0.0, None)
    return distillation_loss(logits, targets.rows(rows, length - 1), tokens[:, 1:length]).item()


def test_one_sure_word_per_position_is_plain_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    words = torch.randint(1, 11, (3, 5))
    words[0, 3:] = Vocabulary.pad_id
    loss = distillation_loss(logits, (words.unsqueeze(-1), torch.ones(3, 5, 1)), words)
    expected = F.cross_entropy(logits.reshape(-1, 11), words.reshape(-1), ignore_index=Vocabulary.pad_id)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_a_student_moves_toward_its_teacher(tiny_flickr, tmp_path, monkeypatch):
    train(config(tiny_flickr, tmp_path, "teacher", epochs=12, lr=1e-2, seed=1, patience=20), progress=False)
    teacher = tmp_path / "teacher" / "checkpoints" / "epoch-0012"  # the last epoch: sure of its words
    student = dict(init_from=str(teacher), reset_decoder=True, teacher=str(teacher), teacher_top_k=4, epochs=6, lr=1e-2)
    taught = Trainer(config(tiny_flickr, tmp_path, "taught", teacher_weight=1.0, **student), progress=False)

    saved = load_file(tmp_path / "taught" / TARGETS_FILE)
    assert saved["ids"].shape[:2] == taught.pairs.tokens[:, :-1].shape and saved["ids"].size(2) == 4
    real = taught.pairs.tokens[:, 1:] != Vocabulary.pad_id
    sums = saved["probs"].float().sum(-1)
    assert torch.allclose(sums[real], torch.ones(int(real.sum())), atol=2e-3)
    assert int(saved["ids"].max()) < len(taught.captioner.vocab)

    untaught = Trainer(config(tiny_flickr, tmp_path, "untaught", init_from=str(teacher), reset_decoder=True, epochs=6,
                              lr=1e-2), progress=False)  # the reference words alone
    targets = taught.teacher
    before = loss_against(taught, targets)
    taught.run()
    untaught.run()
    assert loss_against(taught, targets) < loss_against(untaught, targets) < before

    def must_not_run(*args, **kwargs):
        raise AssertionError("the saved targets should have been reused")

    monkeypatch.setattr(word_distillation, "compute_teacher_targets", must_not_run)
    again = Trainer(config(tiny_flickr, tmp_path, "taught", teacher_weight=1.0, **student), resume=True,
                    progress=False)
    assert torch.equal(again.teacher.ids, taught.teacher.ids)


def test_a_teacher_with_other_words_is_refused(tiny_flickr, tmp_path):
    teacher = train(config(tiny_flickr, tmp_path, "teacher", epochs=1, min_word_count=4), progress=False)
    with pytest.raises(CaptionerError, match="another vocabulary"):
        Trainer(config(tiny_flickr, tmp_path, "student", teacher=str(teacher)), progress=False)


def test_a_teacher_needs_cross_entropy_training():
    with pytest.raises(ValueError, match="teacher"):
        TrainConfig(data="d", output="o", teacher="t", objective="scst")
