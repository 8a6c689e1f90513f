"""A real browser: a teacher's page and a watcher's page side by side. The teacher trains and shares; the
watcher opens the ?watch= link, sees the grid change, and probes a drawing with the shared model. Also the
presenter view and a lesson link's note. Its screenshots go to a temporary folder; to refresh the README's
(docs/screenshots/classroom-*.png), run it with GANCLS_SCREENSHOTS=docs/screenshots."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from demo.harness.browser import draw_a_one, open_app
from demo.harness.marks import needs_chromium

pytestmark = [pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: $GANCLS_SCREENSHOTS (to refresh the committed ones), else a temporary folder."""
    if os.environ.get("GANCLS_SCREENSHOTS"):
        folder = Path(os.environ["GANCLS_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def open_page(browser, url: str, width: int = 1280, height: int = 900):
    return open_app(browser, url, width, height, state="attached")  # a lesson link may open another tab


def src(page, selector: str) -> str | None:
    img = page.query_selector(f"{selector} img")
    return img.get_attribute("src") if img else None


def side_by_side(left: Path, right: Path, out: Path) -> None:
    from PIL import Image

    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    canvas = Image.new("RGB", (a.width + b.width + 16, max(a.height, b.height)), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + 16, 0))
    canvas.save(out, optimize=True)
    left.unlink()
    right.unlink()


def test_teacher_shares_and_a_watcher_follows_and_probes(browser, app_url: str, shots: Path) -> None:
    teacher = open_page(browser, f"{app_url}?seconds=45&preset=small&seed=4", width=960)
    expect(teacher.get_by_label("Time budget (s)")).to_have_value("45")  # the lesson link preset it
    teacher.click("#train-btn")
    teacher.wait_for_selector("#status .gc-running")
    teacher.get_by_role("tab", name="9 · Class").click()
    teacher.click("#share-btn")
    teacher.wait_for_function("() => document.querySelector('#share-code textarea, #share-code input').value")
    code = teacher.locator("#share-code textarea, #share-code input").first.input_value()
    teacher.wait_for_function("() => document.querySelector('#share-link textarea, #share-link input').value")
    link = teacher.locator("#share-link textarea, #share-link input").first.input_value()
    assert link.endswith(f"?watch={code}") and len(code) == 6
    teacher.get_by_role("tab", name="1 · Train").click()

    watcher = open_page(browser, link, width=960)
    watcher.wait_for_selector("#watch-status .gc-running")  # the link opened the Class tab, watching
    watcher.wait_for_selector(f"#using:has-text('class run {code}')")
    t0 = time.monotonic()
    while (first := src(watcher, "#watch-grid")) is None:
        assert time.monotonic() - t0 < 30, "no grid on the watcher's page"
        time.sleep(0.1)
    while src(watcher, "#watch-grid") == first:  # the shared run's fixed-noise grid evolves
        assert time.monotonic() - t0 < 40, "the grid on the watcher's page did not change"
        time.sleep(0.1)
    watcher.wait_for_selector("#watch-loss canvas, #watch-loss svg")
    assert "Stop" not in [b.inner_text() for b in watcher.query_selector_all("#class-controls button")]
    teacher.screenshot(path=str(shots / ".teacher.png"), full_page=True)
    watcher.screenshot(path=str(shots / ".watcher.png"), full_page=True)
    side_by_side(shots / ".teacher.png", shots / ".watcher.png", shots / "classroom-teacher-and-watcher.png")

    draw_a_one(watcher)  # the watcher probes their own drawing with the class run's model
    watcher.wait_for_selector("#probe-score:has-text('D(image, 0)')")
    assert f"class run {code}" in watcher.inner_text("#using")
    watcher.screenshot(path=str(shots / "classroom-watcher-probe.png"), full_page=True)

    # Presenter view: bigger, and the settings column hidden.
    teacher.get_by_label("Presenter view").check()
    teacher.wait_for_selector("#settings", state="hidden")
    teacher.wait_for_timeout(1500)  # the plots redraw at their new width
    teacher.screenshot(path=str(shots / "classroom-presenter.png"))
    teacher.get_by_label("Presenter view").uncheck()
    teacher.wait_for_selector("#settings", state="visible")
    teacher.click("#stop-btn")
    teacher.wait_for_selector("#status .gc-done", timeout=20_000)
    watcher.get_by_role("tab", name="9 · Class").click()
    watcher.wait_for_selector("#watch-status:has-text('not training now')", timeout=20_000)
    teacher.context.close()
    watcher.context.close()


def test_presenter_link_and_lesson_note(browser, app_url: str) -> None:
    page = open_page(browser, f"{app_url}?present=1&tab=generate&seconds=abc&preset=huge")
    page.wait_for_function("() => document.body.classList.contains('gc-present')")
    assert page.get_by_label("Presenter view").is_checked()
    page.wait_for_selector("#lesson-note:has-text('ignored')")
    note = page.inner_text("#lesson-note")
    assert "seconds=abc" in note and "preset=huge" in note
    page.wait_for_selector("#gen-btn", state="visible")  # the link opened the Generate tab
    page.context.close()
