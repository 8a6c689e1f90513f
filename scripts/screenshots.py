"""Regenerate docs/screenshots/*.png: start the app, use each tab for real in Chromium, photograph it.

    python -m scripts.screenshots --seconds 60                        # train, generate, probe
    python -m scripts.screenshots --seconds 60 --teach --ablation-seconds 60   # also ablation, D's view, style
    python -m scripts.screenshots --handwriting                       # only tab 8, pretrained model and its S
    python -m scripts.screenshots --phone --seconds 20                # every tab at 390x844 -> docs/screenshots/phone/
    python -m scripts.screenshots --replay --checkpoint DIR           # the recorded training, desktop and phone

Add `--data-dir DIR` for full MNIST (the default is what the app finds: $GANCLS_DATA, a cached
download or the embedded subset). Needs playwright and a Chromium (Debian's /usr/bin/chromium by
default; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from demo.harness.browser import CHROMIUM, CHROMIUM_ARGS
from demo.harness.ports import free_port

ROOT = Path(__file__).resolve().parents[1]  # the repository


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
    p.add_argument("--chromium", default=str(CHROMIUM))
    return p


@contextmanager
def app_page(args: argparse.Namespace, phone: bool = False) -> Iterator[Any]:
    """The app in a subprocess and a 1280-wide Chromium page open on it (a 390x844 touch screen with `phone`)."""
    from playwright.sync_api import sync_playwright

    Path(args.out).mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = _serve(args, port)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = (browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                     device_scale_factor=2) if phone else
                    browser.new_page(viewport={"width": 1280, "height": 900}))
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#train-btn")
            yield page
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(30)  # it saves its sessions first: slow on a busy machine
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def train(page: Any, seconds: int) -> None:
    """Press Train with a time budget and wait until the run is done."""
    page.get_by_label("Time budget (s)").fill(str(seconds))
    page.click("#train-btn")
    page.wait_for_selector("#status .gc-done", timeout=(seconds + 120) * 1000)


def teaching_tabs(page: Any, out: Path, ablation_seconds: int) -> None:
    """Run the ablation, D's view and the style tab (after a Train run) and photograph each."""
    page.get_by_role("tab", name="4 · Ablation").click()
    page.get_by_label("Time per objective (s)").fill(str(ablation_seconds))
    page.click("#abl-start")
    page.wait_for_selector("#abl-status .gc-done", timeout=(2 * ablation_seconds + 240) * 1000)
    page.wait_for_timeout(1500)  # let the plots finish their transition
    page.screenshot(path=str(out / "ablation.png"), full_page=True)
    print(page.inner_text("#abl-status"))
    print(page.inner_text("#abl-table"))
    print(page.inner_text("#abl-verdict"))

    page.get_by_role("tab", name="5 · D's view").click()
    page.wait_for_selector("#dview-heat img")
    page.click("#cell-btn")  # the default cell: real 4s told "9"
    page.wait_for_selector("#cell-gallery img")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "dview.png"), full_page=True)
    print(page.inner_text("#dview-text"))

    page.get_by_role("tab", name="6 · Style vs label").click()
    page.click("#style-btn")
    page.click("#lab-btn")
    page.click("#noise-btn")
    for sel in ("#style-grid img", "#lab-strip img", "#noise-strip img"):
        page.wait_for_selector(sel)
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "style.png"), full_page=True)


TABS = ["1 · Train", "2 · Generate", "3 · Probe", "4 · Ablation", "5 · D's view", "6 · Style vs label",
        "7 · Timeline & export", "8 · Your handwriting", "9 · Class"]


def phone_shots(page: Any, out: Path, seconds: int) -> None:
    """At 390x844: what a student sees right after tapping Train (the screen, not the page), then every tab."""
    out.mkdir(parents=True, exist_ok=True)
    page.get_by_label("Time budget (s)").fill(str(seconds))
    page.locator("#train-btn").tap()
    page.wait_for_selector("#status .gc-running", timeout=120_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(out / "train-tapped.png"))  # the status must be on this screen
    page.wait_for_selector("#status .gc-done", timeout=(seconds + 120) * 1000)
    page.wait_for_timeout(1500)
    for i, tab in enumerate(TABS, 1):
        page.get_by_role("tab", name=tab, exact=True).tap()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / f"tab{i}.png"), full_page=True)


def handwriting_tab(page: Any, out: Path) -> None:
    """Tab 8 with the model in use: a gallery 7 written as 0-9, and a date in its hand."""
    page.get_by_role("tab", name="8 · Your handwriting").click()
    page.locator("#hw-gallery .thumbnail-item").nth(17).click()  # the gallery's second row of 0..9
    page.wait_for_selector("#hw-caption:has-text('(a 7)')")
    page.wait_for_selector("#hw-text:has-text('G wrote 0–9')", timeout=120_000)
    page.get_by_label("Number or date (1–16 digits)").fill("20261231")
    page.click("#hw-write-btn")
    page.wait_for_selector("#hw-number-image img")
    page.wait_for_selector("#hw-number-file a, #hw-number-file .file-preview")
    page.wait_for_timeout(800)
    page.screenshot(path=str(out / "handwriting.png"), full_page=True)
    print(page.inner_text("#hw-text"))


def replay_shots(args: argparse.Namespace, out: Path) -> None:
    """Watch the pretrained model learn: the recording half-way (desktop) and at its end (phone)."""
    with app_page(args) as page:
        page.click("#replay-btn")
        page.wait_for_selector("#replay-grid img")
        page.wait_for_timeout(15_000)  # about half of the 30 s play
        page.click("#replay-pause")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "replay.png"), full_page=True)
        print(page.inner_text("#replay-caption"))
    with app_page(args, phone=True) as page:
        page.locator("#replay-btn").tap()
        page.wait_for_selector("#replay-grid img")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "phone" / "replay-tapped.png"))  # the screen right after the tap
        page.click("#replay-pause")
        page.locator("#replay-slider input[type=range]").press("End")  # the last frame: the shipped model
        page.wait_for_timeout(2500)
        page.screenshot(path=str(out / "phone" / "replay.png"), full_page=True)


def main() -> None:
    """Start the app, use the tabs in a browser, save the screenshots."""
    p = parser(__doc__)
    p.add_argument("--seconds", type=int, default=60, help="training budget of the photographed run")
    p.add_argument("--teach", action="store_true", help="also photograph the teaching tabs (4-6)")
    p.add_argument("--ablation-seconds", type=int, default=60, help="ablation budget per objective (with --teach)")
    p.add_argument("--phone", action="store_true", help="photograph every tab at 390x844 into OUT/phone/ instead")
    p.add_argument("--replay", action="store_true",
                   help="only photograph the recorded training (needs a --checkpoint with replay.npz)")
    p.add_argument("--handwriting", action="store_true",
                   help="only photograph tab 8 (Your handwriting) with the pretrained model: no Train run")
    a = p.parse_args()
    out = Path(a.out)
    if a.replay:
        (out / "phone").mkdir(parents=True, exist_ok=True)
        replay_shots(a, out)
        print(f"wrote {out / 'replay.png'} and the phone ones in {out / 'phone'}")
        return
    if a.handwriting:
        with app_page(a) as page:
            handwriting_tab(page, out)
        print(f"wrote {out / 'handwriting.png'}")
        return
    if a.phone:
        with app_page(a, phone=True) as page:
            phone_shots(page, out / "phone", a.seconds)
        print(f"wrote the phone screenshots in {out / 'phone'}")
        return
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
        page.locator("#probe-why").get_by_text("Why does a real digit").first.click()  # the explanation, measured
        page.wait_for_selector("#probe-facts:has-text('mismatch AUC')", timeout=120_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "probe.png"), full_page=True)
        if a.teach:
            teaching_tabs(page, out, a.ablation_seconds)
    print(f"wrote the screenshots in {out}")


if __name__ == "__main__":
    main()
