"""End to end: a real headless Chromium (Debian's, driven by Playwright) at a laptop's and a phone's size.

``CAPTIONER_SCREENSHOTS=docs python -m pytest tests/test_ui_browser.py`` writes the screenshots in
the README (``docs/ui.jpg``, ``docs/ui-phone.jpg``).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from captioner import Captioner
from captioner.ui import UIConfig
from ui_server import CAT, COFFEE, running_app, wait_until

CHROMIUM = os.environ.get("CAPTIONER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# No Google services, no network beyond loopback (these machines have none).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LAPTOP, PHONE = {"width": 1400, "height": 1000}, {"width": 390, "height": 844}

# .ci/run installs Debian's chromium and sets CAPTIONER_REQUIRE_BROWSER, so there these tests run or fail.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CAPTIONER_REQUIRE_BROWSER"),
                                reason="no Chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def server():
    with running_app(UIConfig(device="cpu")) as (url, app):
        yield url, app


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # how long a check waits for the page, on a busy machine too
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def reference():
    return Captioner.from_pretrained(device="cpu")


@pytest.fixture(params=[LAPTOP, PHONE], ids=["laptop", "phone"])
def page(request, server, browser):
    page = browser.new_page(viewport=request.param)
    page.goto(server[0])
    yield page
    page.close()


def laptop_only(page) -> None:
    if page.viewport_size["width"] < 600:
        pytest.skip("the same controls as on a laptop; once is enough")


def screenshot(page, name: str, full_page: bool) -> None:
    folder = os.environ.get("CAPTIONER_SCREENSHOTS")  # how docs/ui.jpg and docs/ui-phone.jpg are made
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=full_page, type="jpeg", quality=70)


def expect_outputs_of(page, result, photo: str) -> None:
    """Every output on the page shows ``result``, the caption of ``photo``."""
    from playwright.sync_api import expect

    expect(page.locator("#caption textarea")).to_have_value(result.text, timeout=60_000)
    # By role: the table's first DOM row may be a hidden one that Gradio sizes the columns with (the longest texts).
    expect(page.locator("#nbest").get_by_role("row").nth(1)).to_contain_text(result.candidates[0].text)
    expect(page.locator("#summary .tag").first).to_contain_text(result.objects[0].label)
    expect(page.locator("#details")).to_contain_text(photo)
    captions = page.locator("#heatmaps figcaption")
    expect(captions).to_have_count(len(result.candidates[0].words) + 1, timeout=60_000)  # one map per word
    assert captions.all_inner_texts() == [*result.candidates[0].words, "<end>"]


def test_choosing_a_photo_captions_it_and_a_second_replaces_every_output(page, server, reference):
    from playwright.sync_api import expect

    cat = reference.caption(str(CAT), postprocess=["sentiment"])
    coffee = reference.caption(str(COFFEE), postprocess=["sentiment"])
    page.get_by_text("Full result (JSON)").click()  # every output in view
    page.locator("#image input[type=file]").set_input_files(str(CAT))  # no button to press
    expect_outputs_of(page, cat, "cat.jpg")
    expect(page.locator("#summary .badge")).to_contain_text(cat.extras["sentiment"]["label"])

    service = server[1].captioner_service
    captioner = service.pool.get(service.pool.default)
    held, real = threading.Event(), captioner.caption
    captioner.caption = lambda *args, **kwargs: (held.wait(60), real(*args, **kwargs))[1]
    try:
        page.locator("#examples button.gallery-item").filter(has=page.locator("img[src$='coffee.jpg']")).click()
        # While the second photo is being captioned, nothing of the first one is left on the page.
        expect(page.locator("#caption textarea")).to_have_value("")
        for output in ("#summary", "#explain", "#heatmaps", "#nbest tbody", "#details"):
            expect(page.locator(output)).not_to_contain_text("cat")
    finally:
        held.set()
        captioner.caption = real
    expect_outputs_of(page, coffee, "coffee.jpg")
    assert "cat" not in page.locator("#nbest").inner_text() and "cat.jpg" not in page.locator("#details").inner_text()


def test_a_photo_chosen_while_another_is_captioned_is_the_only_one_shown(page, server, reference):
    from playwright.sync_api import expect

    laptop_only(page)
    service = server[1].captioner_service
    captioner = service.pool.get(service.pool.default)
    entered, held, real = threading.Event(), threading.Event(), captioner.caption
    captioner.caption = lambda *args, **kwargs: (entered.set(), held.wait(60), real(*args, **kwargs))[2]
    # Every value the caption box takes, as the browser shows it.
    page.evaluate("""() => { window.shown = []; setInterval(() => {
        const box = document.querySelector('#caption textarea');
        if (box && window.shown[window.shown.length - 1] !== box.value) window.shown.push(box.value); }, 5); }""")
    try:
        page.locator("#image input[type=file]").set_input_files(str(CAT))
        assert entered.wait(60)  # the cat is being captioned (held)
        page.locator("#examples button.gallery-item").filter(has=page.locator("img[src$='coffee.jpg']")).click()
        wait_until(lambda: service.batcher._queue.qsize() >= 1)  # and the coffee waits for it
    finally:
        held.set()
        captioner.caption = real
    coffee = reference.caption(str(COFFEE), postprocess=["sentiment"]).text
    expect(page.locator("#caption textarea")).to_have_value(coffee, timeout=60_000)
    assert reference.caption(str(CAT)).text not in page.evaluate("window.shown")  # overtaken: never shown


def test_the_photo_and_its_caption_are_on_the_first_screen(page, reference):
    from playwright.sync_api import expect

    viewport = page.viewport_size
    box = page.locator("#image").bounding_box()
    assert box["y"] + 120 < viewport["height"]  # the drop zone's top and its buttons, without scrolling
    expect(page.locator("#settings input").first).not_to_be_visible()  # settings start collapsed
    expect(page.locator("footer .show-api")).to_be_visible()  # Gradio hides it on phones
    expect(page.locator("#apis a")).to_have_attribute("href", "v1/docs")
    page.locator("#image input[type=file]").set_input_files(str(CAT))
    expect(page.locator("#caption textarea")).to_have_value(reference.caption(str(CAT)).text, timeout=60_000)
    expect(page.locator("#heatmaps figure").first).to_be_visible(timeout=60_000)
    caption = page.locator("#caption").bounding_box()
    assert caption["y"] + caption["height"] <= viewport["height"]  # the caption too, on a phone as on a laptop
    page.evaluate("window.scrollTo(0, 0)")
    phone = viewport["width"] < 600
    screenshot(page, "ui-phone.jpg" if phone else "ui.jpg", full_page=not phone)
    if phone:  # the heat maps fit the width: three or more a row, none cut off
        figures = page.locator("#heatmaps figure")
        boxes = [figures.nth(i).bounding_box() for i in range(figures.count())]
        assert len({round(b["y"]) for b in boxes[:3]}) == 1
        assert all(b["x"] >= 0 and b["x"] + b["width"] <= viewport["width"] for b in boxes)


def test_a_broken_file_shows_its_error_when_chosen(page, tmp_path):
    from playwright.sync_api import expect

    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"this is not a jpeg")
    page.locator("#image input[type=file]").set_input_files(str(bad))
    expect(page.get_by_text("holiday.jpg: not a readable image")).to_be_visible(timeout=30_000)
    expect(page.locator("#caption textarea")).to_have_value("")


def test_post_processors_and_their_explanations(page, reference):
    from playwright.sync_api import expect

    laptop_only(page)
    chain = ["sentiment", "sentiment-rnn", "translate-rnn:es"]
    expected = reference.caption(str(CAT), postprocess=chain)
    page.locator("#image input[type=file]").set_input_files(str(CAT))
    expect(page.locator("#caption textarea")).to_have_value(reference.caption(str(CAT)).text, timeout=60_000)
    page.locator("#settings").get_by_text("Settings: model, decoding, post-processors").click()
    for spec in chain[1:]:  # each choice captions again
        page.locator("#postprocess input").click()
        page.get_by_role("option", name=spec, exact=True).click()
    expect(page.locator("#caption textarea")).to_have_value(expected.text, timeout=60_000)
    label = expected.extras["sentiment-rnn"]["label"]
    expect(page.locator("#explain .explain-words")).to_contain_text(f"sentiment-rnn {label}")  # the badge
    grid = page.locator("#explain details.explain-grid")
    expect(grid.locator("table")).not_to_be_visible()  # the attention grid opens on request
    grid.locator("summary").click()
    expect(grid.locator("table tr")).to_have_count(len(expected.extras["translate-rnn:es"]["target"]) + 1)


@pytest.mark.skipif(shutil.which("apertium") is None and not os.environ.get("CAPTIONER_REQUIRE_APERTIUM"),
                    reason="no Apertium (apt-get install apertium apertium-eng-spa)")
def test_language_translates_the_caption_and_the_other_captions(page, reference):
    from playwright.sync_api import expect

    laptop_only(page)
    english = reference.caption(str(CAT))
    spanish = reference.caption(str(CAT), postprocess=["sentiment", "translate:es"])
    page.locator("#language input").click()
    page.get_by_role("option", name=re.compile("Español")).click()
    page.locator("#image input[type=file]").set_input_files(str(CAT))
    expect(page.locator("#caption textarea")).to_have_value(spanish.text, timeout=60_000)
    nbest = page.locator("#nbest")
    expect(nbest).to_contain_text(spanish.text)
    for candidate in english.candidates:
        expect(nbest).not_to_contain_text(candidate.text)  # translated, every one


def test_the_batch_tab_shows_thumbnails_errors_and_progress(page, server, tmp_path):
    from playwright.sync_api import expect

    laptop_only(page)
    bad = tmp_path / "notes.png"
    bad.write_text("not a photo")
    service = server[1].captioner_service
    captioner = service.pool.get(service.pool.default)
    release, real = threading.Event(), captioner.caption_stream

    def held_after_the_first(*args, **kwargs):
        for index, result in enumerate(real(*args, **kwargs)):
            yield result
            if index == 0:
                assert release.wait(60)

    captioner.caption_stream = held_after_the_first
    try:
        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-files input[type=file]").set_input_files([str(CAT), str(bad), str(COFFEE)])
        page.locator("#batch-button").click()
        expect(page.get_by_text("1 of 3 photos").first).to_be_visible(timeout=60_000)  # real progress
    finally:
        release.set()
        captioner.caption_stream = real
    expect(page.locator("#batch-table .batch-count")).to_have_text("3 photos, 1 could not be read", timeout=60_000)
    expect(page.locator("#batch-table img.thumb")).to_have_count(2)
    expect(page.locator("#batch-table .batch-error")).to_contain_text("notes.png: not a readable image")
    expect(page.locator("#downloads")).to_contain_text(re.compile(r"captions-\d{8}-\d{6}-3-photos\s*\.csv"))
