"""A light Gradio API client for load benchmarks: many users on one asyncio loop and one connection pool.

gradio_client is the real client, but it is heavy for a load generator: every call opens new HTTP
clients (a fresh TLS context each, even for http://), and every call in flight polls for
cancellation 20 times a second on a thread of its own. Thirty of them on the 2-core machine that
also runs the server took about 1.4 cores between them, so the figures measured the clients rather
than the server. This one speaks the same queue protocol (POST queue/join, then read the session's
queue/data event stream until the event completes), uploads input files and downloads output files
as a browser would, and costs a few milliseconds per call.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx


class AppError(RuntimeError):
    """The app answered an event with an error (its message, as a page would show it)."""


class LeanApp:
    """One app: its config (read once) and a connection pool shared by every LeanUser."""

    def __init__(self, url: str, http: httpx.AsyncClient, config: dict[str, Any]):
        self.url, self.http, self.config = url.rstrip("/") + "/", http, config
        self.api = self.url + config.get("api_prefix", "/gradio_api").strip("/") + "/"
        self.fn = {d["api_name"]: d.get("id", i) for i, d in enumerate(config["dependencies"])
                   if d.get("api_name") and d.get("api_visibility") != "private"}

    @classmethod
    async def open(cls, url: str, users: int) -> LeanApp:
        limits = httpx.Limits(max_connections=4 * users + 8, max_keepalive_connections=4 * users + 8)
        http = httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits)
        config = (await http.get(url.rstrip("/") + "/config")).raise_for_status().json()
        return cls(url, http, config)

    def user(self) -> LeanUser:
        return LeanUser(self)

    async def close(self) -> None:
        await self.http.aclose()


class LeanUser:
    """One visitor (one Gradio session): calls endpoints by api name, one call at a time."""

    def __init__(self, app: LeanApp):
        self.app, self.session_hash = app, uuid.uuid4().hex

    async def upload(self, path: Path) -> dict[str, Any]:
        """Upload a file; returns the FileData an endpoint takes for it."""
        with open(path, "rb") as f:
            r = await self.app.http.post(self.app.api + "upload", files=[("files", (path.name, f.read()))])
        return {"path": r.raise_for_status().json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    async def predict(self, api_name: str, *data: Any, download: bool = True) -> list[Any]:
        """Run the endpoint to completion; returns its outputs (and fetches the files among them, as a page would)."""
        http, api = self.app.http, self.app.api
        r = await http.post(api + "queue/join", json={"data": list(data), "fn_index": self.app.fn[api_name.lstrip("/")],
                                                      "session_hash": self.session_hash, "event_data": None,
                                                      "trigger_id": None})
        event_id = r.raise_for_status().json()["event_id"]
        async with http.stream("GET", api + "queue/data", params={"session_hash": self.session_hash}) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "close_stream":
                    break
                if msg.get("event_id") != event_id or msg.get("msg") != "process_completed":
                    continue
                output = msg.get("output") or {}
                if not msg.get("success"):
                    raise AppError(output.get("error") or "the event failed")
                outputs = output.get("data", [])
                if download:
                    for value in outputs:
                        if isinstance(value, dict) and value.get("url"):
                            (await http.get(value["url"])).raise_for_status()
                return outputs
        raise AppError(f"the event stream closed before {api_name} completed")
