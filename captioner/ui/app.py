"""The Gradio web interface: a caption tab, a batch tab, and the same functions as API endpoints."""

from __future__ import annotations

import functools
import html
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from PIL import Image

from ..errors import CaptionerError
from ..images import IMAGE_EXTENSIONS, load_image
from ..models import shipped_assets_dir
from ..errors import describe_exception
from ..postprocessing import list_postprocessor_specs
from ..results import CaptionResult
from .batcher import CaptionBatcher
from .outputs import CSV_COLUMNS as TABLE_COLUMNS
from .outputs import OutputFiles, table_row
from .explain import explanations_html
from .heatmap import attention_overlays
from .model_pool import ModelPool, find_models

log = logging.getLogger(__name__)

METHODS = ["beam", "greedy", "sample"]
BEAM_SIZES = (1, 10)  # the sliders' ranges, also enforced for API callers
MAX_LENGTHS = (1, 50)
LENGTH_PENALTIES = (0.0, 2.0)


@dataclass(frozen=True)
class UIConfig:
    """How the web interface serves: which models, where, and how much load it admits."""

    models: tuple[str, ...] = ()  # names or folders; the first is the default (else the shipped default)
    device: str | None = None
    queue_size: int = 64  # requests waiting beyond this get a "busy" answer
    max_batch_size: int = 16  # concurrent caption requests captioned in one forward pass
    max_files: int = 500  # per batch request
    max_file_size: str = "20mb"


def user_error(message: str) -> gr.Error:
    """A one-line error for the page (Gradio renders it as HTML, so it is escaped)."""
    return gr.Error(html.escape(" ".join(message.split()), quote=False), print_exception=False)


def user_errors(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Show every failure as a one-line ``gr.Error``; log unexpected ones with their traceback."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except (CaptionerError, ValueError) as error:
            raise user_error(str(error)) from None
        except Exception as error:
            log.exception("request failed")
            raise user_error(f"internal error: {describe_exception(error)}") from None

    return wrapper


def example_images() -> list[str]:
    """The photos shipped in ``assets/examples`` (licences in its README)."""
    folder = shipped_assets_dir("examples")
    if folder is None:
        return []
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def in_range(name: str, value: float, limits: tuple[float, float]) -> float:
    if not limits[0] <= value <= limits[1]:
        raise ValueError(f"{name} must be between {limits[0]} and {limits[1]}, not {value}")
    return value


def jpeg_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def decoding_options(method: str, beam_size: float, max_length: float, length_penalty: float,
                     guide: bool = True) -> dict[str, Any]:
    """Decoding options from the page's controls (or an API call), checked against the controls' ranges."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    beam = int(in_range("beam_size", beam_size, BEAM_SIZES))
    return {"method": method, "beam_size": beam, "n_best": beam,
            "max_length": int(in_range("max_length", max_length, MAX_LENGTHS)),
            "length_penalty": float(in_range("length_penalty", length_penalty, LENGTH_PENALTIES)),
            "guide": bool(guide)}


def object_tags(result: CaptionResult) -> dict[str, float]:
    """The recognised objects as ``{"Egyptian cat (cat)": 0.82, "espresso": 0.9, ...}`` for a
    ``gr.Label``: the class, and in brackets the caption's word for it where that differs."""
    return {
        f"{o.label} ({o.word})" if o.word and o.word != o.label.lower() else o.label: o.probability
        for o in result.objects
    }


def upload_path(upload: Any) -> tuple[str, str]:
    """The cached file and original name of an image input that Gradio did not preprocess."""
    if isinstance(upload, dict) and upload.get("path"):
        return upload["path"], upload.get("orig_name") or Path(upload["path"]).name
    if isinstance(upload, str) and upload:
        return upload, Path(upload).name
    raise user_error("no image: upload, paste or take a photo first")


class CaptionService:
    """What the endpoints do, without the page around them."""

    def __init__(self, config: UIConfig) -> None:
        self.config = config
        self.pool = ModelPool(find_models(config.models), device=config.device)
        self.pool.get(self.pool.default)  # load the default model before the first visitor
        self.batcher = CaptionBatcher(max_batch_size=config.max_batch_size)
        self.files = OutputFiles()

    def close(self) -> None:
        self.batcher.close()
        self.files.close()

    def caption(self, image: dict[str, Any] | None, model: str, method: str, beam_size: float, max_length: float,
                length_penalty: float, postprocess: list[str] | None, guide: bool = True):
        """Caption one photo: the caption, the n-best list, post-processor results, attention maps, the
        objects the encoder recognises, and post-processor outputs drawn as HTML (weighted words, a
        translation's attention).

        Args:
            image: the photo (a file, or an http(s) URL for MCP clients).
            model: which served model captions it.
            method: beam, greedy or sample.
            beam_size: beam width (and length of the n-best list).
            max_length: most words in the caption.
            length_penalty: 0 ranks captions by total log-probability, 1 by the mean per word.
            postprocess: post-processors to run in order, e.g. ["sentiment", "translate:es"].
            guide: name what the encoder's classifier recognises in the caption (open-world guidance).
        """
        path, name = upload_path(image)  # the event skips Gradio's preprocessing: our loader explains bad files
        options = decoding_options(method, beam_size, max_length, length_penalty, guide)
        pixels = load_image(path, name)  # decoded here, in this request's thread: a bad file fails only this request
        captioner = self.pool.get(model)
        result = self.batcher.caption(captioner, pixels, name, options, tuple(postprocess or ()))
        best = result.candidates[0]
        nbest = [[rank, c.text, round(c.score, 4), round(c.logprob, 4)] for rank, c in enumerate(result.candidates, 1)]
        details = {k: v for k, v in result.to_dict().items() if k != "nbest"}
        gallery = []
        if best.attention is not None:
            overlays = attention_overlays(pixels, best.attention, best.words, captioner.encoder_config)
            # Files, not PIL images: Gradio caches PIL images non-atomically under a content hash, and two
            # requests with the same photo would then overwrite a file while it is being downloaded.
            paths = self.files.write({f"word{i:02d}.jpg": jpeg_bytes(picture) for i, (picture, _) in enumerate(overlays)})
            gallery = [(path, word) for path, (_, word) in zip(paths, overlays)]
        return result.text, nbest, details, gallery, object_tags(result), explanations_html(result.extras)

    def caption_batch(self, files: list[str] | None, model: str, method: str, beam_size: float, max_length: float,
                      length_penalty: float, postprocess: list[str] | None, guide: bool = True):
        """Caption many photos: a table of captions (or per-file errors) and CSV and JSON-lines files."""
        if not files:
            raise user_error("no files: choose one or more images first")
        if len(files) > self.config.max_files:
            raise user_error(f"{len(files)} files is more than this server's limit of {self.config.max_files}")
        captioner = self.pool.get(model)
        options = decoding_options(method, beam_size, max_length, length_penalty, guide)
        paths = [str(getattr(f, "name", f)) for f in files]
        results = captioner.caption(paths, batch_size=self.config.max_batch_size, postprocess=list(postprocess or ()),
                                    **options)
        for result, path in zip(results, paths):
            result.image = Path(path).name
            if result.error:
                result.error = result.error.replace(path, result.image)  # no server paths in the page
        rows = [[table_row(r)[column] for column in TABLE_COLUMNS] for r in results]
        return rows, self.files.write_results(results)

    def load_model(self, model: str) -> str:
        """Load ``model`` now (once per process) and say what is serving."""
        self.pool.get(model)
        return self.pool.status(model)


def build_app(config: UIConfig | None = None) -> gr.Blocks:
    """The Blocks app; ``app.captioner_service`` holds the loaded models (close it when done)."""
    config = config or UIConfig()
    service = CaptionService(config)
    default = service.pool.default
    defaults = service.pool.get(default).decoding
    specs = list_postprocessor_specs()

    with gr.Blocks(title="captioner", delete_cache=(3600, 3600)) as app:
        gr.Markdown("# captioner\nCaptions for your photos: a CNN encoder and a recurrent decoder, with beam search.")
        status = gr.Markdown(service.pool.status(default), elem_id="status", label="status")
        with gr.Accordion("Model and decoding", open=True):
            with gr.Row():
                model = gr.Dropdown(service.pool.labels(), value=default, label="Model")
                method = gr.Radio(METHODS, value=defaults.method, label="Decoding")
                # allow_custom_value: Gradio does not check API values against the menu; the post-processing
                # chain checks every spec, the same way for both endpoints, the CLI and the Python API.
                postprocess = gr.Dropdown(specs, value=[], multiselect=True, label="Post-processors (in order)",
                                          elem_id="postprocess", allow_custom_value=True)
            with gr.Row():
                beam_size = gr.Slider(*BEAM_SIZES, value=defaults.beam_size, step=1, label="Beam size")
                max_length = gr.Slider(*MAX_LENGTHS, value=defaults.max_length, step=1, label="Max length (words)")
                length_penalty = gr.Slider(*LENGTH_PENALTIES, value=defaults.length_penalty, step=0.1,
                                           label="Length penalty")
                guide = gr.Checkbox(value=defaults.guide, label="Name recognised objects",
                                    info="Put what the encoder's ImageNet classifier sees into the caption",
                                    elem_id="guide")
        controls = [model, method, beam_size, max_length, length_penalty, postprocess, guide]

        with gr.Tab("Caption"):
            with gr.Row():
                with gr.Column():
                    image = gr.Image(type="filepath", sources=["upload", "clipboard", "webcam"], label="Image",
                                     elem_id="image")
                    run = gr.Button("Caption", variant="primary", elem_id="caption-button")
                    examples = example_images()
                    if examples:
                        gr.Examples([[path] for path in examples], inputs=[image], label="Example photos")
                with gr.Column():
                    caption = gr.Textbox(label="Caption", elem_id="caption", interactive=False)
                    explain = gr.HTML(elem_id="explain")
                    objects = gr.Label(label="Recognised objects", num_top_classes=5, show_heading=False,
                                       elem_id="objects")
                    nbest = gr.Dataframe(headers=["rank", "caption", "score", "logprob"], label="n-best",
                                         interactive=False)
                    details = gr.JSON(label="Result and post-processors", elem_id="details")
            attention = gr.Gallery(label="Where the model looked, word by word", columns=6, height="auto")
        # Not Gradio's batch=True: there one bad input fails every request batched with it (and
        # Gradio 6.31's validator= does not work with batch=True). Requests run concurrently and
        # captioner.ui.batcher joins them into one forward pass. preprocess=False: the handler reads
        # the upload itself, so an unreadable file gets our one-line message.
        run.click(user_errors(service.caption), [image, *controls], [caption, nbest, details, attention, objects, explain],
                  api_name="caption", concurrency_limit=config.max_batch_size, concurrency_id="caption",
                  preprocess=False)

        with gr.Tab("Batch"):
            files = gr.File(file_count="multiple", type="filepath", label="Images")
            run_batch = gr.Button("Caption all", variant="primary")
            table = gr.Dataframe(headers=TABLE_COLUMNS, label="Captions", interactive=False, wrap=True)
            downloads = gr.File(label="Download (CSV, JSON lines)", file_count="multiple", interactive=False)
        run_batch.click(user_errors(service.caption_batch), [files, *controls], [table, downloads],
                        api_name="caption_batch", concurrency_limit=1)

        model.change(user_errors(service.load_model), model, status, api_visibility="private", concurrency_id="loader",
                     concurrency_limit=1)

    app.queue(max_size=config.queue_size, default_concurrency_limit=1)
    app.captioner_service = service
    return app
