"""End to end: a real headless Chromium (Debian's, driven by Playwright) uploads a photo and reads the caption."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from captioner import Captioner
from captioner.ui import UIConfig
from ui_server import running_app

CHROMIUM = os.environ.get("CAPTIONER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[1]
CAT = ROOT / "assets" / "examples" / "cat.jpg"
# No Google services, no network beyond loopback (these machines have none).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# .ci/run installs Debian's chromium and sets CAPTIONER_REQUIRE_BROWSER, so there this test runs or fails.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CAPTIONER_REQUIRE_BROWSER"),
                                reason="no Chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with running_app(UIConfig(device="cpu")) as (url, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        yield page
        browser.close()


def test_upload_a_photo_and_read_its_caption(page, tmp_path):
    from playwright.sync_api import expect

    chain = ["sentiment-rnn", "translate-rnn:es"]
    expected = Captioner.from_pretrained(device="cpu").caption(str(CAT), postprocess=chain)
    expect(page.locator("#status")).to_contain_text("efficientnet_lite0")
    page.locator("#image input[type=file]").set_input_files(str(CAT))
    expect(page.locator("#image img").first).to_be_visible(timeout=30_000)
    for spec in chain:
        page.locator("#postprocess input").click()
        page.get_by_role("option", name=spec, exact=True).click()
    page.locator("#caption-button").click()
    expect(page.locator("#caption textarea")).to_have_value(expected.text, timeout=60_000)
    expect(page.locator("#details")).to_contain_text("sentiment-rnn")
    label = expected.extras["sentiment-rnn"]["label"]
    expect(page.locator("#explain .explain-words")).to_contain_text(f"sentiment-rnn {label}")  # the badge
    expect(page.locator("#explain .explain-words")).to_contain_text(expected.original_text.split()[-1])
    grid = page.locator("#explain details.explain-grid")
    expect(grid.locator("table")).not_to_be_visible()  # the attention grid opens on request
    grid.locator("summary").click()
    expect(grid.locator("table")).to_be_visible()
    expect(grid.locator("table tr")).to_have_count(len(expected.extras["translate-rnn:es"]["target"]) + 1)
    expect(page.locator("#objects")).to_contain_text("Egyptian cat (cat)")  # what the encoder recognised
    expect(page.get_by_text("Where the model looked, word by word")).to_be_visible()
    screenshot = os.environ.get("CAPTIONER_SCREENSHOT")  # how docs/ui.jpg is made
    page.screenshot(path=screenshot or str(tmp_path / "ui.jpg"), full_page=True, quality=85)


def test_a_bad_upload_shows_an_error_and_the_page_keeps_working(page, tmp_path):
    from playwright.sync_api import expect

    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"this is not a jpeg")
    page.reload()
    page.locator("#image input[type=file]").set_input_files(str(bad))
    page.locator("#caption-button").click()
    expect(page.get_by_text("holiday.jpg: not a readable image")).to_be_visible(timeout=30_000)
