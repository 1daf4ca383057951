"""The plain HTTP API, ``POST /v1/caption``, against a real server on loopback."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from captioner import Captioner
from captioner.testing import random_photo
from captioner.ui import UIConfig
from ui_server import CAT, COFFEE, running_app, wait_until



@pytest.fixture(scope="module")
def server():
    with running_app(UIConfig(device="cpu", max_batch_size=8)) as (url, app):
        yield url, app


@pytest.fixture(scope="module")
def reference():
    return Captioner.from_pretrained(device="cpu")


def post(url: str, path: Path | None = None, data: dict | None = None, content: bytes | None = None,
         name: str | None = None) -> httpx.Response:
    body = content if content is not None else path.read_bytes()
    files = {"image": (name or (path.name if path else "photo.jpg"), body, "application/octet-stream")}
    return httpx.post(url + "v1/caption", files=files, data=data or {}, timeout=120)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


class GatedCaptioner:
    """Holds the batcher's first forward pass until released, so the next requests queue up together."""

    def __init__(self, captioner: Captioner) -> None:
        self.captioner, self.real = captioner, captioner.caption
        self.entered, self.gate = threading.Event(), threading.Event()

    def __enter__(self) -> GatedCaptioner:
        def gated(*args, **kwargs):
            self.entered.set()
            assert self.gate.wait(60)
            return self.real(*args, **kwargs)

        self.captioner.caption = gated
        return self

    def __exit__(self, *exc) -> None:
        self.gate.set()
        self.captioner.caption = self.real


def test_a_photo_gets_the_json_line_that_the_cli_writes(server, reference):
    url, _ = server
    response = post(url, CAT, {"beam_size": "5", "max_length": "12", "postprocess": ["sentiment", "translate-rnn:es"]})
    assert response.status_code == 200, response.text
    expected = reference.caption(str(CAT), beam_size=5, max_length=12, postprocess=["sentiment", "translate-rnn:es"])
    assert response.json() == {**expected.to_dict(), "image": "cat.jpg"}
    assert response.json()["language"] == "es" and response.json()["original_caption"] == expected.original_text
    assert "heatmaps" not in response.json()  # heavy outputs only when asked for


def test_heat_maps_on_request(server, reference):
    url, _ = server
    line = post(url, COFFEE, {"heatmaps": "true", "method": "greedy"}).json()
    words = reference.caption(str(COFFEE), method="greedy").candidates[0].words
    assert [item["word"] for item in line["heatmaps"]] == words + ["<end>"]
    assert all(item["image"].startswith("data:image/jpeg;base64,") for item in line["heatmaps"])


def test_bad_requests_get_a_json_error_and_the_server_stays_up(server):
    url, _ = server
    broken = post(url, content=b"GIF89a truncated", name="holiday.gif")
    assert broken.status_code == 400
    assert broken.json() == {"error": "holiday.gif: not a readable image (unknown or corrupt format)"}
    options = post(url, CAT, {"beam_size": "50", "beem": "3"})
    assert options.status_code == 400
    assert options.json()["error"] == ("beam_size: Input should be less than or equal to 10; "
                                       "beem: Extra inputs are not permitted")
    assert post(url, CAT, {"top_p": "2"}).json() == {"error": "top_p must be in (0, 1], not 2.0"}
    unknown = post(url, CAT, {"postprocess": "nope"}).json()["error"]
    assert unknown.startswith("unknown post-processor 'nope'; installed post-processors: ")
    assert post(url, CAT, {"model": "other"}).json()["error"].startswith("unknown model 'other'; served models: ")
    assert httpx.post(url + "v1/caption", data={"beam_size": "3"}).json() == {"error": "image: Field required"}
    assert post(url, CAT).status_code == 200


def test_too_large_is_413_without_the_operators_hint(monkeypatch):
    big = png_bytes(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8))
    with running_app(UIConfig(device="cpu", max_file_size=100_000)) as (url, _):
        response = post(url, content=big, name="big.png")
        assert response.status_code == 413
        assert response.json()["error"].startswith("big.png: 0.3 MB is larger than this server's limit of 0.1 MB")
        monkeypatch.setenv("CAPTIONER_MAX_PIXELS", "1000")
        response = post(url, content=png_bytes(random_photo(1)), name="small.png")  # 56x40 = 2,240 pixels
        assert response.status_code == 413
        assert response.json() == {"error": "small.png: 56x40 is 0 megapixels, above the limit of 0.001"}


def test_a_full_queue_answers_503_and_recovers():
    with running_app(UIConfig(device="cpu", queue_size=1, max_batch_size=1)) as (url, app):
        service = app.captioner_service
        with ThreadPoolExecutor(2) as pool, GatedCaptioner(service.pool.get(service.pool.default)) as gated:
            running = pool.submit(post, url, CAT)
            assert gated.entered.wait(60)  # one being captioned (held)
            waiting = pool.submit(post, url, CAT)
            wait_until(lambda: service.batcher._queue.qsize() >= 1)  # and one waiting: both slots taken
            busy = post(url, CAT)
            assert busy.status_code == 503
            assert busy.json() == {"error": "the server is busy: too many requests are waiting; try again shortly"}
            gated.gate.set()
            assert running.result(timeout=120).status_code == waiting.result(timeout=120).status_code == 200
        assert post(url, CAT).status_code == 200


def test_concurrent_calls_share_a_forward_pass_with_the_page(reference):
    with running_app(UIConfig(device="cpu", max_batch_size=8)) as (url, app):
        service = app.captioner_service
        batcher = service.batcher
        with ThreadPoolExecutor(4) as pool, GatedCaptioner(service.pool.get(service.pool.default)) as gated:
            first = pool.submit(post, url, CAT)
            assert gated.entered.wait(60)  # captioned alone; the next ones wait together
            # The page's defaults (sentiment on) and the same settings spelt out for the HTTP API.
            calls = [pool.submit(post, url, path, {"postprocess": "sentiment"}) for path in (CAT, COFFEE, CAT)]
            page = Client(url, verbose=False).submit(handle_file(str(COFFEE)), api_name="/caption")
            wait_until(lambda: batcher._queue.qsize() >= 4)
            gated.gate.set()
            lines = [call.result(timeout=120).json() for call in [first, *calls]]
            page_caption = page.result(timeout=120)[0]
        assert batcher.batch_sizes[:2] == [1, 4]  # three HTTP calls and the page's request in one forward pass
        assert [line["image"] for line in lines] == ["cat.jpg", "cat.jpg", "coffee.jpg", "cat.jpg"]
        assert lines[2]["caption"] == page_caption == reference.caption(str(COFFEE)).text
        assert lines[1]["sentiment"]["label"] and lines[1]["caption"] == lines[0]["caption"]


def test_a_failing_plugin_is_500_with_the_same_body_and_the_server_stays_up(server, monkeypatch):
    from captioner.errors import PluginError

    url, app = server
    service = app.captioner_service

    def failing(*args, **kwargs):
        raise PluginError("decoder 'x' from plugin 'p' failed: RuntimeError: boom")

    monkeypatch.setattr(service, "caption_image", failing)
    response = post(url, CAT)
    assert response.status_code == 500
    assert response.json() == {"error": "decoder 'x' from plugin 'p' failed: RuntimeError: boom"}
    monkeypatch.undo()
    assert post(url, CAT).status_code == 200


STATUS_TESTS = {  # every status the OpenAPI document lists, and the test that makes the API send it
    "200": test_a_photo_gets_the_json_line_that_the_cli_writes,
    "400": test_bad_requests_get_a_json_error_and_the_server_stays_up,
    "413": test_too_large_is_413_without_the_operators_hint,
    "500": test_a_failing_plugin_is_500_with_the_same_body_and_the_server_stays_up,
    "503": test_a_full_queue_answers_503_and_recovers,
}


def test_openapi_describes_the_form_and_exactly_the_answers_sent(server):
    url, _ = server
    schema = httpx.get(url + "v1/openapi.json").json()
    operation = schema["paths"]["/caption"]["post"]
    assert set(operation["responses"]) == set(STATUS_TESTS)  # no 422: a request that does not validate gets 400
    for status, response in operation["responses"].items():
        reference = response["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        assert reference == ("CaptionLine" if status == "200" else "ErrorBody"), status
    error_body = schema["components"]["schemas"]["ErrorBody"]
    assert error_body["required"] == ["error"] and error_body["properties"]["error"]["type"] == "string"
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    form_ref = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].split("/")[-1]
    fields = schema["components"]["schemas"][form_ref]["properties"]
    assert {"image", "model", "postprocess", "heatmaps", "beam_size", "max_length", "length_penalty", "guide",
            "seed", "top_p"} <= set(fields)
    assert httpx.get(url + "v1/docs").status_code == 200
