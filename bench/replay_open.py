"""Click to view for the recorded training (Train tab, Watch): from a fresh app start, the time from the click
until the grid and the D-output plot are drawn, in Chromium. Writes bench/results/replay_open.json.

    flock /tmp/gancls-bench.lock python -m bench.replay_open --checkpoint DIR [--repeats 3]

DIR holds a checkpoint and its replay.npz (checkpoints/pretrained once one ships). Each repeat starts a new app.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.common import cpu_model
from demo.harness.browser import chromium
from demo.harness.launch import start_app, stop_app
from demo.harness.ports import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]


def once(checkpoint: Path, log: Path, viewport: tuple[int, int]) -> dict:
    """One fresh app, one page, one click: seconds from the click to the recorded training on screen."""
    port = free_port()
    proc = start_app(checkpoint, port, log)
    try:
        startup = wait_http(f"http://127.0.0.1:{port}/", proc, timeout=120)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#replay-btn")
            t0 = time.monotonic()
            page.click("#replay-btn")
            page.wait_for_selector("#replay-grid img", timeout=60_000)
            page.wait_for_selector("#replay-d canvas, #replay-d svg", timeout=60_000)
            shown = time.monotonic() - t0
    finally:
        stop_app(proc)
    return {"viewport": list(viewport), "app_start_s": round(startup, 2), "click_to_view_s": round(shown, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "pretrained"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "replay_open.json"))
    a = p.parse_args()
    from gancls.replay import load_replay, replay_path

    replay = load_replay(a.checkpoint)
    if replay is None:
        raise SystemExit(f"{a.checkpoint} has no {replay_path(a.checkpoint).name}")
    load_before = os.getloadavg()
    runs = [once(Path(a.checkpoint), Path("/tmp") / f"replay_open_{os.getpid()}.log", vp)
            for _ in range(a.repeats) for vp in ((1280, 1000), (390, 844))]
    result = {"checkpoint": a.checkpoint, "replay_mb": round(replay_path(a.checkpoint).stat().st_size / 2**20, 2),
              "frames": len(replay.steps), "last_step": replay.steps[-1], "runs": runs,
              "max_click_to_view_s": max(r["click_to_view_s"] for r in runs),
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "cpu": cpu_model(), "cores": os.cpu_count()}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
