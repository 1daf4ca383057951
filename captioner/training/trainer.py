"""The training loop: frozen-encoder (cached features) or fine-tuning, single process or DDP."""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..atomic import atomic_replace_folder, atomic_write_text
from ..captioner import Captioner
from ..data import CaptionedImage, load_dataset
from ..decoder import Decoder
from ..decoding import DecodingOptions
from ..encoder import Encoder, EncoderOutput
from ..errors import CaptionerError
from ..evaluation import score_dataset_captions
from ..features import FeatureCache, default_cache_dir
from ..registry import create_decoder, create_encoder
from ..vocab import Vocabulary, tokenize
from .activations import CachedActivations
from .augment import Augmentation, mirrorable
from .checkpoint import latest_checkpoint, read_state, write_checkpoint
from .cider_reward import CiderD
from .config import TrainConfig
from .early_stopping import EarlyStopping
from .pixels import PixelStore
from .scst import scst_loss
from .teacher_forcing import TeacherForcing


class TrainingError(CaptionerError):
    """Training cannot go on (for example the loss became NaN)."""


@dataclass
class CaptionPairs:
    """Every (image, reference caption) pair: image row ``(P,)``, padded token ids ``(P, L)``
    and whether the image may be mirrored for that caption ``(P,)``."""

    image_index: torch.Tensor
    tokens: torch.Tensor
    mirrorable: torch.Tensor


def encode_captions(images: list[CaptionedImage], vocab: Vocabulary, max_words: int) -> CaptionPairs:
    rows, encoded, flags = [], [], []
    for index, image in enumerate(images):
        for caption in image.captions:
            rows.append(index)
            encoded.append(vocab.encode(caption, max_length=max_words))
            flags.append(mirrorable(caption))
    tokens = torch.zeros(len(encoded), max(map(len, encoded)), dtype=torch.long)  # <pad> = 0
    for i, ids in enumerate(encoded):
        tokens[i, : len(ids)] = torch.tensor(ids)
    return CaptionPairs(torch.tensor(rows), tokens, torch.tensor(flags))


def classifier_drift(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """KL(reference || current) between class distributions ``(B, C)``, averaged over the batch."""
    return F.kl_div(logits.float().log_softmax(-1), reference_logits.float().log_softmax(-1),
                    log_target=True, reduction="batchmean")


class TrainingModule(nn.Module):
    """What DDP wraps: the decoder's teacher forcing, after the encoder when fine-tuning.

    When fine-tuning, ``source`` is pixels (``first_stage`` 0) or the cached input of
    stage ``first_stage``; given the class logits the encoder started with, the drift
    of its classifier from them (:func:`classifier_drift`) comes back too.
    """

    def __init__(self, decoder: Decoder, encoder: Encoder | None, first_stage: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.first_stage = first_stage
        self.teacher_forcing = TeacherForcing(decoder)

    def encode(self, source, reference_logits: torch.Tensor | None = None) -> tuple[EncoderOutput, torch.Tensor | None]:
        """Features of ``source`` (cached features pass through) and the classifier's drift, if asked."""
        if self.encoder is None:
            return source, None
        features = self.encoder(source) if self.first_stage == 0 else self.encoder.forward_from(source, self.first_stage)
        drift = None
        if reference_logits is not None and features.class_logits is not None:
            drift = classifier_drift(features.class_logits, reference_logits)
        return features, drift

    def forward(self, source, reference_logits, inputs, sample_prob: float, generator: torch.Generator | None):
        features, drift = self.encode(source, reference_logits)
        return *self.teacher_forcing(features, inputs, sample_prob, generator), drift


def init_distributed(device: str | None) -> tuple[int, int, str | None]:
    """(rank, world size, device) — a process group is started when run by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        device = "cpu"
    return dist.get_rank(), world, device


def lr_multiplier(step: int, warmup: int, total: int, schedule: str) -> float:
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


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
        if config.objective == "scst":
            if self.world > 1:
                raise TrainingError("self-critical training runs in a single process")
            corpus = [[tokenize(c) for c in image.captions] for image in self.train_images]
            self.references, self.cider = corpus, CiderD(corpus)
        self.device = self.captioner.device
        self.pairs = encode_captions(self.train_images, self.captioner.vocab, config.max_words)
        self.image_mirrorable = torch.tensor([all(map(mirrorable, image.captions)) for image in self.train_images])
        self._prepare_features()
        self._prepare_optimizer()

    def _build_captioner(self, start_from: Path | None, device: str | None) -> Captioner:
        """A new model, or the one in ``start_from`` (with a new decoder if ``reset_decoder``)."""
        config = self.config
        if start_from is None:
            vocab = Vocabulary.build((c for image in self.train_images for c in image.captions), config.min_word_count)
            encoder = create_encoder(config.encoder, pretrained=True)
            decoder = None
        else:
            start = Captioner.from_pretrained(start_from)
            encoder, decoder, vocab = start.encoder, start.decoder, start.vocab
        if decoder is None or (config.reset_decoder and self.resume_from is None):
            decoder = create_decoder(
                config.decoder, vocab_size=len(vocab), feature_dim=encoder.config.feature_dim, **config.decoder_hparams
            )
        return Captioner(
            encoder, decoder, vocab, device=device,
            decoding=DecodingOptions(beam_size=config.val_beam_size, length_penalty=config.length_penalty),
            metadata={"training": config.to_json()},
        )

    # -- data ----------------------------------------------------------------------------

    def _prepare_features(self) -> None:
        """Frozen mode: load (extracting once) cached features for train and val images.

        Fine-tuning mode: decode every image once into memory instead (:class:`PixelStore`),
        and with ``cache_activations`` run the frozen stages once too (:class:`CachedActivations`).
        """
        encoder = self.captioner.encoder
        encoder.eval().requires_grad_(False)
        self.train_cache = self.val_cache = None
        config = self.config
        self.distill = (config.mode == "finetune" and config.classifier_distillation > 0
                        and getattr(encoder, "classifier", None) is not None)
        reference = self._starting_encoder() if self.distill else None
        if self.config.mode == "finetune":
            self.train_features = self.val_features = None
            self.train_pixels, self.val_pixels = (
                PixelStore([image.path for image in images], encoder.config, self.device,
                           num_workers=self.config.num_workers, progress=self.progress)
                for images in (self.train_images, self.val_images)
            )
            stages = encoder.stages()
            self.first_stage = max(0, len(stages) - self.config.finetune_stages)
            if self.config.cache_activations:
                self.train_cache, self.val_cache = (CachedActivations.compute(encoder, store, self.first_stage, reference)
                                                    for store in (self.train_pixels, self.val_pixels))
                self.train_pixels = self.val_pixels = None  # type: ignore[assignment]  # the cache replaces them
            for stage in stages[self.first_stage :]:
                stage.requires_grad_(True)
            self.reference = reference if self.train_cache is None else None  # a cache holds its logits
            return
        cache = FeatureCache(Path(self.config.cache_dir or default_cache_dir()), self.config.encoder, encoder)
        paths = [image.path for image in self.train_images + self.val_images]
        if self.world > 1 and not self.is_main:
            dist.barrier()  # rank 0 fills the cache first; the others then find every entry there
        digests = cache.extract(paths, num_workers=self.config.num_workers, device=str(self.device),
                                progress=self.progress)
        if self.world > 1 and self.is_main:
            dist.barrier()
        features = cache.load(digests)
        n = len(self.train_images)
        self.train_features = (features.pooled[:n], None if features.grid is None else features.grid[:n])
        self.val_features = (features.pooled[n:], None if features.grid is None else features.grid[n:])

    def _starting_encoder(self) -> Encoder:
        """The encoder as this run's fine-tuning found it (the classifier is held to its predictions),
        frozen: ``init_from``'s or the pretrained one, also when resuming."""
        if self.resume_from is None:
            start = copy.deepcopy(self.captioner.encoder)
        elif self.config.init_from:
            start = Captioner.from_pretrained(self.config.init_from).encoder
        else:
            start = create_encoder(self.config.encoder, pretrained=True)
        return start.to(self.device).requires_grad_(False).eval()

    def _features(self, stored, rows: torch.Tensor) -> EncoderOutput:
        pooled, grid = stored
        return EncoderOutput(
            pooled[rows].to(self.device, torch.float32),
            None if grid is None else grid[rows].to(self.device, torch.float32),
        )

    def _training_source(self, rows: torch.Tensor, mirrorable: torch.Tensor, generator: torch.Generator):
        """What the trained modules read for ``rows`` (features, pixels or activations) and, when
        distilling, the class logits the encoder started with."""
        if self.config.mode == "frozen":
            return self._features(self.train_features, rows), None
        if self.train_cache is not None:
            logits = self.train_cache.class_logits
            return (self.train_cache.activations[rows].to(self.device, torch.float32),
                    logits[rows].to(self.device) if self.distill and logits is not None else None)
        pixels = self.train_pixels.batch(rows, self.augmentation, mirrorable, generator)
        if self.reference is None:
            return pixels, None
        with torch.no_grad():
            return pixels, self.reference(pixels).class_logits

    # -- optimisation --------------------------------------------------------------------

    def _prepare_optimizer(self) -> None:
        config = self.config
        finetune = config.mode == "finetune"
        encoder = self.captioner.encoder
        self.training_module = TrainingModule(self.captioner.decoder, encoder if finetune else None,
                                              self.first_stage if self.train_cache is not None else 0)
        self.module = DistributedDataParallel(self.training_module) if self.world > 1 else self.training_module
        self.augmentation = Augmentation() if finetune and config.augment else None
        groups = [{"params": list(self.captioner.decoder.parameters()), "lr": config.lr}]
        if finetune:
            trainable = [p for p in self.captioner.encoder.parameters() if p.requires_grad]
            groups.append({"params": trainable, "lr": config.encoder_lr})
        self.optimizer = torch.optim.Adam(groups, weight_decay=config.weight_decay)
        self.steps_per_epoch = len(self._batches(0))
        total = self.steps_per_epoch * config.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_multiplier(step, config.warmup_steps, total, config.lr_schedule)
        )
        self.start_epoch, self.selection = 0, EarlyStopping(config.patience)
        if self.resume_from is not None:
            state = read_state(self.resume_from)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.start_epoch = state["epoch"] + 1
            self.selection.load(state)
            if self.is_main:
                print(f"resuming after epoch {state['epoch'] + 1} from {self.resume_from}")

    def _loss(self, logits: torch.Tensor, attention: torch.Tensor | None, targets: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
            ignore_index=Vocabulary.pad_id, label_smoothing=self.config.label_smoothing,
        )
        if attention is not None and self.config.attention_regularization > 0:
            mask = (targets != Vocabulary.pad_id).unsqueeze(-1).to(attention.dtype)  # (B, T, 1)
            coverage = (attention * mask).sum(dim=1)  # (B, N): attention each region got over the caption
            loss = loss + self.config.attention_regularization * ((1.0 - coverage) ** 2).mean()
        return loss

    def _batches(self, epoch: int) -> list[torch.Tensor]:
        """Shuffled batches of caption rows, similar lengths together (less padding per step).

        Rows are shuffled, cut into chunks of 50 batches, sorted by length inside each
        chunk, batched, and the batches shuffled. Under DDP only full batches are used.
        """
        size = self.config.batch_size
        generator = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        if self.config.objective == "scst":  # batches of images
            return list(torch.randperm(len(self.train_images), generator=generator).split(size))
        order = torch.randperm(len(self.pairs.tokens), generator=generator)
        lengths = (self.pairs.tokens != Vocabulary.pad_id).sum(1)
        batches: list[torch.Tensor] = []
        for chunk in order.split(size * 50):
            batches += list(chunk[lengths[chunk].argsort(stable=True)].split(size))
        if self.world > 1:
            batches = [b for b in batches if len(b) == size]
        return [batches[i] for i in torch.randperm(len(batches), generator=generator)]

    def train_epoch(self, epoch: int) -> float:
        config = self.config
        self.captioner.decoder.train()
        batches = self._batches(epoch)
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout depends on (seed, epoch) only: exact resume
        generator = torch.Generator().manual_seed(config.seed * 1000 + epoch + 1)
        sample_prob = config.scheduled_sampling * epoch / max(1, config.epochs - 1)
        use_amp = config.amp and self.device.type == "cuda"
        total, drift_total, count = 0.0, 0.0, 0
        for step, batch in enumerate(
            tqdm(batches, desc=f"epoch {epoch + 1}", unit="batch", disable=not self.progress, leave=False)
        ):
            batch = batch[self.rank :: self.world]
            if config.objective == "scst":
                rows, flags = batch, self.image_mirrorable[batch]
            else:
                rows, flags = self.pairs.image_index[batch], self.pairs.mirrorable[batch]
            source, reference_logits = self._training_source(rows, flags, generator)
            drift = None
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
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
                    loss = self._loss(logits, attention, targets)
                if drift is not None:
                    loss = loss + config.classifier_distillation * drift
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

    # -- validation ----------------------------------------------------------------------

    @torch.inference_mode()
    def validate(self) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """Beam-search captions for the validation images, scored by BLEU and CIDEr."""
        self.captioner.model.eval()
        captions: list[str] = []
        batch = 100
        for start in range(0, len(self.val_images), batch):
            rows = list(range(start, min(start + batch, len(self.val_images))))
            if self.val_cache is not None:
                hidden = self.val_cache.activations[rows].to(self.device, torch.float32)
                features = self.captioner.encoder.forward_from(hidden, self.first_stage)
            elif self.config.mode == "finetune":
                features = self.captioner.encode(self.val_pixels.batch(torch.tensor(rows)))
            else:
                features = self._features(self.val_features, torch.tensor(rows))
            captions += [c[0].text for c in self.captioner.decode(features)]
        scores = score_dataset_captions(self.val_images, captions, metrics=("BLEU", "CIDEr")).values
        samples = [{"image": image.name, "caption": text} for image, text in zip(self.val_images, captions)]
        return scores, samples

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
        write_checkpoint(self.checkpoints, epoch + 1, lambda folder: self.captioner.save(folder), state)  # 1-based, as logged

    def run(self) -> Path:
        config = self.config
        if self.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.output / "train_config.json", json.dumps(config.to_json(), indent=2) + "\n")
        metrics_path = self.output / "metrics.jsonl"
        for epoch in range(self.start_epoch, config.epochs):
            started = time.time()
            loss = self.train_epoch(epoch)
            stop = torch.zeros(1)
            if self.is_main:
                scores, samples = self.validate()
                improved = self.selection.update(epoch, scores[config.select_metric])
                if improved:
                    atomic_replace_folder(self.output / "best", self._save_selected)
                    atomic_write_text(self.output / "best_val_captions.jsonl",
                                      "".join(json.dumps(s) + "\n" for s in samples))
                self._checkpoint(epoch)
                record = {"epoch": epoch + 1, "train_loss": round(loss, 5),
                          **({"classifier_drift": round(self.last_drift, 5)} if self.distill else {}),
                          "lr": self.scheduler.get_last_lr()[0], **{k: round(v, 5) for k, v in scores.items()},
                          "best": improved, "seconds": round(time.time() - started, 1), "world_size": self.world}
                with metrics_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                if self.progress:
                    print(" ".join(f"{k}={v}" for k, v in record.items()), flush=True)
                stop[0] = float(self.selection.exhausted and epoch + 1 < config.epochs)
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
