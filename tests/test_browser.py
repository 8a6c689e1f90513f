"""A real browser drives the app: train live, stop, generate a 7, probe a gallery digit.

Each test opens its own page (its own Gradio session), so none depends on what another left behind.
Screenshots of each step go to test-artifacts/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url: str) -> Iterator:
    """A fresh page on the app: a new session with the pretrained model, the Train tab open."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app_url)
    page.wait_for_selector("#train-btn")
    yield page
    context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def grid_src(page) -> str | None:
    img = page.query_selector("#train-grid img")
    return img.get_attribute("src") if img else None


def test_train_live_then_stop(page) -> None:
    page.get_by_label("Time budget (s)").fill("40")
    page.click("#train-btn")
    page.wait_for_selector("#status .gc-running")
    page.wait_for_selector("#loss-plot canvas, #loss-plot svg")
    first = None
    t0 = time.monotonic()
    while (first := grid_src(page)) is None:
        assert time.monotonic() - t0 < 30, "no sample grid appeared"
        time.sleep(0.1)
    shot(page, "1-training")
    t0 = time.monotonic()
    while grid_src(page) == first:  # the fixed-noise grid evolves while training
        assert time.monotonic() - t0 < 30, "the sample grid did not change"
        time.sleep(0.1)
    steps_before = page.inner_text("#status .gc-stats")
    page.click("#stop-btn")
    page.wait_for_selector("#status .gc-done", timeout=15_000)
    assert "Stopped at step" in page.inner_text("#status")
    assert "label accuracy (judge, live grid)" in page.inner_text("#status")  # the quality meter
    assert steps_before != page.inner_text("#status .gc-stats")
    page.wait_for_selector("#using:has-text('your model trained for')")
    page.wait_for_selector("#download-btn", state="visible", timeout=10_000)  # same update, may render later
    shot(page, "2-stopped")


def test_generate_seven(page) -> None:
    page.get_by_role("tab", name="2 · Generate").click()
    boxes = page.locator("#gen-labels label")
    for k in range(10):
        if k != 7:
            boxes.nth(k).click()  # untick every label but 7
    page.click("#gen-btn")
    page.wait_for_selector("#gen-image img")
    page.wait_for_selector("#gen-file a, #gen-file .file-preview")
    shot(page, "3-generate-7")


def test_probe_gallery_digit(page) -> None:
    page.get_by_role("tab", name="3 · Probe").click()
    page.locator("#gallery .thumbnail-item").nth(3).click()  # the gallery's first row is 0..9
    page.wait_for_selector("#probe-score:has-text('D(image, 3)')")
    assert "real label: 3" in page.inner_text("#real-label")
    page.wait_for_selector("#probe-bars canvas, #probe-bars svg")
    shot(page, "4-probe")


def test_probe_a_drawing(page) -> None:
    page.get_by_role("tab", name="3 · Probe").click()
    page.get_by_role("tab", name="Draw").click()
    page.click("#sketch button[aria-label='Brush']")
    box = page.locator("#sketch canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(20):  # a vertical stroke: a "1"
        page.mouse.move(x, y + i * box["height"] * 0.03)
    page.mouse.up()
    page.click("#draw-btn")
    page.wait_for_selector("#real-label:has-text('Your drawing')")
    # A new page tests label 0 (gallery digit 0's); asking for 1 re-probes the drawing with it.
    assert "D(image, 1)" not in page.inner_text("#probe-score")
    page.locator("#probe-label label").nth(1).click()
    page.wait_for_selector("#probe-score:has-text('D(image, 1)')")
    assert "Your drawing" in page.inner_text("#real-label")
    shot(page, "5-probe-drawing")


def test_teaching_tabs(page) -> None:
    # Ablation: a 2 s-per-arm run of the tiny preset, live, then the comparison.
    page.get_by_role("tab", name="4 · Ablation").click()
    page.get_by_label("Time per objective (s)").fill("2")
    page.locator("#abl-arch input").fill("small")
    page.keyboard.press("Enter")
    page.click("#abl-start")
    page.wait_for_selector("#abl-status .gc-done", timeout=90_000)
    page.wait_for_selector("#abl-table table")
    assert "gan-cls" in page.inner_text("#abl-table") and "plain" in page.inner_text("#abl-table")
    page.wait_for_selector("#abl-heat-b img")
    assert "What this run shows" in page.inner_text("#abl-verdict")
    shot(page, "6-ablation")

    # D's view: opening the tab draws the heat map; a click on a cell shows its digits.
    page.get_by_role("tab", name="5 · D's view").click()
    heat = page.wait_for_selector("#dview-heat img")
    page.wait_for_function("() => document.querySelector('#dview-heat img').naturalWidth > 0")
    natural = page.evaluate("() => document.querySelector('#dview-heat img').naturalWidth")
    box = heat.bounding_box()
    s = box["width"] / natural  # the map is shown no larger than its natural size
    heat.click(position={"x": (44 + 24 + 8 * 44 + 22) * s, "y": (44 + 3 * 44 + 22) * s})  # row 3, column 8
    page.wait_for_selector("#cell-text:has-text('D told the label is')")
    assert "Real 3s, D told the label is 8" in page.inner_text("#cell-text")
    page.wait_for_selector("#cell-gallery img")
    assert "D as a classifier" in page.inner_text("#dview-text")
    shot(page, "7-dview")

    # Style vs label: the grid, one row per noise vector.
    page.get_by_role("tab", name="6 · Style vs label").click()
    page.click("#style-btn")
    page.wait_for_selector("#style-grid img")
    shot(page, "8-style")
