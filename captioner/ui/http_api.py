"""The plain HTTP API beside Gradio's: ``POST /v1/caption`` (multipart), OpenAPI docs at ``/v1/docs``.

It captions through the page's :class:`~captioner.ui.batcher.CaptionBatcher`, so concurrent calls
(and the page's requests) share forward passes. Every error is ``{"error": "one line"}`` with a status:
400 for a bad image or option, 413 for a file or image above the limits, 503 when too many requests wait,
500 when a plugin or the server itself fails. The OpenAPI document lists exactly these (FastAPI's own 422 is
never sent: validation errors are 400s).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

from fastapi import FastAPI, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.concurrency import run_in_threadpool

from ..decoding.options import DecodingOptions
from ..errors import CaptionerError, ImageTooLargeError, PluginError, describe_exception
from ..images import load_image
from .heatmap import AttentionMaps, data_uri
from .messages import public_message
from .service import BEAM_SIZES, MAX_LENGTHS, CaptionService

log = logging.getLogger(__name__)

SERVER_LIMITS = {"beam_size": BEAM_SIZES, "n_best": BEAM_SIZES, "max_length": MAX_LENGTHS,  # as on the page
                 "consensus_neighbours": (0, 100)}  # each neighbour's captions are scored against every candidate


class ApiError(Exception):
    """An answer other than 200: its HTTP status and one line saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class CaptionFormBase(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt option is an error, not silently ignored

    image: UploadFile = Field(description="The photo (JPEG, PNG, WebP, ...).")
    model: str | None = Field(None, description="A served model's name (default: the first one served).")
    postprocess: list[str] = Field(default_factory=list, description="Post-processors to run in order; repeat the "
                                   "field for several, e.g. sentiment then translate:es.")
    heatmaps: bool = Field(False, description="Add `heatmaps`: where the model looked for each word, as JPEG data "
                                              "URIs on one shared colour scale (attention decoders only).")

    def decoding_options(self) -> dict[str, Any]:
        """The decoding options given; the model's defaults stand for the rest."""
        return {name: getattr(self, name) for name in DecodingOptions.field_names() if getattr(self, name) is not None}


def decoding_fields() -> dict[str, Any]:
    """One optional form field per :class:`DecodingOptions` field, of the same name and type."""
    hints = get_type_hints(DecodingOptions)
    fields = {}
    for option in dataclasses.fields(DecodingOptions):
        low, high = SERVER_LIMITS.get(option.name, (None, None))
        fields[option.name] = (hints[option.name] | None,
                               Field(None, ge=low, le=high, description=f"Decoding option; default: the model's "
                                                                        f"(the library's is {option.default!r})."))
    return fields


if TYPE_CHECKING:  # the fields are made at run time; type checkers see the base
    CaptionForm = CaptionFormBase
else:
    CaptionForm = create_model("CaptionForm", __base__=CaptionFormBase, **decoding_fields())


class Candidate(BaseModel):
    caption: str
    score: float | None
    logprob: float | None
    finished: bool
    consensus: float | None = None  # agreement with similar training photos' captions (models with a memory)


class RecognizedObject(BaseModel):
    label: str
    wnid: str
    probability: float
    word: str | None


class HeatMap(BaseModel):
    word: str
    image: str = Field(description="A JPEG data URI.")


class CaptionLine(BaseModel):
    """One JSON object, as one line of `captioner caption --format jsonl`; post-processors add their own fields."""

    model_config = ConfigDict(extra="allow")

    image: str
    caption: str
    score: float | None
    nbest: list[Candidate]
    original_caption: str | None = None
    language: str | None = None
    objects: list[RecognizedObject] | None = None
    required_words: list[str] | None = None
    postprocess_errors: dict[str, str] | None = None
    heatmaps: list[HeatMap] | None = None


class ErrorBody(BaseModel):
    error: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Not a readable image, or a bad option or post-processor."},
    413: {"model": ErrorBody, "description": "The file or the image is larger than this server accepts."},
    503: {"model": ErrorBody, "description": "Too many requests are waiting; try again shortly."},
    500: {"model": ErrorBody, "description": "A plugin (named in the message) or the server failed."},
}


def openapi_without_validation_errors(api: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document without the 422 answer it adds to every route: this API answers a
    request that does not validate with 400 and an :class:`ErrorBody`, as documented."""
    if api.openapi_schema is None:
        schema = FastAPI.openapi(api)
        for operations in schema["paths"].values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        api.openapi_schema = schema
    return api.openapi_schema


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": public_message(message)}, status_code=status)


def validation_message(error: RequestValidationError) -> str:
    """FastAPI's list of problems as one line: ``beam_size: Input should be less than or equal to 10``."""
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("body", "form"))
        problems.append(f"{where}: {problem.get('msg', 'invalid')}" if where else problem.get("msg", "invalid"))
    return "; ".join(problems) or "invalid request"


def caption_upload(service: CaptionService, data: bytes, name: str, form: CaptionFormBase) -> dict[str, Any]:
    """The JSON line for one uploaded photo (runs in a worker thread; decoding fails only this request)."""
    try:
        pixels = load_image(data, name)
        captioner, result = service.caption_image(pixels, name, form.model, form.decoding_options(), form.postprocess)
    except ImageTooLargeError as error:
        raise ApiError(413, str(error)) from None
    except PluginError as error:  # the server's fault, not the request's
        raise ApiError(500, str(error)) from None
    except (CaptionerError, ValueError) as error:
        raise ApiError(400, str(error)) from None
    line = result.to_dict()
    if form.heatmaps:
        maps = AttentionMaps.of(pixels, result.candidates[0], captioner.encoder_config)
        overlays = maps.overlays() if maps else []
        line["heatmaps"] = [{"word": word, "image": data_uri(picture)} for picture, word in overlays]
    return line


def http_api(service: CaptionService) -> FastAPI:
    """The ``/v1`` application: mount it beside Gradio's (see :func:`captioner.ui.app.launch`)."""
    api = FastAPI(title="captioner HTTP API", version="1", docs_url="/docs", openapi_url="/openapi.json",
                  description="Captions for photos, one multipart request per photo.")
    api.openapi = lambda: openapi_without_validation_errors(api)  # type: ignore[method-assign]
    # Waiting plus being captioned, as Gradio's queue counts the page's requests.
    slots = threading.BoundedSemaphore(service.config.queue_size + service.config.max_batch_size)

    @api.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, validation_message(error))

    @api.post("/caption", response_model=CaptionLine, responses=ERROR_RESPONSES)
    async def caption(form: Annotated[CaptionForm, Form(media_type="multipart/form-data")]) -> JSONResponse:
        """Caption one photo: one JSON object shaped like a line of `captioner caption --format jsonl`."""
        image = form.image
        name = Path(image.filename or "image").name
        if image.size is not None and image.size > service.config.max_file_size:
            return error_response(413, f"{name}: {image.size / 1e6:.1f} MB is larger than this server's limit of "
                                       f"{service.config.max_file_size / 1e6:.1f} MB")
        if not slots.acquire(blocking=False):
            return error_response(503, "the server is busy: too many requests are waiting; try again shortly")
        try:
            data = await image.read()
            return JSONResponse(await run_in_threadpool(caption_upload, service, data, name, form))
        except ApiError as error:
            return error_response(error.status, str(error))
        except Exception as error:  # noqa: BLE001 - the server stays up; the traceback goes to the log
            log.exception("HTTP caption request failed")
            return error_response(500, f"internal error: {describe_exception(error)}")
        finally:
            slots.release()

    return api
