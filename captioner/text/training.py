"""Training loops for the text models: seeded, CPU-friendly, best epoch kept by validation."""

from __future__ import annotations

import copy
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .batching import pad
from .corpora import RatedSentence
from .metrics import macro_f1
from .review import ReviewHead, ReviewReading
from .sentiment import LABELS, SentimentClassifier, SentimentConfig, SentimentRNN, collate, read_inputs
from .tokenizer import SubwordTokenizer
from .translation import Seq2SeqTranslator, TextTranslator, TranslatorConfig

Log = Callable[[str], None]


@dataclass(frozen=True)
class TextTrainingConfig:
    """How long and how fast to train; ``batch_tokens`` bounds a batch's padded source tokens."""

    epochs: int = 10
    batch_tokens: int = 2_048
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    balance_classes: bool = False  # weight each class by 1 / its frequency (sentiment: for macro-F1)
    average_last: int = 0  # translation: also try the mean of the last epochs' weights (kept if validation says so)
    seed: int = 0
    device: str = "cpu"


def _batches(lengths: Sequence[int], batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar lengths (sorted within random chunks), each under ``batch_tokens``."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    chunk = 100 * max(1, batch_tokens // 16)
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batch: list[int] = []
        for index in part:
            if batch and (len(batch) + 1) * max(lengths[index], 1) > batch_tokens:
                batches.append(batch)
                batch = []
            batch.append(index)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def _schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to zero."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _epochs(
    model: torch.nn.Module, steps_per_epoch: int, config: TextTrainingConfig
) -> Iterator[tuple[int, torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    scheduler = _schedule(optimizer, config.epochs * steps_per_epoch, config.warmup_steps)
    for epoch in range(1, config.epochs + 1):
        yield epoch, optimizer, scheduler


def _update(model: torch.nn.Module, loss: torch.Tensor, optimizer, scheduler, clip_norm: float) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    scheduler.step()


def train_sentiment(
    train: Sequence[RatedSentence], valid: Sequence[RatedSentence], tokenizer: SubwordTokenizer,
    model_config: SentimentConfig, config: TextTrainingConfig, log: Log = print,
    on_best: Callable[[SentimentClassifier], None] | None = None,
) -> SentimentClassifier:
    """Cross-entropy on the label plus squared error on the rating / 4; the epoch with the best
    validation macro-F1 is kept (and handed to ``on_best`` as soon as it is found)."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = torch.device(config.device)
    model = SentimentRNN(model_config).to(device)
    inputs = read_inputs(tokenizer, [s.text for s in train], model_config.lexicon_features)
    keep = [n for n, i in enumerate(inputs) if i.ids]
    train, inputs = [train[n] for n in keep], [inputs[n] for n in keep]
    ids = [i.ids for i in inputs]
    labels = torch.tensor([LABELS.index(s.label) for s in train])
    counts = torch.bincount(labels, minlength=len(LABELS)).clamp(min=1).float()
    class_weights = (counts.sum() / counts / len(LABELS)) if config.balance_classes else torch.ones(len(LABELS))
    ratings = torch.tensor([s.rating / 4 for s in train])
    steps = len(_batches([len(i) for i in ids], config.batch_tokens, random.Random(0)))
    best_f1, best_state = -1.0, copy.deepcopy(model.state_dict())
    for epoch, optimizer, scheduler in _epochs(model, steps, config):
        model.train()
        started, total = time.perf_counter(), 0.0
        batches = _batches([len(i) for i in ids], config.batch_tokens, rng)
        for batch in batches:
            out = model(*collate([inputs[i] for i in batch], model_config.lexicon_features, device))
            index = torch.tensor(batch)
            loss = (F.cross_entropy(out.logits, labels[index].to(device), weight=class_weights.to(device))
                    + F.mse_loss(out.score, ratings[index].to(device)))
            _update(model, loss, optimizer, scheduler, config.clip_norm)
            total += float(loss.detach())
        classifier = SentimentClassifier(model, tokenizer)
        f1 = macro_f1([s.label for s in valid], [j.label for j in classifier.judge([s.text for s in valid])], LABELS)
        if f1 > best_f1:
            best_f1, best_state = f1, copy.deepcopy(model.state_dict())
            if on_best is not None:
                on_best(classifier)
        log(f"epoch {epoch}: loss {total / len(batches):.4f}, valid macro-F1 {f1:.4f} ({time.perf_counter() - started:.0f} s)")
    model.load_state_dict(best_state)
    return SentimentClassifier(model.cpu(), tokenizer)


@dataclass(frozen=True)
class ReviewTrainingConfig:
    """How to train a review head on sentence judgements; ``batch_sentences`` bounds a batch's padded sentences."""

    epochs: int = 10
    batch_sentences: int = 1_024
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    clip_norm: float = 1.0
    seed: int = 0


def train_review_head(
    head: ReviewHead, train: Sequence[tuple[ReviewReading, bool]], valid: Sequence[tuple[ReviewReading, bool]],
    config: ReviewTrainingConfig, log: Log = print,
) -> float:
    """Binary cross-entropy on each review's side; ``head`` is left with the epoch of best validation
    accuracy, which is returned."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    train = [item for item in train if item[0].subwords]
    sides = torch.tensor([float(positive) for _, positive in train])
    counts = [len(reading.subwords) for reading, _ in train]
    steps = len(_batches(counts, config.batch_sentences, random.Random(0)))
    training = TextTrainingConfig(epochs=config.epochs, learning_rate=config.learning_rate,
                                  warmup_steps=config.warmup_steps)
    best_accuracy, best_state = -1.0, copy.deepcopy(head.state_dict())
    for epoch, optimizer, scheduler in _epochs(head, steps, training):
        head.train()
        started, total = time.perf_counter(), 0.0
        batches = _batches(counts, config.batch_sentences, rng)
        for batch in batches:
            logits, _ = head([train[i][0] for i in batch])
            loss = F.binary_cross_entropy_with_logits(logits, sides[torch.tensor(batch)])
            _update(head, loss, optimizer, scheduler, config.clip_norm)
            total += float(loss.detach())
        logits = review_logits(head, valid)
        valid_accuracy = sum((logit > 0) == positive for logit, (_, positive) in zip(logits, valid)) / max(len(valid), 1)
        if valid_accuracy > best_accuracy:
            best_accuracy, best_state = valid_accuracy, copy.deepcopy(head.state_dict())
        log(f"epoch {epoch}: loss {total / len(batches):.4f}, valid accuracy {valid_accuracy:.4f} "
            f"({time.perf_counter() - started:.0f} s)")
    head.load_state_dict(best_state)
    return best_accuracy


@torch.inference_mode()
def review_logits(head: ReviewHead, reviews: Sequence[tuple[ReviewReading, bool]], chunk: int = 256) -> list[float]:
    """The head's positive-vs-negative logit for each review (0 for a review with no sentence)."""
    head.eval()
    logits = []
    for start in range(0, len(reviews), chunk):
        part = [reading for reading, _ in reviews[start : start + chunk]]
        readable = [r for r in part if r.subwords]
        values = iter(head(readable)[0].tolist() if readable else [])
        logits += [next(values) if r.subwords else 0.0 for r in part]
    return logits


def train_translator(
    train: Sequence[tuple[str, str]], valid: Sequence[tuple[str, str]], tokenizer: SubwordTokenizer,
    model_config: TranslatorConfig, config: TextTrainingConfig, log: Log = print,
    on_best: Callable[[TextTranslator], None] | None = None, start: Seq2SeqTranslator | None = None,
    score: Callable[[TextTranslator], float] | None = None,
) -> TextTranslator:
    """Teacher-forced cross-entropy with label smoothing; the epoch with the lowest validation loss is
    kept (and handed to ``on_best`` as soon as it is found).

    With ``score`` (higher is better: say, the validation BLEU of the model's translations), the
    epoch it scores highest is kept instead; validation loss is still logged. A model trained on
    another model's translations (sequence-level distillation) grows surer of one way of saying
    each sentence, which can raise its loss on people's translations while its own translations
    improve, so its loss is a poor guide.

    ``start`` continues from a trained model (same config and tokenizer); its validation loss (and
    score) is logged for comparison, and the best of the new epochs is kept (a continuation on
    other data, as ``--train-split train-copy`` is, may trade some validation loss for what the
    data teaches). With ``config.average_last`` = N > 1, the mean of the last N epochs' weights
    (checkpoint averaging) is judged too, and kept if it is better still.
    """
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = torch.device(config.device)
    model = Seq2SeqTranslator(model_config).to(device)
    if start is not None:
        model.load_state_dict(start.state_dict())

    def encode(pairs: Sequence[tuple[str, str]]) -> tuple[list[list[int]], list[list[int]]]:
        sources = [e.ids for e in tokenizer.encode([s for s, _ in pairs])]
        targets = [e.ids for e in tokenizer.encode([t for _, t in pairs])]
        return sources, targets

    def loss_of(sources: list[list[int]], targets: list[list[int]], batch: list[int], smoothing: float) -> torch.Tensor:
        source, lengths = pad([sources[i] for i in batch])
        target_in, _ = pad([[tokenizer.start_id] + targets[i] for i in batch])
        target_out, _ = pad([targets[i] + [tokenizer.end_id] for i in batch])
        logits = model(source.to(device), lengths, target_in.to(device))  # (B, T, V)
        return F.cross_entropy(
            logits.flatten(0, 1), target_out.to(device).flatten(), ignore_index=tokenizer.pad_id, label_smoothing=smoothing
        )

    sources, targets = encode(train)
    valid_sources, valid_targets = encode(valid)
    lengths = [max(len(s), len(t) + 1) for s, t in zip(sources, targets)]
    valid_batches = _batches([max(len(s), len(t) + 1) for s, t in zip(valid_sources, valid_targets)],
                             config.batch_tokens, random.Random(0))

    def validation_loss() -> float:
        model.eval()
        with torch.inference_mode():
            total = sum(float(loss_of(valid_sources, valid_targets, b, 0.0)) * len(b) for b in valid_batches)
        return total / max(len(valid), 1)

    best_badness, best_state = math.inf, copy.deepcopy(model.state_dict())

    def judged() -> tuple[float, str]:
        """What picks the epoch (lower is better) and what to log of it."""
        loss = validation_loss()
        if score is None:
            return loss, f"valid loss {loss:.4f}"
        value = score(TextTranslator(model.eval(), tokenizer))
        return -value, f"valid loss {loss:.4f}, valid score {value:.2f}"

    def keep_if_better(what: str) -> None:
        nonlocal best_badness, best_state
        badness, said = judged()
        if badness < best_badness:
            best_badness, best_state = badness, copy.deepcopy(model.state_dict())
            if on_best is not None:
                on_best(TextTranslator(model, tokenizer))
        log(f"{what}, {said}")

    steps = len(_batches(lengths, config.batch_tokens, random.Random(0)))
    if start is not None:
        log(f"start: {judged()[1]}")
    last_states: deque[dict[str, torch.Tensor]] = deque(maxlen=max(config.average_last, 1))
    for epoch, optimizer, scheduler in _epochs(model, steps, config):
        model.train()
        started, total = time.perf_counter(), 0.0
        batches = _batches(lengths, config.batch_tokens, rng)
        for batch in batches:
            loss = loss_of(sources, targets, batch, config.label_smoothing)
            _update(model, loss, optimizer, scheduler, config.clip_norm)
            total += float(loss.detach())
        last_states.append(copy.deepcopy(model.state_dict()))
        keep_if_better(f"epoch {epoch}: loss {total / len(batches):.4f} ({time.perf_counter() - started:.0f} s)")
    if config.average_last > 1 and len(last_states) > 1:
        model.load_state_dict({name: torch.stack([state[name].float() for state in last_states]).mean(0)
                               for name in last_states[0]})
        keep_if_better(f"mean of the last {len(last_states)} epochs")
    model.load_state_dict(best_state)
    return TextTranslator(model.cpu().eval(), tokenizer)
