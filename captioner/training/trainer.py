"""The training run: builds the model, its data and optimiser, then trains, validates and checkpoints
epoch by epoch (single process or DDP). The pieces live in the modules named for them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..atomic import atomic_replace_folder, atomic_write_text
from ..captioner import Captioner
from ..cider import CiderD
from ..data import load_dataset
from ..decoder import Decoder
from ..decoding import DecodingOptions
from ..encoder import Encoder
from ..encoder_stack import EncoderStack
from ..errors import CaptionerError
from ..vocab import Vocabulary, tokenize
from .augment import mirrorable
from .batching import caption_batches, encode_captions, image_batches
from .checkpoint import latest_checkpoint, read_state, write_checkpoint
from .config import TrainConfig
from .distillation import starting_encoder
from .distributed import init_distributed
from .early_stopping import EarlyStopping
from .optimization import build_optimizer, build_scheduler
from .scst import scst_loss
from .sources import CachedFeatures, TrainingData, finetuning_data
from .teacher_forcing import TrainingModule, caption_loss
from .validation import validate
from .word_distillation import TeacherTargets, teacher_targets


class TrainingError(CaptionerError):
    """Training cannot go on (for example the loss became NaN)."""


class Trainer:
    """Trains one run; ``run()`` returns the folder of the selected model (``output/best``)."""

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True) -> None:
        self.config = config
        self.rank, self.world, device = init_distributed(config.device)
        self.is_main = self.rank == 0
        self.progress = progress and self.is_main
        self.output = Path(config.output)
        self.checkpoints = self.output / "checkpoints"
        torch.manual_seed(config.seed)

        dataset = load_dataset(config.data, config.images)
        self.train_images = dataset.select(config.train_splits)
        self.val_images = dataset.split(config.val_split)[: config.val_images]
        self.resume_from = latest_checkpoint(self.checkpoints) if resume else None
        if resume and self.resume_from is None and self.is_main:
            print(f"no complete checkpoint in {self.checkpoints}; starting from scratch")

        self.captioner = self._build_captioner(self.resume_from or (Path(config.init_from) if config.init_from else None),
                                               device)
        self.device = self.captioner.device
        if config.objective == "scst":
            if self.world > 1:
                raise TrainingError("self-critical training runs in a single process")
            self.references = [[tokenize(c) for c in image.captions] for image in self.train_images]
            self.cider = CiderD(self.references)
        self.pairs = encode_captions(self.train_images, self.captioner.vocab, config.max_words)
        self.image_mirrorable = torch.tensor([all(map(mirrorable, image.captions)) for image in self.train_images])
        self.teacher = self._teacher_targets()

        finetune = config.mode == "finetune"
        self.distill = (finetune and config.classifier_distillation > 0
                        and getattr(self.captioner.encoder, "classifier", None) is not None)
        self.data = self._prepare_data()
        self.training_module = TrainingModule(self.captioner.decoder, self.captioner.encoder if finetune else None,
                                              self.data.first_stage)
        self.module = DistributedDataParallel(self.training_module) if self.world > 1 else self.training_module
        self.optimizer = build_optimizer(config, self.captioner)
        self.steps_per_epoch = len(self._batches(0))
        self.scheduler = build_scheduler(config, self.optimizer, self.steps_per_epoch)
        self.start_epoch, self.selection = 0, EarlyStopping(config.patience)
        if self.resume_from is not None:
            self._restore(self.resume_from)

    def _teacher_targets(self) -> TeacherTargets | None:
        """The teacher's next-word distributions for every training caption (None without a teacher)."""
        config = self.config
        if config.teacher is None:
            return None
        if self.world > 1:
            raise TrainingError("word-level distillation (teacher) runs in a single process")
        return teacher_targets(config.teacher, self.captioner.vocab, self.train_images, self.pairs,
                               config.teacher_top_k, self.output, self.device, self.progress)

    def _build_captioner(self, start_from: Path | None, device: str | None) -> Captioner:
        """A new model (pretrained encoder, vocabulary from the training captions), or the one in
        ``start_from`` (with a new decoder if ``reset_decoder``)."""
        config = self.config
        encoder: Encoder | str
        decoder: Decoder | str
        if start_from is None:
            vocab = Vocabulary.build((c for image in self.train_images for c in image.captions), config.min_word_count)
            encoder, decoder = config.encoder, config.decoder
        else:
            start = Captioner.from_pretrained(start_from)
            if isinstance(start.encoder, EncoderStack):
                raise TrainingError(f"{start_from}: its encoders are a stack, formed from trained models by "
                                    "`captioner ensemble`; train a member instead")
            encoder, decoder, vocab = start.encoder, start.decoder, start.vocab
            if config.reset_decoder and self.resume_from is None:
                decoder = config.decoder
        return Captioner(
            encoder, decoder, vocab, device=device, encoder_options={"pretrained": True},
            decoder_hparams=config.decoder_hparams,
            decoding=DecodingOptions(beam_size=config.val_beam_size, length_penalty=config.length_penalty),
            metadata={"training": config.to_json()},
        )

    def _prepare_data(self) -> TrainingData:
        """Freeze the encoder but for the fine-tuned stages, and read what the trained modules need."""
        config, encoder = self.config, self.captioner.encoder
        encoder.eval().requires_grad_(False)
        if config.mode == "frozen":
            return CachedFeatures.extract(config, encoder, self.train_images, self.val_images, self.device,
                                          distributed=self.world > 1, is_main=self.is_main, progress=self.progress)
        reference = starting_encoder(config, encoder, self.resume_from, self.device) if self.distill else None
        stages = encoder.stages()
        first_tuned = max(0, len(stages) - config.finetune_stages)
        data = finetuning_data(config, encoder, self.train_images, self.val_images, first_tuned, reference,
                               self.device, self.progress)
        for stage in stages[first_tuned:]:
            stage.requires_grad_(True)
        return data

    def _restore(self, checkpoint: Path) -> None:
        state = read_state(checkpoint)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch = state["epoch"] + 1
        self.selection.load(state)
        if self.is_main:
            print(f"resuming after epoch {state['epoch'] + 1} from {checkpoint}")

    # -- one epoch -----------------------------------------------------------------------

    def _batches(self, epoch: int) -> list[torch.Tensor]:
        """This epoch's batches: of caption rows (cross-entropy) or of image rows (self-critical)."""
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        if self.config.objective == "scst":
            return image_batches(len(self.train_images), self.config.batch_size, generator)
        return caption_batches(self.pairs, self.config.batch_size, generator, full_only=self.world > 1)

    def _batch_loss(self, batch: torch.Tensor, sample_prob: float,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The loss of one batch and, when distilling, the classifier's drift (already in the loss)."""
        config = self.config
        if config.objective == "scst":
            rows, flags = batch, self.image_mirrorable[batch]
        else:
            rows, flags = self.pairs.image_index[batch], self.pairs.mirrorable[batch]
        source, reference_logits = self.data.train_batch(rows, flags, generator)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=config.amp and self.device.type == "cuda"):
            if config.objective == "scst":
                features, drift = self.training_module.encode(source, reference_logits)
                loss, _ = scst_loss(self.captioner.decoder, features, rows.tolist(),
                                    [self.references[r] for r in rows.tolist()], self.cider,
                                    self.captioner.vocab, config.scst_samples, config.max_words + 1)
            else:
                tokens = self.pairs.tokens[batch].to(self.device)
                length = int((tokens != Vocabulary.pad_id).sum(1).max())
                inputs, targets = tokens[:, : length - 1], tokens[:, 1:length]
                logits, attention, drift = self.module(source, reference_logits, inputs, sample_prob, generator)
                teacher = None if self.teacher is None else self.teacher.rows(batch, length - 1)
                loss = caption_loss(logits, attention, targets, config.label_smoothing, config.attention_regularization,
                                    teacher, config.teacher_weight)
            if drift is not None:
                loss = loss + config.classifier_distillation * drift
        return loss, drift

    def train_epoch(self, epoch: int) -> float:
        """One pass over the training data; returns the mean loss (and sets ``last_drift``)."""
        config = self.config
        self.captioner.decoder.train()
        batches = self._batches(epoch)
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout depends on (seed, epoch) only: exact resume
        generator = torch.Generator().manual_seed(config.seed * 1000 + epoch + 1)
        sample_prob = config.scheduled_sampling * epoch / max(1, config.epochs - 1)
        total, drift_total, count = 0.0, 0.0, 0
        for step, batch in enumerate(
            tqdm(batches, desc=f"epoch {epoch + 1}", unit="batch", disable=not self.progress, leave=False)
        ):
            batch = batch[self.rank :: self.world]
            loss, drift = self._batch_loss(batch, sample_prob, generator)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; stopping "
                    f"(the last good checkpoint is kept in {self.checkpoints})"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            total += loss.item() * len(batch)
            drift_total += 0.0 if drift is None else drift.item() * len(batch)
            count += len(batch)
        self.last_drift = drift_total / max(1, count)
        return total / max(1, count)

    # -- the run -------------------------------------------------------------------------

    def _save_selected(self, folder: Path) -> None:
        self.captioner.save(folder, dtype=getattr(torch, self.config.save_dtype))

    def _checkpoint(self, epoch: int) -> None:
        state = {
            "epoch": epoch,
            **self.selection.state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }
        write_checkpoint(self.checkpoints, epoch + 1, self.captioner.save, state)  # 1-based, as logged

    def _end_of_epoch(self, epoch: int, loss: float, started: float) -> bool:
        """Validate, keep the best model, checkpoint and log; True if the run should stop early."""
        config = self.config
        scores, samples = validate(self.captioner, self.data, self.val_images)
        improved = self.selection.update(epoch, scores[config.select_metric])
        if improved:
            atomic_replace_folder(self.output / "best", self._save_selected)
            atomic_write_text(self.output / "best_val_captions.jsonl", "".join(json.dumps(s) + "\n" for s in samples))
        self._checkpoint(epoch)
        record = {"epoch": epoch + 1, "train_loss": round(loss, 5),
                  **({"classifier_drift": round(self.last_drift, 5)} if self.distill else {}),
                  "lr": self.scheduler.get_last_lr()[0], **{k: round(v, 5) for k, v in scores.items()},
                  "best": improved, "seconds": round(time.time() - started, 1), "world_size": self.world}
        with (self.output / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.progress:
            print(" ".join(f"{k}={v}" for k, v in record.items()), flush=True)
        return self.selection.exhausted and epoch + 1 < config.epochs

    def run(self) -> Path:
        config = self.config
        if self.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.output / "train_config.json", json.dumps(config.to_json(), indent=2) + "\n")
        for epoch in range(self.start_epoch, config.epochs):
            started = time.time()
            loss = self.train_epoch(epoch)
            stop = torch.tensor([float(self._end_of_epoch(epoch, loss, started))]) if self.is_main else torch.zeros(1)
            if self.world > 1:
                dist.broadcast(stop, src=0)
            if stop.item():
                if self.is_main:
                    print(f"no {config.select_metric} improvement for {config.patience} epochs; stopping")
                break
        if self.world > 1:
            dist.barrier()
        return self.output / "best"


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train a captioner as ``config`` says; returns the selected model's folder."""
    trainer = Trainer(config, resume=resume, progress=progress)
    try:
        return trainer.run()
    finally:
        if trainer.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
