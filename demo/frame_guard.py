"""A script that must run before Gradio's own code: the page's <head> gets it from an ASGI middleware,
because Gradio's `head=` is added by its JavaScript after its modules have loaded (too late for it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_GUARD_JS = Path(__file__).with_name("frame_guard.js")


class EarlyScript:
    """ASGI middleware: each HTML page the app serves gets `script` as the first element of its <head>.

    Other responses (the API, files, the event stream) pass through untouched, chunk by chunk.
    """

    def __init__(self, app: ASGIApp, script: str):
        self.app = app
        self.tag = f"<script>{script}</script>".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def patched(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                html = headers.get(b"content-type", b"").startswith(b"text/html")
                if not html or b"content-encoding" in headers:
                    await send(message)
                    return
                start = message  # held back until the body is whole, as its length changes
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            page = self.inject(b"".join(body))
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(page)).encode())]})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, patched)

    def inject(self, page: bytes) -> bytes:
        """`page` with the script right after its <head> tag (unchanged if it has none)."""
        at = page.find(b"<head")
        end = page.find(b">", at) if at >= 0 else -1
        return page if end < 0 else page[:end + 1] + self.tag + page[end + 1:]


def frame_guard_middleware() -> Any:
    """The middleware entry for FastAPI's `middleware=` (Gradio's launch(app_kwargs=...))."""
    from starlette.middleware import Middleware

    return Middleware(EarlyScript, script=FRAME_GUARD_JS.read_text())
