"""Regenerate docs/screenshots/{train,generate,probe}.png: start the app, train for real, photograph each tab.

    python -m demo.screenshots --data-dir ../shared/data --seconds 60

Needs playwright and a Chromium (Debian's /usr/bin/chromium by default; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(args: argparse.Namespace, port: int) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
    cmd += ["--data-dir", args.data_dir] if args.data_dir else []
    cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the app did not start")


def parser(doc: str) -> argparse.ArgumentParser:
    """The flags every screenshot script takes."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    p.add_argument("--chromium", default="/usr/bin/chromium")
    return p


@contextmanager
def app_page(args: argparse.Namespace) -> Iterator[Any]:
    """The app in a subprocess and a 1280-wide Chromium page open on it."""
    from playwright.sync_api import sync_playwright

    Path(args.out).mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = _serve(args, port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#train-btn")
            yield page
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)


def train(page: Any, seconds: int) -> None:
    """Press Train with a time budget and wait until the run is done."""
    page.get_by_label("Time budget (s)").fill(str(seconds))
    page.click("#train-btn")
    page.wait_for_selector("#status .gc-done", timeout=(seconds + 120) * 1000)


def main() -> None:
    """Start the app, run the three tabs in a browser, save the screenshots."""
    p = parser(__doc__)
    p.add_argument("--seconds", type=int, default=60, help="training budget of the photographed run")
    a = p.parse_args()
    out = Path(a.out)
    with app_page(a) as page:
        train(page, a.seconds)
        page.wait_for_timeout(1500)  # let the plots finish their transition
        page.screenshot(path=str(out / "train.png"), full_page=True)

        page.get_by_role("tab", name="2 · Generate").click()
        page.click("#gen-btn")
        page.wait_for_selector("#gen-image img")
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "generate.png"), full_page=True)

        page.get_by_role("tab", name="3 · Probe").click()
        page.locator("#gallery .thumbnail-item").nth(7).click()
        page.wait_for_selector("#probe-score:has-text('D(image, 7)')")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "probe.png"), full_page=True)
    print(f"wrote {', '.join(str(out / n) for n in ('train.png', 'generate.png', 'probe.png'))}")


if __name__ == "__main__":
    main()
