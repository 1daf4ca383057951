"""What the page's events and the HTTP API do, without the page around them."""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from ..captioner import Captioner
from ..images import load_image
from ..methods import METHODS
from ..postprocessing import list_postprocessor_specs
from ..results import CaptionResult
from .about import about_model
from .batch_table import batch_table_html, thumbnail_uri
from .batcher import CaptionBatcher
from .explain import explanations_html
from .heatmap import AttentionMaps, heatmaps_html
from .language import Languages, nbest_texts
from .messages import public_message, user_error
from .model_pool import ModelPool, find_models
from .outputs import OutputFiles
from .summary import summary_html

BEAM_SIZES = (1, 10)  # the sliders' ranges, also enforced for API callers
MAX_LENGTHS = (1, 50)
LENGTH_PENALTIES = (0.0, 2.0)
NBEST_HEADERS = ["#", "caption", "score"]
BATCH_STEP = 8  # photos per forward pass in the batch tab: progress moves this often


@dataclass(frozen=True)
class UIConfig:
    """How the web interface serves: which models, where, and how much load it admits."""

    models: tuple[str, ...] = ()  # names or folders; the first is the default (else the shipped default)
    device: str | None = None
    queue_size: int = 64  # requests waiting beyond this get a "busy" answer
    max_batch_size: int = 16  # concurrent caption requests captioned in one forward pass
    max_files: int = 500  # per batch request
    max_file_size: int = 20 * 1024 * 1024  # bytes per upload


def in_range(name: str, value: float, limits: tuple[float, float]) -> float:
    if not limits[0] <= value <= limits[1]:
        raise ValueError(f"{name} must be between {limits[0]} and {limits[1]}, not {value}")
    return value


def page_options(method: str, beam_size: float, max_length: float, length_penalty: float,
                 guide: bool = True) -> dict[str, Any]:
    """Decoding options from the page's controls (or a Gradio API call), checked against the controls' ranges.

    The guidance box applies where guidance does, to beam search and greedy decoding: a sampled caption is
    unguided whatever it says (the library refuses an explicit ``guide=True`` with sampling)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    beam = int(in_range("beam_size", beam_size, BEAM_SIZES))
    return {"method": method, "beam_size": beam, "n_best": beam,
            "max_length": int(in_range("max_length", max_length, MAX_LENGTHS)),
            "length_penalty": float(in_range("length_penalty", length_penalty, LENGTH_PENALTIES)),
            "guide": bool(guide) and method != "sample"}


def upload_path(upload: Any) -> tuple[str, str]:
    """The cached file and original name of an image input that Gradio did not preprocess."""
    if isinstance(upload, dict) and upload.get("path"):
        return upload["path"], upload.get("orig_name") or Path(upload["path"]).name
    if isinstance(upload, str) and upload:
        return upload, Path(upload).name
    raise user_error("no image: upload, paste or take a photo first")


class PageSessions:
    """Per visitor of the page (a Gradio session): which caption request came last, and its heat-map source.

    A request overtaken by a newer one from the same page shows nothing, so an old photo's caption never
    appears beside a new photo. Kept here rather than in a ``gr.State``: Gradio 6.31's MCP server fails on
    tools that return a State.
    """

    def __init__(self, keep: int = 256) -> None:
        self._latest: OrderedDict[str | None, tuple[int, AttentionMaps | None]] = OrderedDict()
        self._tokens = itertools.count()
        self._keep = keep
        self._lock = threading.Lock()

    def start(self, session: str | None) -> int:
        """Note a new request from ``session``; its token."""
        with self._lock:
            token = next(self._tokens)
            self._latest[session] = (token, None)
            self._latest.move_to_end(session)
            while len(self._latest) > self._keep:
                self._latest.popitem(last=False)
            return token

    def finish(self, session: str | None, token: int, maps: AttentionMaps | None) -> bool:
        """Keep ``maps`` if request ``token`` is still the session's latest; say whether it is."""
        with self._lock:
            latest = self._latest.get(session, (None, None))[0] == token
            if latest:
                self._latest[session] = (token, maps)
            return latest

    def maps(self, session: str | None) -> AttentionMaps | None:
        with self._lock:
            return self._latest.get(session, (None, None))[1]


def run_name(count: int) -> str:
    """A download's name for a batch run: when it ran and how many photos, e.g. ``captions-20261127-173401-12-photos``."""
    return f"captions-{time.strftime('%Y%m%d-%H%M%S')}-{count}-photo{'s' if count != 1 else ''}"


class CaptionService:
    """The loaded models, the shared batcher, and the functions behind the page and the APIs."""

    def __init__(self, config: UIConfig) -> None:
        self.config = config
        self.pool = ModelPool(find_models(config.models), device=config.device)
        self.pool.get(self.pool.default)  # load the default model before the first visitor
        self.batcher = CaptionBatcher(max_batch_size=config.max_batch_size)
        self.files = OutputFiles()
        self.specs = list_postprocessor_specs()
        self.languages = Languages.from_specs(self.specs)
        self.sessions = PageSessions()

    def close(self) -> None:
        self.batcher.close()
        self.files.close()

    def caption_image(self, pixels: torch.Tensor, name: str, model: str | None, options: dict[str, Any],
                      postprocess: Sequence[str]) -> tuple[Captioner, CaptionResult]:
        """Caption one decoded photo through the shared batcher, after checking the request in this thread.

        Options are resolved against the model's defaults, so requests from the page and the HTTP API
        with the same effective settings are captioned in the same forward pass.
        """
        captioner = self.pool.get(model or self.pool.default)
        resolved = captioner.decoding.updated(**options)  # a bad option fails here, not in the batch
        resolved = resolved.updated(n_best=resolved.n_best or resolved.beam_size)  # the same list, one spelling
        captioner.postprocessing_chain(postprocess)  # so does an unknown post-processor
        return captioner, self.batcher.caption(captioner, pixels, name, asdict(resolved), tuple(postprocess))

    def caption(self, image: dict[str, Any] | None, model: str, method: str, beam_size: float, max_length: float,
                length_penalty: float, postprocess: list[str] | None, guide: bool = True, language: str = "en",
                heatmaps: bool = False):
        """Caption one photo: the caption, the n-best list, the full result, badges and tags (sentiment, the
        objects the encoder recognises), post-processor outputs drawn as HTML, and heat maps if asked for.

        Args:
            image: the photo (a file, or an http(s) URL for MCP clients).
            model: which served model captions it.
            method: beam, greedy or sample.
            beam_size: beam width (and length of the n-best list).
            max_length: most words in the caption.
            length_penalty: 0 ranks captions by total log-probability, 1 by the mean per word.
            postprocess: post-processors to run in order, e.g. ["sentiment", "translate:es"].
            guide: name what the encoder's classifier recognises in the caption (open-world guidance).
            language: the language of the caption and the n-best list ("en", "es", ...).
            heatmaps: also draw where the model looked for each word (HTML with inline images).
        """
        outputs, maps = self.page_outputs(image, model, method, beam_size, max_length, length_penalty, postprocess,
                                          guide, language)
        return (*outputs, heatmaps_html(maps) if heatmaps else "")

    def caption_for_page(self, image: dict[str, Any] | None, model: str, method: str, beam_size: float,
                         max_length: float, length_penalty: float, postprocess: list[str] | None, guide: bool,
                         language: str, request: gr.Request):
        """The page's caption event: as :meth:`caption`, the heat maps drawn later (:meth:`draw_heatmaps`), no
        image giving empty outputs, and nothing shown (not even an error) once a newer request has started."""
        token = self.sessions.start(request.session_hash)
        outputs: tuple = ("", [], None, "", "")
        maps = None
        try:
            if image is not None:
                outputs, maps = self.page_outputs(image, model, method, beam_size, max_length, length_penalty,
                                                  postprocess, guide, language)
        except Exception:
            if self.sessions.finish(request.session_hash, token, None):
                raise
            return tuple(gr.skip() for _ in range(len(outputs) + 1))
        if not self.sessions.finish(request.session_hash, token, maps):
            return tuple(gr.skip() for _ in range(len(outputs) + 1))
        return (*outputs, "")

    def page_outputs(self, image: dict[str, Any] | None, model: str, method: str, beam_size: float,
                     max_length: float, length_penalty: float, postprocess: list[str] | None, guide: bool,
                     language: str) -> tuple[tuple, AttentionMaps | None]:
        """Caption, n-best rows, result, badges and tags, drawn post-processor outputs; and the heat-map source."""
        path, name = upload_path(image)  # the event skips Gradio's preprocessing: our loader explains bad files
        options = page_options(method, beam_size, max_length, length_penalty, guide)
        target = self.languages.spec(language)
        chain = [*(postprocess or ()), *([target] if target else [])]
        pixels = load_image(path, name)  # decoded here, in this request's thread: a bad file fails only this request
        captioner, result = self.caption_image(pixels, name, model, options, chain)
        for spec, message in result.postprocess_errors.items():
            gr.Warning(public_message(f"{spec}: {message}"))
        texts = nbest_texts(captioner, result, target)
        nbest = [[rank, text, None if candidate.score is None else round(candidate.score, 2)]
                 for rank, (text, candidate) in enumerate(zip(texts, result.candidates), 1)]
        maps = AttentionMaps.of(pixels, result.candidates[0], captioner.encoder_config)
        outputs = (result.text, nbest, result.to_dict(), summary_html(result), explanations_html(result.extras))
        return outputs, maps

    def draw_heatmaps(self, shown: bool, request: gr.Request) -> str:
        """The page's heat maps for its last caption, drawn only while their panel is open."""
        return heatmaps_html(self.sessions.maps(request.session_hash)) if shown else ""

    def caption_batch(self, files: list[str] | None, model: str, method: str, beam_size: float, max_length: float,
                      length_penalty: float, postprocess: list[str] | None, guide: bool = True, language: str = "en",
                      progress: gr.Progress = gr.Progress()):  # noqa: B008 (how Gradio asks for progress)
        """Caption many photos: a table (thumbnails, captions or per-file errors) and CSV and JSON-lines files
        named after the run."""
        if not files:
            raise user_error("no files: choose one or more images first")
        if len(files) > self.config.max_files:
            raise user_error(f"{len(files)} files is more than this server's limit of {self.config.max_files}")
        captioner = self.pool.get(model)
        options = page_options(method, beam_size, max_length, length_penalty, guide)
        target = self.languages.spec(language)
        chain = [*(postprocess or ()), *([target] if target else [])]
        paths = [str(getattr(f, "name", f)) for f in files]
        names = [Path(path).name for path in paths]  # no server paths in the page or the downloads
        results: list[CaptionResult] = []
        progress((0, len(paths)), desc=f"0 of {len(paths)} photos", unit="photos")
        for result in captioner.caption_stream(paths, batch_size=BATCH_STEP, names=names, postprocess=chain, **options):
            result.error = public_message(result.error) if result.error else None
            results.append(result)
            progress((len(results), len(paths)), desc=f"{len(results)} of {len(paths)} photos", unit="photos")
        table = batch_table_html(results, [thumbnail_uri(path) for path in paths])
        return table, self.files.write_results(results, run_name(len(results)))

    def load_model(self, model: str) -> tuple[str, str]:
        """Load ``model`` now (once per process); say what is serving and what the model is."""
        captioner = self.pool.get(model)
        return self.pool.status(model), about_model(model, captioner)
