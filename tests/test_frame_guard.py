"""The page's early script (demo/frame_guard.py) and the calmer Gradio queue (demo/main.py calm_queue)."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import gradio as gr
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from demo.harness.browser import COUNT_FRAMES_JS
from demo.harness.marks import needs_chromium
from demo.frame_guard import FRAME_GUARD_JS, EarlyScript, frame_guard_middleware
from demo.main import calm_queue

PAGE = "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>t</title></head><body>hi</body></html>"


def client() -> TestClient:
    async def page(request):
        return HTMLResponse(PAGE)

    async def data(request):
        return JSONResponse({"head": "<head>"})

    async def stream(request):
        async def chunks():
            for i in range(3):
                yield f"<head>{i}".encode()
        return StreamingResponse(chunks(), media_type="text/event-stream")

    async def post(request):
        return HTMLResponse(PAGE)

    app = Starlette(routes=[Route("/", page), Route("/data", data), Route("/stream", stream),
                            Route("/post", post, methods=["POST"])],
                    middleware=[Middleware(EarlyScript, script="window.early = 1;")])
    return TestClient(app)


def test_html_pages_get_the_script_first_in_head_with_the_right_length() -> None:
    r = client().get("/")
    assert r.status_code == 200
    assert r.text.startswith("<!doctype html><html lang='en'><head><script>window.early = 1;</script><meta charset")
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.text.count("<script>") == 1 and r.text.endswith("<body>hi</body></html>")


def test_other_responses_pass_through_untouched() -> None:
    c = client()
    assert c.get("/data").json() == {"head": "<head>"}
    assert c.get("/stream").text == "<head>0<head>1<head>2"
    assert c.post("/post").text == PAGE  # only GET pages: a POST is never a page load


def test_a_page_without_head_is_left_alone() -> None:
    guard = EarlyScript(app=None, script="x")
    assert guard.inject(b"<p>no head</p>") == b"<p>no head</p>"
    assert guard.inject(b"<html><head lang='x'></head>") == b"<html><head lang='x'><script>x</script></head>"


def test_gradio_still_ships_the_status_tracker_the_script_looks_for() -> None:
    # The script knows Gradio's loop by the file it comes from; a Gradio that renames it needs a new look.
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    trackers = [f for f in assets.glob("statustracker-*.js") if "requestAnimationFrame" in f.read_text()]
    assert trackers and "/statustracker-" in FRAME_GUARD_JS.read_text()
    assert frame_guard_middleware().kwargs == {"script": FRAME_GUARD_JS.read_text()}


def test_calm_queue_raises_gradios_polling_intervals_and_never_lowers_them() -> None:
    with gr.Blocks() as demo:
        gr.Textbox()
    demo.queue()
    queue = demo._queue
    # Gradio 6's defaults off Windows (a thousand wake-ups a second): if these names change, calm_queue must follow.
    assert hasattr(queue, "sleep_when_free") and hasattr(queue, "progress_update_sleep_when_free")
    if sys.platform != "win32":
        assert queue.sleep_when_free <= 0.001 and queue.progress_update_sleep_when_free <= 0.01
    calm_queue(queue)
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == (0.02, 0.1)
    queue.sleep_when_free = 0.5
    calm_queue(queue)
    assert queue.sleep_when_free == 0.5


# A stand-in for Gradio's tracker: a loop that never stops, recording the time each callback gets.
TRACKER_JS = "window.__ticks = []; const tick = (t) => { __ticks.push(t); requestAnimationFrame(tick); }; requestAnimationFrame(tick);"
OTHER_JS = "window.__other = 0; const loop = () => { if (++__other < 5) requestAnimationFrame(loop); }; requestAnimationFrame(loop);"


@pytest.mark.slow
@needs_chromium
def test_the_trackers_loop_runs_on_a_timer_and_other_callers_get_frames(browser) -> None:
    files = {"/": ("text/html", f"<!doctype html><html><head><script>{FRAME_GUARD_JS.read_text()}</script>"
                                "<script src='/assets/statustracker-abc.js'></script><script src='/other.js'></script>"
                                "</head><body>page</body></html>"),
             "/assets/statustracker-abc.js": ("text/javascript", TRACKER_JS), "/other.js": ("text/javascript", OTHER_JS)}

    def serve(route) -> None:
        kind, body = files[route.request.url.removeprefix("http://guard.test")]
        route.fulfill(status=200, content_type=kind, body=body)

    page = browser.new_context().new_page()
    page.add_init_script(COUNT_FRAMES_JS)
    page.route("http://guard.test/**", serve)
    try:
        page.goto("http://guard.test/")
        page.wait_for_function("window.__other === 5", polling=100, timeout=15_000)  # the other loop got its frames
        page.evaluate("window.__frames = 0; window.__ticks = []")
        # The endless loop keeps going: five more ticks, however long a busy machine takes to give them.
        page.wait_for_function("window.__ticks.length >= 5", polling=100, timeout=30_000)
        ticks, frames = page.evaluate("[window.__ticks, window.__frames]")
    finally:
        page.context.close()
    assert frames == 0  # ... yet asked for no frame meanwhile: it runs on a timer,
    assert all(b - a >= 95 for a, b in zip(ticks, ticks[1:])) and ticks[0] > 0, ticks  # every 100 ms or more


@pytest.mark.slow
def test_the_app_serves_its_page_with_the_script_before_gradios(app_url: str) -> None:
    with urllib.request.urlopen(app_url, timeout=30) as r:
        page = r.read().decode()
    at = page.index("/statustracker-")
    assert page.index("<head>") < at < page.index('type="module"')
