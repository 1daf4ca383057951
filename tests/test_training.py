"""Training on a tiny Flickr-style fixture: frozen and fine-tuned, resume, DDP, failures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from captioner import Captioner
from captioner.feature_cache import FeatureCache
from captioner.training import TrainConfig, Trainer, train
from captioner.training.trainer import TrainingError

TINY_DECODER = {"embed_dim": 8, "hidden_dim": 16, "attention_dim": 8, "memory_dim": 8, "dropout": 0.1}


def config(tiny_flickr, tmp_path, **changes):
    values = dict(
        data=str(tiny_flickr), output=str(tmp_path / "run"), encoder="tiny_cnn", decoder="attention_lstm",
        decoder_hparams=TINY_DECODER, min_word_count=1, epochs=3, batch_size=4, lr=3e-3, warmup_steps=1,
        cache_dir=str(tmp_path / "cache"), device="cpu", num_workers=0, val_beam_size=2, patience=10,
    )
    values.update(changes)
    return TrainConfig(**values)


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_frozen_training_writes_a_loadable_best_model(tiny_flickr, tmp_path):
    best = train(config(tiny_flickr, tmp_path, epochs=4), progress=False)
    log = metrics(tmp_path / "run")
    assert [m["epoch"] for m in log] == [1, 2, 3, 4]
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    assert {"BLEU-4", "CIDEr", "distinct_captions", "lr"} <= set(log[0])
    captioner = Captioner.from_pretrained(best, device="cpu")
    assert "dog" in captioner.vocab and captioner.decoding.beam_size == 2
    assert captioner.metadata["training"]["decoder"] == "attention_lstm"
    assert captioner.caption(str(tiny_flickr / "images" / "img0.jpg")).text
    assert len((tmp_path / "run" / "best_val_captions.jsonl").read_text().splitlines()) == 2


def interrupt_in_third_epoch_then_resume(cfg: TrainConfig, monkeypatch) -> None:
    """Train ``cfg`` until epoch 3 is cut short (as Ctrl-C would), then resume it to the end."""
    original = Trainer.train_epoch

    def crash_in_third_epoch(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", crash_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    train(cfg, resume=True, progress=False)


def test_resume_continues_exactly(tiny_flickr, tmp_path, monkeypatch):
    straight = config(tiny_flickr, tmp_path / "a", decoder="lstm", decoder_hparams={"embed_dim": 8, "hidden_dim": 8})
    train(straight, progress=False)

    interrupted = config(tiny_flickr, tmp_path / "b", decoder="lstm", decoder_hparams={"embed_dim": 8, "hidden_dim": 8},
                         cache_dir=straight.cache_dir)
    interrupt_in_third_epoch_then_resume(interrupted, monkeypatch)

    a = load_file(tmp_path / "a" / "run" / "checkpoints" / "epoch-0003" / "model.safetensors")
    b = load_file(tmp_path / "b" / "run" / "checkpoints" / "epoch-0003" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [m["epoch"] for m in metrics(tmp_path / "b" / "run")] == [1, 2, 3]


def test_self_critical_training_from_a_trained_model(tiny_flickr, tmp_path):
    first = train(config(tiny_flickr, tmp_path / "xe", epochs=2), progress=False)
    scst = config(tiny_flickr, tmp_path / "scst", epochs=2, objective="scst", init_from=str(first), scst_samples=3,
                  lr=1e-3, warmup_steps=0, lr_schedule="constant", cache_dir=str(tmp_path / "xe" / "cache"))
    trainer = Trainer(scst, progress=False)
    xe_decoder = Captioner.from_pretrained(first, device="cpu").decoder.state_dict()
    assert all(torch.equal(v, xe_decoder[k]) for k, v in trainer.captioner.decoder.state_dict().items())
    assert trainer.captioner.vocab.tokens == Captioner.from_pretrained(first).vocab.tokens
    assert trainer.steps_per_epoch == 2  # 6 training images in batches of 4
    best = trainer.run()
    assert [m["epoch"] for m in metrics(tmp_path / "scst" / "run")] == [1, 2]
    assert Captioner.from_pretrained(best, device="cpu").caption(str(tiny_flickr / "images" / "img3.jpg")).text


def test_cider_reward_matches_pycocoevalcap():
    from pycocoevalcap.cider.cider import Cider

    from captioner.cider import CiderD

    refs = {"1": ["a dog runs on the grass", "a brown dog running across a lawn"],
            "2": ["two people sit on a bench", "a couple sitting on a park bench"],
            "3": ["a man rides a bike", "a cyclist on a road"]}
    hyps = {"1": ["a dog runs on a lawn"], "2": ["two people sit on a park bench"], "3": ["a man on a bike"]}
    _, expected = Cider().compute_score(refs, hyps)
    cider = CiderD([[r.split() for r in refs[k]] for k in refs])
    got = [cider.score(hyps[k][0].split(), i, [r.split() for r in refs[k]]) for i, k in enumerate(refs)]
    assert got == pytest.approx(list(expected), rel=1e-12)


def test_nan_loss_stops_with_a_clear_message(tiny_flickr, tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "_batch_loss", lambda self, *args: (torch.tensor(float("nan"), requires_grad=True), None))
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, step 1"):
        train(config(tiny_flickr, tmp_path), progress=False)


def test_finetune_trains_only_the_top_stages(tiny_flickr, tmp_path):
    cfg = config(tiny_flickr, tmp_path, mode="finetune", finetune_stages=2, epochs=1, encoder_lr=1e-2)
    trainer = Trainer(cfg, progress=False)
    bottom, top = trainer.captioner.encoder.trunk[0], trainer.captioner.encoder.trunk[2]  # stages: conv relu conv relu
    bottom_before, top_before = bottom.weight.detach().clone(), top.weight.detach().clone()
    trainer.run()
    assert not bottom.weight.requires_grad and torch.equal(bottom.weight, bottom_before)
    assert top.weight.requires_grad and not torch.equal(top.weight, top_before)
    assert Captioner.from_pretrained(tmp_path / "run" / "best", device="cpu").encoder.trunk[2].weight.dtype == torch.float32


def test_feature_cache_is_keyed_by_file_content(tiny_flickr, tmp_path):
    from conftest import make_tiny_encoder

    torch.manual_seed(0)
    encoder = make_tiny_encoder()
    cache = FeatureCache(tmp_path / "cache", "tiny_cnn", encoder)
    images = sorted((tiny_flickr / "images").glob("*.jpg"))
    calls = []
    encoder.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    digests = cache.extract(images, progress=False, num_workers=0)
    assert sum(calls) == 8
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(images[0].read_bytes())
    assert cache.extract([copy], progress=False, num_workers=0) == digests[:1] and sum(calls) == 8
    features = cache.load(digests)
    assert features.pooled.shape == (8, 8) and features.grid.shape == (8, 16, 8)
    assert features.pooled.dtype == torch.float16
    other = FeatureCache(tmp_path / "cache", "tiny_cnn", make_tiny_encoder())  # other weights -> other key
    assert other.dir != cache.dir


def test_cli_train_and_evaluate(tiny_flickr, tmp_path):
    from click.testing import CliRunner

    from captioner.cli import cli

    run = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "train", "--data", str(tiny_flickr), "--output", str(run), "--encoder", "tiny_cnn", "--decoder", "gru",
        "--epochs", "1", "--batch-size", "4", "--device", "cpu",
        "--set", "min_word_count=1", "--set", f'cache_dir="{tmp_path / "cache"}"', "--set", "decoder_hparams.hidden_dim=8",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "train_config.json").read_text())["decoder_hparams"] == {"hidden_dim": 8}
    result = CliRunner().invoke(cli, [
        "evaluate", "--model", str(run / "best"), "--data", str(tiny_flickr), "--split", "val", "-k", "1", "-k", "2",
        "--output", str(tmp_path / "scores.json"), "--captions", str(tmp_path / "captions.jsonl"),
    ])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "scores.json").read_text())
    assert report["images"] == 2 and [r["decoding"]["beam_size"] for r in report["runs"]] == [1, 2]
    assert {"BLEU-1", "BLEU-4", "ROUGE_L", "CIDEr", "distinct_captions"} <= set(report["runs"][1]["scores"])
    assert len((tmp_path / "captions.jsonl").read_text().splitlines()) == 2
    bad = CliRunner().invoke(cli, ["train", "--data", str(tiny_flickr), "--output", str(run), "--set", "epochs=0"])
    assert bad.exit_code == 2 and "epochs" in bad.output


def test_ddp_training_with_two_gloo_processes(tiny_flickr, tmp_path):
    """torchrun with two CPU processes on the built-in EfficientNet-Lite0 encoder."""
    run = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONER_")}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "captioner", "train",
         "--data", str(tiny_flickr), "--output", str(run), "--decoder", "lstm", "--epochs", "2", "--batch-size", "4",
         "--device", "cpu", "--set", "min_word_count=1", "--set", f'cache_dir="{tmp_path / "cache"}"',
         "--set", "decoder_hparams.hidden_dim=8", "--set", "decoder_hparams.embed_dim=8", "--set", "num_workers=0"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = metrics(run)
    assert [m["world_size"] for m in log] == [2, 2]
    assert Captioner.from_pretrained(run / "best", device="cpu").caption(str(tiny_flickr / "images" / "img1.jpg")).text


KILLER = """
import json, os, signal, sys
from captioner.training import TrainConfig, Trainer, train
from captioner.training import checkpoint

where = sys.argv[2]
original_epoch, original_loss, original_write = Trainer.train_epoch, Trainer._batch_loss, checkpoint.atomic_write_text
calls = {"loss": 0}

def train_epoch(self, epoch):
    self.current_epoch, calls["loss"] = epoch, 0
    return original_epoch(self, epoch)

def loss(self, *args):
    calls["loss"] += 1
    if where == "mid-epoch" and self.current_epoch == 1 and calls["loss"] == 2:  # second step of epoch 2
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: as if the machine lost power
    return original_loss(self, *args)

def write_text(path, text):
    if where == "mid-checkpoint" and path.name == "LATEST" and text.startswith("epoch-0002"):
        os.kill(os.getpid(), signal.SIGKILL)  # the epoch-2 folder is written, the pointer is not
    return original_write(path, text)

Trainer.train_epoch, Trainer._batch_loss, checkpoint.atomic_write_text = train_epoch, loss, write_text
train(TrainConfig.from_file(sys.argv[1]), progress=False)
"""


@pytest.mark.parametrize("where", ["mid-epoch", "mid-checkpoint"])
def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tiny_flickr, tmp_path, where):
    hparams = {"embed_dim": 8, "hidden_dim": 8}
    straight = config(tiny_flickr, tmp_path / "a", encoder="efficientnet_lite0", decoder="lstm", decoder_hparams=hparams)
    train(straight, progress=False)
    killed = config(tiny_flickr, tmp_path / "b", encoder="efficientnet_lite0", decoder="lstm", decoder_hparams=hparams,
                    cache_dir=straight.cache_dir)
    (tmp_path / "killed.json").write_text(json.dumps(killed.to_json()))
    (tmp_path / "killer.py").write_text(KILLER)
    done = subprocess.run([sys.executable, str(tmp_path / "killer.py"), str(tmp_path / "killed.json"), where],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -9, done.stderr[-2000:]  # really killed by SIGKILL
    run = tmp_path / "b" / "run"
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "epoch-0001"

    train(killed, resume=True, progress=False)
    a = load_file(tmp_path / "a" / "run" / "checkpoints" / "epoch-0003" / "model.safetensors")
    b = load_file(run / "checkpoints" / "epoch-0003" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_infinite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_flickr, tmp_path, monkeypatch):
    original = Trainer._batch_loss

    def infinite_in_second_epoch(self, *args):
        loss, drift = original(self, *args)
        return (loss * float("inf") if self.epoch_of_last_batch == 1 else loss), drift

    original_epoch = Trainer.train_epoch

    def tracking(self, epoch):
        self.epoch_of_last_batch = epoch
        return original_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "_batch_loss", infinite_in_second_epoch)
    monkeypatch.setattr(Trainer, "train_epoch", tracking)
    with pytest.raises(TrainingError, match="loss became inf at epoch 2, step 1; stopping .*last good checkpoint"):
        train(config(tiny_flickr, tmp_path), progress=False)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert (checkpoints / "LATEST").read_text().strip() == "epoch-0001"
    assert Captioner.from_pretrained(checkpoints / "epoch-0001", device="cpu").caption(
        str(tiny_flickr / "images" / "img1.jpg")).text


@pytest.mark.parametrize("recipe", sorted((Path(__file__).parents[1] / "docs").glob("train-*.toml")), ids=lambda p: p.name)
def test_every_documented_recipe_is_a_valid_config(recipe):
    assert TrainConfig.from_file(recipe).epochs >= 1
