"""The page's early script (demo/frame_guard.py) and the calmer Gradio queue (demo/main.py calm_queue)."""

from __future__ import annotations

import urllib.request

import gradio as gr
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

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


def test_the_shipped_script_defers_only_the_status_trackers_frames() -> None:
    js = FRAME_GUARD_JS.read_text()
    assert "/statustracker-" in js and "setTimeout" in js
    assert frame_guard_middleware().cls is EarlyScript


def test_calm_queue_raises_gradios_polling_intervals_and_never_lowers_them() -> None:
    with gr.Blocks() as demo:
        gr.Textbox()
    demo.queue()
    queue = demo._queue
    # Gradio 6's Linux defaults (a thousand wake-ups a second): if these names change, calm_queue must follow.
    assert queue.sleep_when_free <= 0.001 and queue.progress_update_sleep_when_free <= 0.01
    calm_queue(queue)
    assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == (0.02, 0.1)
    queue.sleep_when_free = 0.5
    calm_queue(queue)
    assert queue.sleep_when_free == 0.5


@pytest.mark.slow
def test_the_app_serves_its_page_with_the_script_before_gradios(app_url: str) -> None:
    with urllib.request.urlopen(app_url, timeout=30) as r:
        page = r.read().decode()
    at = page.index("/statustracker-")
    assert page.index("<head>") < at < page.index('type="module"')
