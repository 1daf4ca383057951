"""The web interface through gradio_client, against a real server on loopback."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from captioner import Captioner, CaptionResult, PluginError, hookimpl
from captioner.ui import UIConfig
from captioner.ui.batcher import CaptionBatcher
from captioner.ui.heatmap import AttentionMaps, grid_shape
from conftest import random_photo
from ui_server import CAT, COFFEE, EXAMPLES, running_app, wait_until



@pytest.fixture(scope="module")
def server():
    with running_app(UIConfig(device="cpu", max_batch_size=4)) as (url, app):
        yield url, app, Client(url, verbose=False)


@pytest.fixture(scope="module")
def reference():
    return Captioner.from_pretrained(device="cpu")


def figure_captions(html: str) -> list[str]:
    return re.findall(r"<figcaption>(.*?)</figcaption>", html)


def test_caption_endpoint_matches_the_python_api(server, reference):
    _, _, client = server
    caption, nbest, details, summary, explain, heatmaps = client.predict(handle_file(str(CAT)), api_name="/caption")
    expected = reference.caption(str(CAT), beam_size=3, n_best=3, postprocess=["sentiment"])  # the page's defaults
    assert caption == expected.text
    assert [row[1] for row in nbest["data"]] == [c.text for c in expected.candidates]
    assert details == {**expected.to_dict(), "image": "cat.jpg"}  # the whole result, as `caption --format jsonl`
    assert heatmaps == ""  # heavy outputs only when asked for
    assert "Egyptian cat → cat" in summary  # the recognised objects, as tags
    assert f"sentiment-{expected.extras['sentiment']['label']}" in summary  # the sentiment, as a badge
    *_, heatmaps = client.predict(handle_file(str(CAT)), heatmaps=True, api_name="/caption")
    assert figure_captions(heatmaps) == expected.candidates[0].words + ["&lt;end&gt;"]  # one heat map per word
    assert heatmaps.count("data:image/jpeg;base64,") == len(expected.candidates[0].words) + 1
    unguided, *_ = client.predict(handle_file(str(CAT)), guide=False, api_name="/caption")
    assert unguided == reference.caption(str(CAT), beam_size=3, guide=False).text != caption


@pytest.mark.skipif(shutil.which("apertium") is None and not os.environ.get("CAPTIONER_REQUIRE_APERTIUM"),
                    reason="no Apertium (apt-get install apertium apertium-eng-spa)")
def test_language_translates_the_caption_and_the_nbest_list(server, reference):
    _, _, client = server
    caption, nbest, details, *_ = client.predict(handle_file(str(CAT)), language="es", api_name="/caption")
    english = reference.caption(str(CAT), beam_size=3, n_best=3)
    others = [CaptionResult.from_text(f"cat.jpg #{rank}", c.text) for rank, c in enumerate(english.candidates[1:], 2)]
    reference.postprocessing_chain(["translate:es"])(others)
    assert caption == reference.caption(str(CAT), postprocess=["translate:es"]).text != english.text
    assert details["language"] == "es" and details["original_caption"] == english.text
    assert [row[1] for row in nbest["data"]] == [caption, *(other.text for other in others)]  # every line translated
    assert not {row[1] for row in nbest["data"]} & {c.text for c in english.candidates}
    with pytest.raises(AppError, match="language must be one of en, "):
        client.predict(handle_file(str(CAT)), language="xx", api_name="/caption")


def test_decoding_controls_and_postprocessors(server, reference):
    _, _, client = server
    caption, nbest, details, _, explain, _ = client.predict(
        handle_file(str(COFFEE)), method="greedy", max_length=6, postprocess=["sentiment", "sentiment-rnn"],
        api_name="/caption")
    expected = reference.caption(str(COFFEE), method="greedy", max_length=6)
    assert caption == expected.text and len(caption.split()) <= 6 and len(nbest["data"]) == 1
    assert details["sentiment"]["label"] in {"positive", "neutral", "negative"}
    words = [word for word, _ in details["sentiment-rnn"]["words"]]
    assert words == caption.split() and 'class="explain-words"' in explain  # which words carried it, drawn
    assert "explain-grid" not in explain  # no translation asked for
    sampled, *_ = client.predict(handle_file(str(COFFEE)), method="sample", guide=True, api_name="/caption")
    assert sampled and not sampled.startswith("captioner: error")  # the guidance box does not apply to sampling


def test_a_bad_upload_is_a_one_line_error(server, tmp_path):
    _, _, client = server
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(AppError) as raised:
        client.predict(handle_file(str(tmp_path / "notes.jpg")), api_name="/caption")
    message = str(raised.value)
    assert "notes.jpg: not a readable image" in message and "Traceback" not in message and "/tmp" not in message
    for endpoint, image in (("/caption", handle_file(str(CAT))), ("/caption_batch", [handle_file(str(CAT))])):
        with pytest.raises(AppError, match="unknown post-processor 'nope'; installed post-processors: "):
            client.predict(image, postprocess=["nope"], api_name=endpoint)  # one check for both endpoints
    with pytest.raises(AppError, match="beam_size must be between 1 and 10, not 500"):
        client.predict(handle_file(str(CAT)), beam_size=500, api_name="/caption")
    caption, *_ = client.predict(handle_file(str(CAT)), api_name="/caption")  # the server is still fine
    assert caption


def test_the_pixel_limit_is_told_without_the_operators_hint(server, monkeypatch):
    _, _, client = server
    monkeypatch.setenv("CAPTIONER_MAX_PIXELS", "1000")  # read per image, by this process's server
    with pytest.raises(AppError) as raised:
        client.predict(handle_file(str(CAT)), api_name="/caption")
    assert re.search(r"cat\.jpg: \d+x\d+ is 0 megapixels, above the limit of 0\.001$", str(raised.value))
    assert "CAPTIONER_MAX_PIXELS" not in str(raised.value)


def test_batch_endpoint_table_and_downloads(server, reference, tmp_path):
    _, _, client = server
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    table, files = client.predict([handle_file(str(CAT)), handle_file(str(tmp_path / "broken.png")),
                                   handle_file(str(COFFEE))], postprocess=["sentiment"], api_name="/caption_batch")
    assert table.startswith("<p class=\"batch-count\">3 photos, 1 could not be read</p>")
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    assert [re.search(r"<div>(.*?)</div>", row).group(1) for row in rows] == ["cat.jpg", "broken.png", "coffee.jpg"]
    assert [row.count('class="thumb"') for row in rows] == [1, 0, 1]  # a thumbnail for each readable photo
    assert 'class="batch-error">broken.png: not a readable image' in rows[1] and str(tmp_path) not in table
    assert reference.caption(str(CAT)).text in rows[0] and "sentiment-" in rows[2] and "Egyptian cat" in rows[0]
    assert "<th>English</th>" not in table  # no column that would stay empty
    csv_file, jsonl_file = (next(f for f in files if f.endswith(suffix)) for suffix in (".csv", ".jsonl"))
    assert re.fullmatch(r"captions-\d{8}-\d{6}-3-photos\.csv", Path(csv_file).name)  # named after the run
    assert [r["image"] for r in csv.DictReader(open(csv_file))] == ["cat.jpg", "broken.png", "coffee.jpg"]
    lines = [json.loads(line) for line in open(jsonl_file)]
    assert lines[0]["caption"] == reference.caption(str(CAT)).text and "error" in lines[1] and "nbest" in lines[2]
    assert lines[2]["sentiment"]["label"]


def test_concurrent_requests_are_batched_and_a_bad_one_fails_alone(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"GIF89a truncated")
    with running_app(UIConfig(device="cpu", max_batch_size=8)) as (url, app):
        batcher = app.captioner_service.batcher
        captioner = app.captioner_service.pool.get("flickr8k-lite0-attention")
        entered, gate = threading.Event(), threading.Event()
        real_caption = captioner.caption

        def gated_caption(*args, **kwargs):
            entered.set()
            assert gate.wait(60)
            return real_caption(*args, **kwargs)

        captioner.caption = gated_caption
        client = Client(url, verbose=False)
        first = client.submit(handle_file(str(CAT)), api_name="/caption")
        assert entered.wait(60)  # the first request is being captioned alone; the next ones wait together
        waiting = [client.submit(handle_file(str(COFFEE if i % 2 else CAT)), beam_size=3, api_name="/caption")
                   for i in range(3)]
        waiting.append(client.submit(handle_file(str(CAT)), beam_size=1, api_name="/caption"))
        bad = client.submit(handle_file(str(tmp_path / "bad.jpg")), api_name="/caption")
        with pytest.raises(AppError, match="bad.jpg: "):  # fails in its own request thread, before batching
            bad.result(timeout=60)
        wait_until(lambda: batcher._queue.qsize() >= 4)
        gate.set()
        captions = [job.result(timeout=120)[0] for job in [first, *waiting]]
        assert all(captions) and captions[0] == captions[1] == captions[3] and captions[2] != captions[1]
        # One forward pass per group of equal settings: the first request alone, then the three
        # beam-3 requests together and the beam-1 one apart, in the order the requests arrived.
        assert batcher.batch_sizes[0] == 1 and sorted(batcher.batch_sizes[1:]) == [1, 3]


def test_the_page_names_model_encoder_decoder_and_device(server):
    url, app, _ = server
    status = app.captioner_service.pool.status("flickr8k-lite0-attention")
    assert "efficientnet_lite0" in status and "attention_lstm" in status and "device cpu" in status


class BlockingCaptioner:
    """Stands in for a Captioner: the first call waits until released, every call is recorded."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = []

    def caption(self, images, batch_size, postprocess, **options):
        self.calls.append((len(images), options.get("beam_size")))
        self.started.set()
        self.release.wait(10)
        return [CaptionResult(image="?") for _ in images]


def test_batcher_groups_requests_that_wait_by_settings():
    model = BlockingCaptioner()
    batcher = CaptionBatcher(max_batch_size=8)
    image = torch.zeros(3, 4, 4, dtype=torch.uint8)
    results: list[Future] = []

    def submit(name, beam):
        future = Future()
        results.append(future)
        threading.Thread(target=lambda: future.set_result(batcher.caption(model, image, name, {"beam_size": beam}))).start()

    submit("first", 3)
    assert model.started.wait(10)  # the worker is busy with "first" alone
    for i in range(5):
        submit(f"img{i}", 3 if i < 3 else 1)
    wait_until(lambda: batcher._queue.qsize() >= 5)
    model.release.set()
    names = sorted(f.result(timeout=10).image for f in results)
    batcher.close()
    assert model.calls == [(1, 3), (3, 3), (2, 1)]  # one call per group of waiting requests
    assert names == sorted(["first", "img0", "img1", "img2", "img3", "img4"])


def test_heat_maps_follow_the_grid_on_one_shared_scale():
    assert grid_shape(49, (224, 224)) == (7, 7) and grid_shape(12, (300, 400)) == (3, 4)
    from captioner import EncoderConfig
    from captioner.results import Candidate

    config = EncoderConfig(input_size=(64, 64), mean=(0, 0, 0), std=(1, 1, 1), feature_dim=8, spatial=True)
    image = torch.zeros(3, 100, 200, dtype=torch.uint8)
    attention = torch.full((3, 4), 0.25)  # "dog" looks everywhere alike
    attention[0] = torch.tensor([0.8, 0.1, 0.05, 0.05])  # "a": top-left
    attention[2] = torch.tensor([0.1, 0.7, 0.1, 0.1])  # "<end>": top-right
    maps = AttentionMaps.of(image, Candidate("a dog", ["a", "dog"], -1.0, -2.0, True, attention), config)
    overlays = maps.overlays()
    assert [word for _, word in overlays] == ["a", "dog", "<end>"] and maps.scale == pytest.approx(0.8)
    focused, diffuse = (np.asarray(picture).astype(int) for picture, _ in overlays[:2])
    assert overlays[0][0].size == (192, 96)  # the photo's shape, not the model's square
    assert focused[10, 10, 0] > focused[-10, -10, 0]
    assert focused[10, 10, 0] > diffuse[10, 10, 0]  # a diffuse word is not drawn as hot as a focused one
    assert AttentionMaps.of(image, Candidate("a dog", ["a", "dog"], -1.0, -2.0, True), config) is None


def test_heat_maps_of_an_encoder_stack_are_placed_by_its_first_member():
    from dataclasses import replace

    from captioner import EncoderConfig
    from captioner.encoder_stack import stack_config
    from captioner.results import Candidate

    cropped = EncoderConfig(input_size=(32, 64), mean=(0, 0, 0), std=(1, 1, 1), feature_dim=8, spatial=True,
                            resize_mode="center_crop")  # a 1x2 grid over the centre 2:1 strip of the photo
    stack = stack_config([cropped, replace(cropped, input_size=(96, 96), resize_mode="squash")])
    image = torch.zeros(3, 100, 100, dtype=torch.uint8)
    maps = AttentionMaps.of(image, Candidate("a", ["a"], -1.0, -1.0, True, torch.tensor([[0.9, 0.1]])), stack)
    assert maps.grid == (1, 2) and maps.overlays()[0][0].size == (192, 96)  # the first member's crop, not the canvas


def test_mcp_server_lists_and_calls_the_caption_tool(reference):
    import asyncio
    import base64

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def list_and_call(url):
        async with streamable_http_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                photo = "data:image/jpeg;base64," + base64.b64encode(CAT.read_bytes()).decode()
                return tools, await session.call_tool("caption", {"image": photo})

    with running_app(UIConfig(device="cpu"), mcp_server=True) as (url, _):
        tools, result = asyncio.run(list_and_call(url))
    assert tools["caption"].description.startswith("Caption one photo")
    assert {"image", "beam_size", "postprocess"} <= set(tools["caption"].inputSchema["properties"])
    assert not result.isError
    assert reference.caption(str(CAT)).text in result.content[0].text


def test_a_full_queue_answers_busy_and_recovers():
    with running_app(UIConfig(device="cpu", queue_size=1, max_batch_size=1)) as (url, app):
        service = app.captioner_service
        entered, gate = threading.Event(), threading.Event()
        real_caption = service.batcher.caption

        def slow_caption(*args, **kwargs):
            entered.set()
            gate.wait(30)
            return real_caption(*args, **kwargs)

        service.batcher.caption = slow_caption
        client = Client(url, verbose=False)
        running = client.submit(handle_file(str(CAT)), api_name="/caption")  # being captioned (blocked)
        assert entered.wait(30)
        waiting = client.submit(handle_file(str(CAT)), api_name="/caption")  # fills the queue of 1
        wait_until(lambda: len(app._queue) >= 1)
        with pytest.raises(Exception, match="(?i)queue is full"):
            client.predict(handle_file(str(CAT)), api_name="/caption")
        gate.set()
        assert running.result(timeout=60)[0] and waiting.result(timeout=60)[0]


def test_models_load_once_warmed_up_and_loading_one_does_not_block_another(monkeypatch):
    from types import SimpleNamespace

    from captioner.ui import model_pool
    from captioner.ui.model_pool import ModelChoice, ModelPool

    loading_b, release_b, loads, warmed = threading.Event(), threading.Event(), [], []

    def fake_load(source, device=None):
        loads.append(source)
        if source == "b":
            loading_b.set()
            assert release_b.wait(30)
        return SimpleNamespace(warm_up=lambda: warmed.append(source))

    monkeypatch.setattr(model_pool.Captioner, "from_pretrained", staticmethod(fake_load))
    pool = ModelPool([ModelChoice("a", "a", "enc", "dec"), ModelChoice("b", "b", "enc", "dec")])
    first_a = pool.get("a")
    assert "not loaded yet" in pool.status("b")
    threads = [threading.Thread(target=pool.get, args=("b",)) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert loading_b.wait(30)
    assert pool.get("a") is first_a  # served while b loads
    release_b.set()
    for thread in threads:
        thread.join(30)
    assert loads == ["a", "b"] == warmed  # three concurrent requests for b loaded it once
    with pytest.raises(Exception, match="unknown model 'c'; served models: a, b"):
        pool.get("c")


def test_a_model_that_fails_to_warm_up_is_served_all_the_same(monkeypatch):
    from types import SimpleNamespace

    from captioner.ui import model_pool
    from captioner.ui.model_pool import ModelChoice, ModelPool

    def cannot_warm_up():
        raise RuntimeError("cannot handle black")

    loaded = SimpleNamespace(warm_up=cannot_warm_up)
    monkeypatch.setattr(model_pool.Captioner, "from_pretrained", staticmethod(lambda source, device=None: loaded))
    with pytest.warns(UserWarning, match="model 'a' was not warmed up, so its first photo waits longer: "
                                         "RuntimeError: cannot handle black"):
        assert ModelPool([ModelChoice("a", "a", "enc", "dec")]).get("a") is loaded


def test_the_shipped_default_is_the_default_choice_and_the_others_follow():
    from captioner.ui.model_pool import find_models

    labels = [choice.label for choice in find_models()]
    assert labels[0] == "flickr8k-lite0-attention"  # though "flickr8k-ensemble" sorts before it
    assert "flickr8k-ensemble" in labels
    assert [choice.label for choice in find_models(("flickr8k-ensemble",))][:2] == [
        "flickr8k-ensemble", "flickr8k-lite0-attention"]


def test_ui_command_refuses_a_bad_model_in_one_line():
    from click.testing import CliRunner

    from captioner.cli import cli

    result = CliRunner().invoke(cli, ["ui", "--model", "no-such-model"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "captioner: error: model 'no-such-model': no such folder and no shipped model of that name "
        "(shipped: flickr8k-ensemble, flickr8k-lite0-attention)"]


def test_load_test_finishes_by_itself_with_no_failed_requests(tmp_path):
    output = tmp_path / "load.json"
    done = subprocess.run([sys.executable, "benchmarks/load_test.py", "--clients", "4", "--duration", "6",
                           "--output", str(output)], cwd=EXAMPLES.parents[1], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(output.read_text())
    assert [result["api"] for result in results] == ["gradio", "http"]
    assert all(r["failed"] == 0 and r["ok"] > 0 and r["p95_ms"] >= r["p50_ms"] for r in results)
    assert "Load test: 4 clients" in done.stdout and "POST /v1/caption" in done.stdout


class Fragile:
    """An encoder plugin that crashes on very bright images."""

    @hookimpl
    def register_encoders(self, register):
        from conftest import make_tiny_encoder

        def create(pretrained=True, weights=None):
            encoder = make_tiny_encoder()
            forward = encoder.forward

            def crash_on_white(images):
                if (images.flatten(1).mean(1) > 0.9).any():
                    raise RuntimeError("cannot handle white")
                return forward(images)

            encoder.forward = crash_on_white
            return encoder

        register("fragile_cnn", create, config=make_tiny_encoder().config)


def test_a_crashing_plugin_names_itself_and_spares_the_other_requests(captioner_plugin, vocab, tmp_path):
    captioner_plugin(Fragile(), "fragile-plugin")
    model = Captioner("fragile_cnn", "lstm", vocab, device="cpu").save(tmp_path / "fragile")
    white, photo = tmp_path / "white.png", tmp_path / "photo.png"
    Image.new("RGB", (40, 40), (255, 255, 255)).save(white)
    Image.fromarray(random_photo(3)).save(photo)
    with pytest.raises(PluginError, match="encoder 'fragile_cnn' from plugin 'fragile-plugin' failed: "
                                          "RuntimeError: cannot handle white"):
        Captioner.from_pretrained(model, device="cpu").caption(str(white))

    with running_app(UIConfig(models=(str(model),), device="cpu")) as (url, app):
        client = Client(url, verbose=False)
        gate, held = threading.Event(), []
        batcher = app.captioner_service.batcher
        real = batcher._run_group

        def held_run(requests):
            held.append(len(requests))
            assert gate.wait(60)
            return real(requests)

        batcher._run_group = held_run
        jobs = [client.submit(handle_file(str(path)), api_name="/caption") for path in (white, photo, photo)]
        wait_until(lambda: sum(held) + batcher._queue.qsize() >= 3)  # all three reached the batcher
        gate.set()
        with pytest.raises(AppError, match="fragile_cnn' from plugin 'fragile-plugin' failed"):
            jobs[0].result(timeout=60)
        assert jobs[1].result(timeout=60)[0] and jobs[2].result(timeout=60)[0]  # batched with it, still captioned
        assert client.predict(handle_file(str(photo)), api_name="/caption")[0]  # and the server is still up


def test_uploads_above_the_size_limit_are_refused(tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > 100_000
    with running_app(UIConfig(device="cpu", max_file_size=100_000)) as (url, _):
        with pytest.raises(Exception, match="(?i)file size|too large|exceeds"):
            Client(url, verbose=False).predict(handle_file(str(big)), api_name="/caption")


def test_output_files_are_removed_when_the_app_closes(tmp_path):
    with running_app(UIConfig(device="cpu")) as (url, app):
        Client(url, verbose=False).predict([handle_file(str(CAT))], api_name="/caption_batch")
        root = app.captioner_service.files.root
        assert list(root.rglob("captions-*.csv"))
    assert not root.exists()


def test_ui_command_prints_where_it_serves_and_no_gradio_hints():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONER_")}
    with subprocess.Popen([sys.executable, "-m", "captioner", "ui", "--port", "7893"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env) as server:
        try:
            first = server.stdout.readline()
            assert first == "web interface: http://127.0.0.1:7893/  (HTTP API docs: http://127.0.0.1:7893/v1/docs)\n"
            assert server.stdout.readline() == "press Ctrl+C to stop\n"
        finally:
            server.terminate()
        rest = server.stdout.read()
    assert "share=True" not in first + rest
