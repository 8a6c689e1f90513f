"""Headless Debian Chromium through playwright: the launch tests, benchmarks and scripts share, and page helpers."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from . import ROOT

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; playwright's own browsers would need a download
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
# axe-core 4.14.1 (MPL-2.0, Deque Systems), vendored with its licence so no test needs a download.
AXE = ROOT / "tests" / "assets" / "axe.min.js"
# An init script (it runs before the page's own, so before demo/frame_guard.js): counts the calls that reach
# the browser's requestAnimationFrame (window.__frames) and the timers Gradio's status tracker sets
# (window.__tracker_timers).
COUNT_FRAMES_JS = """
window.__frames = 0;
window.__tracker_timers = 0;
const ask = window.requestAnimationFrame.bind(window);
window.requestAnimationFrame = (callback) => { window.__frames++; return ask(callback); };
const later = window.setTimeout.bind(window);
window.setTimeout = (...args) => {
  if ((new Error().stack || "").includes("/statustracker-")) window.__tracker_timers++;
  return later(...args);
};
"""

# How many of a plot's canvas pixels are (nearly) each colour: [selector, ['#rrggbb', ...]] -> counts.
PIXELS_JS = """([sel, colours]) => {
  const c = document.querySelector(sel + ' canvas');
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const rgb = colours.map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));
  const counts = rgb.map(() => 0);
  for (let i = 0; i < px.length; i += 4)
    rgb.forEach((c, k) => { if (px[i + 3] > 200 && c.every((v, j) => Math.abs(v - px[i + j]) < 24)) counts[k]++; });
  return counts;
}"""


@contextlib.contextmanager
def chromium() -> Iterator:
    """Headless Debian Chromium driven by playwright (tests, benchmarks and screenshots share this launch)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_app(browser, url: str, width: int, height: int, ready: str = "#train-btn", state: str = "visible"):
    """A new page on the app (its own browser context: its own Gradio session), once `ready` is in `state`."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector(ready, state=state)
    return page


def draw_a_one(page) -> None:
    """On a playwright page: draw a vertical stroke (a "1") on Probe's pad and probe it."""
    page.get_by_role("tab", name="3 · Probe").click()
    page.get_by_role("tab", name="Draw").click()
    page.click("#sketch button[aria-label='Brush']")
    box = page.locator("#sketch canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(20):
        page.mouse.move(x, y + i * box["height"] * 0.03)
    page.mouse.up()
    page.click("#draw-btn")
    page.wait_for_selector("#real-label:has-text('Your drawing')")


def serious_violations(page) -> list[dict]:
    """axe-core's critical and serious violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5], "count": len(v["nodes"])}
            for v in result["violations"] if v["impact"] in ("critical", "serious")]
