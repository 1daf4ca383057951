"""The Python API: build, save, load and run a captioner."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Any, cast, overload

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from .batch_loader import BatchLoader
from .colours import colour_shares, unseen_colour_words
from .consensus import CaptionMemory, encoder_fingerprint
from .decoder import CheckedDecoder, Decoder, ImageRows, StepDecoder, check_decoder_step
from .decoder_weights import DecoderWeights, decoder_weights_wanted, weights_copy
from .decoding import DecodingOptions, decode
from .device import fast_bfloat16, pick_device
from .encoder import Encoder, EncoderConfig, EncoderOutput, check_features
from .encoder_stack import STACK_ENCODER, EncoderStack
from .errors import CaptionerError, ImageError, ModelLoadError, PluginError, describe_exception
from .evidence import EVIDENCE_FILE, PeopleDetector, dog_probability
from .gc_pause import gc_paused
from .images import ImageInput
from .labelset import LabelSet, load_label_set
from .language_model import LANGUAGE_MODEL_FILE, CaptionLanguageModel, FusedDecoder, FusedSource
from .model_catalog import resolve_model
from .model_folder import ModelConfig, read_config, read_vocab, read_weights, write_model_folder
from .objects import ObjectWords, RecognizedObject, fix_articles
from .openvino_encoder import OpenVINOEncoder, openvino_wanted
from .postprocessing import PostProcessingChain
from .registry import create_decoder, create_encoder, decoders, encoders
from .results import Candidate, CaptionResult
from .vocab import Vocabulary
from .weights_hash import weights_fingerprint

SingleImage = str | PathLike | bytes | bytearray | Image.Image  # one image; an array or tensor may be a batch


class CaptionModel(nn.Module):
    """Encoder and decoder in one module (what ``model.safetensors`` holds)."""

    def __init__(self, encoder: Encoder, decoder: Decoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(B, T, V)`` for images ``(B, 3, H, W)`` and tokens ``(B, T)``."""
        return self.decoder(self.encoder(images), tokens)


def _weights_fingerprint(module: nn.Module) -> tuple[tuple[int, int], ...]:
    """:func:`~captioner.weights_hash.weights_fingerprint` of ``module``'s parameters and buffers."""
    return weights_fingerprint(itertools.chain(module.parameters(), module.buffers()))


def _registered_name(module: nn.Module, registry_kind: str) -> str:
    name = getattr(module, "registered_name", None)
    if not name:
        raise CaptionerError(
            f"this {registry_kind} was not built by create_{registry_kind}(); pass its registered name instead"
        )
    return name


def _build_encoder(name: str, config: EncoderConfig, members: list[str]) -> Encoder:
    """The encoder a model folder describes (a stack of the encoders ``members`` names if any), without weights."""
    if name == STACK_ENCODER or members:
        if name != STACK_ENCODER or not members:
            raise ModelLoadError(f"encoder {name!r} with {len(members)} members: only a {STACK_ENCODER!r} has them")
        stack = EncoderStack([_build_encoder(member, member_config, [])
                              for member, member_config in zip(members, config.members)])
        if stack.config != config:
            raise ModelLoadError(f"its {STACK_ENCODER!r} encoder config does not follow from its members' configs")
        return stack
    registered = encoders.get(name).config
    if (registered.feature_dim, registered.spatial) != (config.feature_dim, config.spatial):
        raise ModelLoadError(f"encoder {name!r} no longer yields the features this model used")
    encoder = create_encoder(name, pretrained=False)
    if config.classes is None:
        encoder.classifier = None  # saved without the classifier head (older model folders)
    encoder.config = config  # preprocess exactly as in training
    return encoder


def _renamed_argument(old: str, old_value: Any, new: str, new_value: Any) -> Any:
    """``new_value``, or ``old_value`` with a :class:`DeprecationWarning` if only the old name was used."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"pass {new}, not both {new} and its deprecated name {old}")
    warnings.warn(f"{old} is deprecated and will be removed in a future release; use {new} (the name training "
                  "configs and config.json use)", DeprecationWarning, stacklevel=3)
    return old_value


def _split_inputs(images: Any) -> tuple[list[Any], bool]:
    """A list of single images, and whether one image (not a batch) was given."""
    if isinstance(images, (list, tuple)):
        return list(images), False
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        return list(images.unbind(0)), False
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images), False
    return [images], True


class Captioner:
    """An image encoder, a caption decoder and their vocabulary, ready to caption images.

    >>> captioner = Captioner.from_pretrained()            # the shipped default model
    >>> captioner.caption("photo.jpg").text
    """

    def __init__(
        self,
        encoder: Encoder | str,
        decoder: Decoder | str,
        vocab: Vocabulary | Sequence[str],
        *,
        device: str | torch.device | None = None,
        decoding: DecodingOptions | None = None,
        encoder_options: dict[str, Any] | None = None,
        decoder_hparams: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        decoder_options: dict[str, Any] | None = None,
        memory: CaptionMemory | None = None,
        people_detector: PeopleDetector | None = None,
        language_model: CaptionLanguageModel | None = None,
    ) -> None:
        """``encoder_options`` go to ``create_encoder`` (e.g. ``pretrained``, ``weights``) when ``encoder``
        is a name; ``decoder_hparams`` to ``create_decoder`` when ``decoder`` is one: the same
        hyper-parameters a training config's ``decoder_hparams`` and ``config.json`` hold.
        ``memory`` holds training photos' features and captions for consensus reranking
        (``captioner memory`` builds one). ``people_detector`` and ``language_model`` keep
        captions to what the photo shows (:mod:`captioner.evidence`). ``decoder_options`` is
        the deprecated name of ``decoder_hparams``."""
        decoder_hparams = _renamed_argument("decoder_options", decoder_options, "decoder_hparams", decoder_hparams)
        self.vocab = vocab if isinstance(vocab, Vocabulary) else Vocabulary.from_words(vocab)
        encoder_module: Encoder = (create_encoder(encoder, **(encoder_options or {})) if isinstance(encoder, str)
                                   else encoder)
        self.encoder_config: EncoderConfig = encoder_module.config
        decoder_module: Decoder = (
            create_decoder(decoder, vocab_size=len(self.vocab), feature_dim=self.encoder_config.feature_dim,
                           **(decoder_hparams or {}))
            if isinstance(decoder, str) else decoder
        )
        self._check_compatible(encoder_module, decoder_module)
        self._memory: CaptionMemory | None = None
        self.device = pick_device(device)
        self.model = CaptionModel(encoder_module, decoder_module).to(self.device).eval()
        self.mixed_precision = fast_bfloat16(self.device)  # bf16 autocast for the encoder (CUDA, AMX CPUs)
        self.channels_last = self.device.type in ("cpu", "cuda")  # CNNs run about 2x faster so on a CPU
        self.openvino = openvino_wanted(self.device)  # the encoder compiled by OpenVINO (CPU, about 2.3x faster)
        self.decoder_weights: DecoderWeights = decoder_weights_wanted(self.device)  # packed on a CPU; int8 on request
        if self.channels_last:
            self.model.encoder.to(memory_format=torch.channels_last)
        self.decoding = decoding or DecodingOptions()
        self.metadata = dict(metadata or {})
        self._chains: dict[tuple[str, ...], PostProcessingChain] = {}
        self._fused: tuple[tuple, nn.Module] | None = None  # (weights fingerprint, fused encoder)
        self._compiled: tuple[tuple, tuple[int, ...], OpenVINOEncoder | None] | None = None  # (fingerprint, pixel shape, ...)
        self._decoder_copy: tuple[tuple, Decoder] | None = None  # ((weights kind, fingerprint), decoder copy)
        self._language_model_copy: tuple[tuple, CaptionLanguageModel] | None = None  # (fingerprint, packed copy)
        self._object_words: dict[bool, ObjectWords] = {}  # by open_vocabulary
        self._decoder_checked = False  # one probe step, the first time captions are written
        self.memory = memory
        self.people_detector = people_detector
        self.language_model = language_model

    @property
    def people_detector(self) -> PeopleDetector | None:
        """The people detector that guidance asks whether a photo has people (None: the model has none)."""
        return self._people_detector

    @people_detector.setter
    def people_detector(self, detector: PeopleDetector | None) -> None:
        self._people_detector = detector.to(self.device).eval() if detector is not None else None

    @property
    def language_model(self) -> CaptionLanguageModel | None:
        """The caption language model fused with the decoder on unfamiliar photos (None: the model has none)."""
        return self._language_model

    @language_model.setter
    def language_model(self, model: CaptionLanguageModel | None) -> None:
        self._language_model = model.to(self.device).eval() if model is not None else None

    @property
    def memory(self) -> CaptionMemory | None:
        """Training photos' features and captions for consensus reranking (None: the model has none)."""
        return self._memory

    @memory.setter
    def memory(self, memory: CaptionMemory | None) -> None:
        if memory is not None and memory.encoder != encoder_fingerprint(self.encoder):
            raise CaptionerError("its caption memory was made with another encoder's features "
                                 "(captioner memory makes one for this model)")
        self._memory = memory

    def _check_compatible(self, encoder: Encoder, decoder: Decoder) -> None:
        if decoder.vocab_size != len(self.vocab):
            raise CaptionerError(f"decoder vocabulary size {decoder.vocab_size} != vocabulary size {len(self.vocab)}")
        if decoder.feature_dim != self.encoder_config.feature_dim:
            raise CaptionerError(
                f"decoder expects {decoder.feature_dim}-d features but the encoder gives {self.encoder_config.feature_dim}"
            )
        if decoder.needs_grid and not self.encoder_config.spatial:
            raise CaptionerError("this decoder attends over a spatial grid, but the encoder yields only pooled features")

    @property
    def encoder(self) -> Encoder:
        return self.model.encoder

    @property
    def decoder(self) -> Decoder:
        return self.model.decoder

    # -- saving and loading -------------------------------------------------------------

    def model_config(self) -> ModelConfig:
        stack = self.encoder.encoders if isinstance(self.encoder, EncoderStack) else []
        return ModelConfig(
            encoder=_registered_name(self.encoder, "encoder"),
            encoder_config=self.encoder_config,
            encoder_members=[_registered_name(member, "encoder") for member in stack],
            decoder=_registered_name(self.decoder, "decoder"),
            decoder_hparams=self._decoder_hparams(),
            vocab_size=len(self.vocab),
            decoding=asdict(self.decoding),
            metadata=self.metadata,
        )

    def _decoder_hparams(self) -> dict[str, Any]:
        try:
            return self.decoder.hparams
        except ValueError as error:
            raise self._plugin_failure("decoder", decoders, self.decoder, error) from error

    def save(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write the model folder (``dtype=torch.float16`` halves its size), with its caption memory if any."""
        folder = Path(path)
        write_model_folder(folder, self.model_config(), self.vocab, self.model, dtype)
        if self.memory is not None:
            self.memory.save(folder)
        else:
            CaptionMemory.remove(folder)  # an older model's, left in the folder
        for part, file in ((self.people_detector, EVIDENCE_FILE), (self.language_model, LANGUAGE_MODEL_FILE)):
            if part is not None:
                part.save(folder)
            else:
                (folder / file).unlink(missing_ok=True)
        return folder

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path | None = None, *, device: str | torch.device | None = None
    ) -> Captioner:
        """Load a model folder, or a shipped model by name (the default model if None)."""
        folder = resolve_model(name_or_path)
        config = read_config(folder)
        vocab = read_vocab(folder, config.vocab_size)
        try:
            decoders.get(config.decoder)
            encoder = _build_encoder(config.encoder, config.encoder_config, config.encoder_members)
            decoder = create_decoder(
                config.decoder, vocab_size=len(vocab), feature_dim=config.encoder_config.feature_dim, **config.decoder_hparams
            )
        except CaptionerError as error:
            raise ModelLoadError(f"{folder}: {error}") from None
        read_weights(folder, CaptionModel(encoder, decoder))
        decoding = DecodingOptions().updated(
            **{k: v for k, v in config.decoding.items() if k in DecodingOptions.field_names()}
        )
        memory = CaptionMemory.load(folder)
        if memory is None and decoding.consensus_neighbours:
            raise ModelLoadError(f"{folder}: its decoding defaults rerank by consensus, but it has no caption memory")
        captioner = cls(encoder, decoder, vocab, device=device, decoding=decoding, metadata=config.metadata,
                        people_detector=PeopleDetector.load(folder), language_model=CaptionLanguageModel.load(folder))
        try:
            captioner.memory = memory
        except CaptionerError as error:
            raise ModelLoadError(f"{folder}: {error}") from None
        return captioner

    # -- captioning ---------------------------------------------------------------------

    @overload
    def caption(self, images: SingleImage, *, batch_size: int = 32, postprocess: Sequence[str] = (),
                **decoding: Any) -> CaptionResult: ...

    @overload
    def caption(self, images: list[ImageInput] | tuple[ImageInput, ...], *, batch_size: int = 32,
                postprocess: Sequence[str] = (), **decoding: Any) -> list[CaptionResult]: ...

    @overload
    def caption(self, images: np.ndarray | torch.Tensor, *, batch_size: int = 32, postprocess: Sequence[str] = (),
                **decoding: Any) -> CaptionResult | list[CaptionResult]: ...  # a 4-D array is a batch

    def caption(
        self,
        images: ImageInput | Iterable[ImageInput],
        *,
        batch_size: int = 32,
        postprocess: Sequence[str] = (),
        **decoding: Any,
    ) -> CaptionResult | list[CaptionResult]:
        """Caption one image or a list of them.

        ``decoding`` overrides the model's :class:`DecodingOptions` (``beam_size=3``,
        ``max_length=20``, ``method="greedy"``, ...). A list gives a list of results in
        the same order; an unreadable image there gets a result whose ``error`` says why,
        and the others are still captioned. A single unreadable image raises
        :class:`ImageError`.

        ``postprocess`` names post-processors to run in order on the captions, e.g.
        ``["sentiment", "translate:es"]``; an unknown one or a bad option raises
        before any image is read, a failure while running is recorded in
        ``result.postprocess_errors``.
        """
        items, single = _split_inputs(images)
        results = list(self.caption_stream(items, batch_size=batch_size, postprocess=postprocess, **decoding))
        if single:
            if results[0].error is not None:
                raise ImageError(results[0].error)
            return results[0]
        return results

    def caption_stream(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: int = 32,
        postprocess: Sequence[str] = (),
        names: Iterable[str] | None = None,
        num_workers: int | None = None,
        **decoding: Any,
    ) -> Iterator[CaptionResult]:
        """Caption images as they come (a generator is read lazily), yielding results in order.

        Images are decoded and resized by ``num_workers`` threads a batch or two ahead of
        the model (on CUDA, JPEG files are decoded on the GPU). ``names`` overrides the
        names used in results and errors. Otherwise as :meth:`caption` with a list.
        """
        unknown = set(decoding) - DecodingOptions.field_names()
        if unknown:
            raise TypeError(f"unknown decoding option(s): {', '.join(sorted(unknown))}")
        options = self.decoding.updated(**decoding)
        if decoding.get("guide") and options.method == "sample":
            raise ValueError("guidance needs beam search or greedy decoding: sampled captions are unguided "
                             "(leave guide out, or pass --no-guide)")
        self._reranks(options)
        chain = self.postprocessing_chain(postprocess)
        language = self.metadata.get("language", "en")
        with BatchLoader(self.encoder_config, self.device, num_workers) as loader:
            for batch in loader.batches(images, batch_size, names):
                results = [CaptionResult(image=name, language=language) for name in batch.names]
                for index, error in batch.errors.items():
                    results[index].error = error
                if batch.pixels is not None:
                    described = self._run_model(batch.pixels, options)
                    for index, (candidates, objects, required) in zip(batch.loaded, described):
                        result = results[index]
                        result.candidates, result.objects, result.required_words = candidates, objects, required
                chain(results)
                yield from results

    def inference_encoder(self) -> nn.Module:
        """The encoder's fused copy (built when first needed, rebuilt when its weights change) in eval mode."""
        if self.encoder.training:
            return self.encoder
        fingerprint = _weights_fingerprint(self.encoder)
        if self._fused is None or self._fused[0] != fingerprint:
            fused = self.encoder.fused_for_inference() if hasattr(self.encoder, "fused_for_inference") else None
            if fused is not None and self.channels_last:
                fused.to(memory_format=torch.channels_last)
            self._fused = (fingerprint, fused or self.encoder)
        return self._fused[1]

    def inference_decoder(self, features: EncoderOutput | None = None) -> Decoder:
        """The decoder as captions are written: its copy with packed or int8 weights where
        :attr:`decoder_weights` asks for one (:mod:`captioner.decoder_weights`; built when first
        needed, rebuilt when the weights change), else the decoder itself. A new copy takes one
        probe step on ``features``' first row; a decoder whose copy fails it (a plugin that reads
        a layer's weight tensor itself) keeps its float32 weights, with one warning."""
        if self.decoder_weights == "float32" or self.decoder.training:
            return self.decoder
        key = (self.decoder_weights, _weights_fingerprint(self.decoder))
        if self._decoder_copy is None or self._decoder_copy[0] != key:
            compact = weights_copy(self.decoder, self.decoder_weights)
            if features is not None:
                try:
                    with torch.inference_mode():
                        check_decoder_step(compact, features.rows(slice(0, 1)), self.vocab.start_id, len(self.vocab))
                except Exception as error:
                    warnings.warn(f"the decoder runs with float32 weights: its {self.decoder_weights} copy failed a "
                                  f"step ({describe_exception(error)}); CAPTIONER_DECODER_WEIGHTS=float32 skips trying",
                                  stacklevel=2)
                    compact = self.decoder
            self._decoder_copy = (key, compact)
        return self._decoder_copy[1]

    def inference_language_model(self) -> CaptionLanguageModel | None:
        """The caption language model as captions are written: with packed weights where
        :attr:`decoder_weights` is ``packed`` (built when first needed, rebuilt when the weights
        change), else the model itself."""
        model = self.language_model
        if model is None or self.decoder_weights != "packed" or model.training:
            return model
        key = _weights_fingerprint(model)
        if self._language_model_copy is None or self._language_model_copy[0] != key:
            self._language_model_copy = (key, weights_copy(model, "packed"))
        return self._language_model_copy[1]

    def warm_up(self) -> None:
        """Caption one blank image, so that the one-time work (converting and compiling the encoder
        for OpenVINO, reading the label set, the first pass through each model) is done before the
        first real photo: a server calls it at start."""
        height, width = self.encoder_config.input_size
        self.caption(Image.new("RGB", (width, height)))

    def compiled_encoder(self, pixel_shape: tuple[int, ...]) -> OpenVINOEncoder | None:
        """The inference encoder compiled by OpenVINO for pixels of ``pixel_shape`` per image, or None
        where it runs in PyTorch (``openvino`` off, training, or an encoder that cannot be compiled)."""
        if not self.openvino or self.encoder.training:
            return None
        encoder = self.inference_encoder()
        assert self._fused is not None  # set by inference_encoder
        if self._compiled is None or self._compiled[:2] != (self._fused[0], pixel_shape):
            try:
                compiled = OpenVINOEncoder(encoder, cast(tuple[int, int, int], pixel_shape))
            except Exception as error:  # e.g. a plugin's encoder that torch.export cannot trace
                reason = describe_exception(error)  # torch.export's can run to a page: its start says enough
                reason = reason if len(reason) <= 200 else reason[:200] + "..."
                warnings.warn(f"the encoder runs in PyTorch: OpenVINO could not compile it ({reason}); "
                              "CAPTIONER_OPENVINO=0 skips trying", stacklevel=2)
                compiled = None
            self._compiled = (self._fused[0], pixel_shape, compiled)
        return self._compiled[2]

    def _run_model(
        self, pixels: torch.Tensor, options: DecodingOptions
    ) -> list[tuple[list[Candidate], list[RecognizedObject], list[str]]]:
        """Encode and decode a batch; an exception inside either names its plugin."""
        try:
            features = self.encode(pixels)
            check_features(features, self.encoder_config, pixels.size(0))
        except Exception as error:
            raise self._plugin_failure("encoder", encoders, self.encoder, error) from error
        try:
            if not self._decoder_checked:
                check_decoder_step(self.decoder, features.rows(slice(0, 1)), self.vocab.start_id, len(self.vocab))
                self._decoder_checked = True
            return self.describe(features, options)
        except Exception as error:
            raise self._plugin_failure("decoder", decoders, self.decoder, error) from error

    def _photo_rgb(self, pixels: torch.Tensor) -> torch.Tensor:
        """Every fourth pixel of the photos that preprocessed ``pixels`` were made from, RGB in [0, 1]
        ``(B, 3, H / 4, W / 4)`` (a stack's first member's input): enough to tell which colours are there."""
        config = self.encoder_config.members[0] if self.encoder_config.members else self.encoder_config
        height, width = config.input_size
        mean, std = (pixels.new_tensor(values, dtype=torch.float32).view(1, 3, 1, 1) for values in (config.mean, config.std))
        return pixels[:, :3, :height:4, :width:4].float() * std + mean

    @staticmethod
    def _plugin_failure(kind: str, registry: Any, module: nn.Module, error: Exception) -> PluginError:
        name = getattr(module, "registered_name", None) or type(module).__name__
        entry = registry.entries.get(name)
        owner = f" from plugin {entry.plugin!r}" if entry else ""
        return PluginError(f"{kind} {name!r}{owner} failed: {describe_exception(error)}")

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> EncoderOutput:
        """Encoder features (float32) for preprocessed images ``(B, 3, H, W)`` (3 channels per member for a stack).

        On a CPU the encoder runs compiled by OpenVINO where it can (:attr:`openvino`,
        :mod:`captioner.openvino_encoder`); otherwise channels-last on CPU and CUDA. Either
        runs in bfloat16 where that is fast (:func:`~captioner.device.fast_bfloat16`: CUDA,
        CPUs with AMX) unless ``mixed_precision`` is set to False. The features also carry
        the photos' colours (``colours``, :func:`~captioner.colours.colour_shares`).
        """
        pixels = pixels.to(self.device, non_blocking=True)
        return self._run_encoder(pixels)._replace(colours=colour_shares(self._photo_rgb(pixels)))

    def _run_encoder(self, pixels: torch.Tensor) -> EncoderOutput:
        compiled = self.compiled_encoder(tuple(pixels.shape[1:]))
        if compiled is not None:
            return compiled(pixels, bfloat16=self.mixed_precision)
        if self.channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        encoder = self.inference_encoder()
        if not self.mixed_precision or self.device.type not in ("cuda", "cpu"):
            return encoder(pixels)
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return encoder(pixels).float()

    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 64,
                      on_error: Callable[[str], None] = lambda message: None,
                      progress: str | None = None) -> Iterator[tuple[list[int], EncoderOutput]]:
        """Encoder features for ``images``, a batch at a time: the indices of the images read and
        their features. An image that cannot be read is reported to ``on_error`` (one line
        naming it) and skipped; ``progress`` names a progress bar."""
        offset = 0
        with BatchLoader(self.encoder_config, self.device) as loader, \
                tqdm(total=len(images), desc=progress, unit="image", disable=progress is None) as bar:
            for batch in loader.batches(images, batch_size):
                bar.update(len(batch.names))
                for message in batch.errors.values():
                    on_error(message)
                if batch.pixels is not None:
                    yield [offset + index for index in batch.loaded], self.encode(batch.pixels)
                offset += len(batch.names)

    def decode(self, features: EncoderOutput, options: DecodingOptions | None = None) -> list[list[Candidate]]:
        """Caption candidates, best first, for each row of ``features``."""
        return [candidates for candidates, _, _ in self.describe(features, options)]

    def object_words(self, open_vocabulary: bool = True) -> ObjectWords | None:
        """This model's vocabulary matched to its encoder's classes (None without a classifier)."""
        if self.encoder_config.classes is None or getattr(self.encoder, "classifier", None) is None:
            return None
        if open_vocabulary not in self._object_words:
            label_set = load_label_set(self.encoder_config.classes)
            self._object_words[open_vocabulary] = ObjectWords.match(label_set, self.vocab, open_vocabulary)
        return self._object_words[open_vocabulary]

    @gc_paused()  # a batch's captions are tens of thousands of surviving objects: see gc_pause
    def describe(
        self, features: EncoderOutput, options: DecodingOptions | None = None
    ) -> list[tuple[list[Candidate], list[RecognizedObject], list[str]]]:
        """Per row of ``features``: caption candidates (best first), the recognised objects,
        and the words guidance required (empty when unguided)."""
        options = options or self.decoding
        banned = self.vocab.never_said(unk=options.suppress_unk)
        object_words, probabilities = None, None
        if features.class_logits is not None:
            object_words = self.object_words(options.open_vocabulary)
            probabilities = features.class_logits.float().softmax(dim=1)
        if options.method == "greedy" and options.guide and object_words is not None:
            options = options.updated(method="beam", beam_size=1)  # greedy is a beam of one, which guidance steers
        decoder: StepDecoder = CheckedDecoder(self.inference_decoder(features), len(self.vocab))  # every step checked
        constraints, source = None, cast(ImageRows, features)
        if object_words is not None and probabilities is not None and options.guide:
            evidence = self._evidence(features.pooled, probabilities, object_words.label_set)
            ruled_out = None
            if evidence is not None and self.language_model is not None and options.people_threshold:
                ruled_out = self.language_model.ruled_out(evidence, (options.people_threshold, options.absent_threshold))
            if features.colours is not None and options.colour_threshold:
                unseen = unseen_colour_words(features.colours, self.vocab.tokens, options.colour_threshold)
                ruled_out = unseen if ruled_out is None else ruled_out | unseen
            if options.method == "beam" and options.max_objects:
                constraints = object_words.constraints(probabilities, options, ruled_out)
            if evidence is not None and self.language_model is not None and options.language_weight:
                assert self.people_detector is not None  # there is evidence
                with torch.inference_mode():
                    weight = options.language_weight * self.people_detector.unfamiliarity(features.pooled)  # (B,)
                if bool(weight.any()):  # only now is the language model's copy needed
                    language_model = self.inference_language_model()
                    assert language_model is not None  # checked above
                    decoder, source = FusedDecoder(decoder, language_model), FusedSource(features, evidence, weight)
        rerank = self._reranks(options)
        hypotheses = decode(
            decoder, source, options.updated(n_best=options.beam_size) if rerank else options,
            start_id=self.vocab.start_id, end_id=self.vocab.end_id, banned_ids=banned, constraints=constraints,
        )
        objects = (object_words.recognize(probabilities) if object_words is not None and probabilities is not None
                   else [[] for _ in hypotheses])
        tokens = object_words.tokens if object_words is not None and constraints is not None else self.vocab.tokens
        required_ids = constraints.required.tolist() if constraints is not None else [[] for _ in hypotheses]
        described = []
        for per_image, image_objects, required_slots in zip(hypotheses, objects, required_ids):
            slots = [[tokens[t] for t in slot if t >= 0] for slot in required_slots]
            required = [slot[0] for slot in slots if slot]
            row = []
            for h in per_image:
                words = fix_articles(self.vocab.decode(h.token_ids, tokens), {word for slot in slots for word in slot})
                row.append(Candidate(" ".join(words), words, h.score, h.logprob, h.finished, h.attention))
            described.append((row, image_objects, required))
        if rerank:
            self._rerank(features.pooled, [row for row, _, _ in described], options)
        return described

    def _evidence(self, pooled: torch.Tensor, probabilities: torch.Tensor, label_set: LabelSet) -> torch.Tensor | None:
        """``(B, 2)`` the probabilities that each photo shows people and a dog (None without a people detector)."""
        if self.people_detector is None:
            return None
        with torch.inference_mode():
            people = self.people_detector(pooled, probabilities).sigmoid()
            return torch.stack([people, dog_probability(probabilities, label_set)], dim=1)

    def _reranks(self, options: DecodingOptions) -> bool:
        """Whether ``options`` rerank by consensus; ``ValueError`` if they ask it of a model without a memory."""
        if options.consensus_neighbours and self.memory is None:
            raise ValueError("consensus_neighbours needs a caption memory, and this model has none "
                             "(captioner memory adds one)")
        return options.consensus_neighbours > 0 and options.method == "beam" and options.beam_size > 1

    def _rerank(self, pooled: torch.Tensor, rows: list[list[Candidate]], options: DecodingOptions) -> None:
        """Reorder each row of candidates by consensus with the caption memory, keeping ``n_best`` of them."""
        assert self.memory is not None  # checked by _reranks
        scored = self.memory.rerank_scores(
            pooled, [[c.words for c in row] for row in rows], [[c.score or 0.0 for c in row] for row in rows],
            options.consensus_neighbours, options.consensus_weight, options.consensus_generic)
        keep = options.n_best or options.beam_size
        for row, (agreement, score) in zip(rows, scored):
            for candidate, value in zip(row, agreement):
                candidate.consensus = float(value)
            order = sorted(range(len(row)), key=lambda i: -score[i])[:keep]
            row[:] = [row[i] for i in order]

    def postprocessing_chain(self, specs: Sequence[str]) -> PostProcessingChain:
        """The post-processors for ``specs``, built on first use and kept for later calls."""
        key = tuple(specs)
        if key not in self._chains:
            self._chains[key] = PostProcessingChain(key)
        return self._chains[key]
