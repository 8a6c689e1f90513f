"""Training through the page in a real browser vs the CLI, on the same machine (as on a teacher's laptop).

Alternating in one run, so load drifts hit both, each round trains the same preset for --seconds
  * with the CLI (`python -m gancls train --max-seconds S`, a subprocess), and
  * in headless Chromium on the app's page (`python app.py`, started once per thread setting):
    press Train, wait for the run to end, download its checkpoint with the page's own button,
and compares steps per second of each. The trainer's clock stands still while a consumer holds an
event, and the app does some work there on the training thread (the judge reads live grids), so
the headline compares wall-clock rates over the same stretch of each run: from its first metrics
event to its last, read from the checkpoint's history for the CLI (whose consumer does nothing with
--quiet, so its clock is its wall clock) and from the status box's updates as the browser received
them for the page. The page's stretch ends at its last update that shows fewer than the run's final
steps: an update that shows the final step may have waited for the end of the run (its last grid
and the save), which the CLI's stretch leaves out too; the figure up to the end is kept beside it.
The clock's steps/s (steps / training seconds at the last metrics event) are kept beside them. The
page's live updates are counted in the browser (mutations of the status, the two plots and the grid),
and the CPU seconds the browser and the server used.

    flock /tmp/gancls-bench.lock python -m bench.ui_browser --seconds 30 --rounds 3 --threads default \
        --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, header_lines, load_average, machine_info, write_json
from demo.harness.browser import chromium

ROOT = Path(__file__).resolve().parents[1]

WATCHED = {"status": "#status", "loss plot": "#loss-plot", "D plot": "#d-plot", "grid": "#train-grid"}
# Timestamps (ms) of DOM mutations under each watched element; one update = mutations within 100 ms.
OBSERVE_JS = """(sel) => {
  window.__gc = {};
  for (const [name, css] of Object.entries(sel)) {
    const el = document.querySelector(css);
    window.__gc[name] = [];
    new MutationObserver(() => window.__gc[name].push(performance.now()))
      .observe(el, {subtree: true, childList: true, characterData: true, attributes: true});
  }
  // The status box's text at each change, with the time the browser saw it (for wall-clock steps/s).
  window.__gcStatus = [];
  const status = document.querySelector(sel.status);
  new MutationObserver(() => window.__gcStatus.push([performance.now(), status.innerText]))
    .observe(status, {subtree: true, childList: true, characterData: true});
}"""
STEP_RE = re.compile(r"step\s+([\d,]+)")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children so far."""
    import psutil

    procs: dict[int, Any] = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs.update((p.pid, p) for p in [proc, *proc.children(recursive=True)])
        except psutil.Error:
            pass
    total = 0.0
    for p in procs.values():  # each process once, though a browser's pids include parents and children
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def start_app(port: int, threads: str, args: argparse.Namespace) -> subprocess.Popen:
    from ui_overhead import start_app as start

    ns = argparse.Namespace(data_dir=args.data_dir, checkpoint=None)
    extra = dict(kv.split("=", 1) for kv in args.app_env)
    extra.update({} if threads == "default" else {"GANCLS_TRAIN_THREADS": threads})
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        proc, _ = start(port, ns)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return proc


def last_point(checkpoint: Path) -> dict[str, Any]:
    """The run's figures from its checkpoint; `window` = (first, last) metrics (step, training seconds)."""
    from gancls.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    history = ckpt.meta["history"]
    first, last = history[0], history[-1]
    return {"steps": int(last["step"]), "elapsed": float(last["elapsed"]),
            "steps_per_s": last["step"] / last["elapsed"], "images_per_s": last["images_seen"] / last["elapsed"],
            "window": [(int(first["step"]), float(first["elapsed"])), (int(last["step"]), float(last["elapsed"]))],
            "batch_size": ckpt.meta["train_config"]["batch_size"], "arch": ckpt.model.cfg.arch}


def rate(window: list[tuple[int, float]]) -> float | None:
    """Steps per second between the window's first and last (step, seconds); None if it is empty."""
    (s0, t0), (s1, t1) = window
    return (s1 - s0) / (t1 - t0) if s1 > s0 and t1 > t0 else None


def cli_round(threads: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out = work / f"cli-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "gancls", "train", "--max-seconds", str(args.seconds), "--out", str(out),
           "--quiet", "--no-download", "--arch", args.arch]
    cmd += ["--data-dir", args.data_dir] if args.data_dir else []
    cmd += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    cmd += [] if threads == "default" else ["--threads", threads]
    done = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    chose = [line for line in done.stderr.splitlines() if line.startswith(("threads: ", "train: "))]
    row = last_point(out)
    row["wall_steps_per_s"] = rate(row["window"])  # --quiet: nothing happens outside the trainer's clock
    row["wall_to_end_steps_per_s"] = row["wall_steps_per_s"]  # its history ends before the end-of-run save
    return {**row, "cli_says": chose}  # e.g. the threads it chose and the device line


def status_points(texts: list[tuple[float, str]], t_end: float) -> list[tuple[int, float]]:
    """(step, browser seconds) of each status update that showed steps while training."""
    points = []
    for t, text in texts:
        found = STEP_RE.search(text)
        if found and t < t_end and "elapsed" in text:  # `elapsed` appears with the first metrics event
            points.append((int(found.group(1).replace(",", "")), t / 1000))
    return points


def status_window(points: list[tuple[int, float]], below: int | None = None) -> list[tuple[int, float]] | None:
    """The first and last of `points` (only those under step `below`, if given); None if fewer than two."""
    points = [p for p in points if below is None or p[0] < below]
    return [points[0], points[-1]] if len(points) >= 2 else None


def updates(stamps: list[float], t_start: float, t_end: float) -> dict[str, Any]:
    """Updates (mutation bursts) while training, and the longest gap between two of them (s)."""
    inside = [s for s in stamps if t_start <= s <= t_end]
    bursts = [s for i, s in enumerate(inside) if i == 0 or s - inside[i - 1] > 100]
    gaps = [(b - a) / 1000 for a, b in zip([t_start, *bursts], [*bursts, t_end])]
    return {"count": len(bursts), "per_s": len(bursts) / max((t_end - t_start) / 1000, 1e-9),
            "longest_gap_s": max(gaps) if gaps else None}


def browser_round(browser: Any, url: str, server_pid: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": args.width, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(url)
        page.wait_for_selector("#train-btn")
        page.get_by_label("Time budget (s)").fill(f"{args.seconds:g}")
        choose_preset(page, args)
        page.evaluate(OBSERVE_JS, WATCHED)
        browser_pid = browser_pids()
        cpu0 = (cpu_seconds(browser_pid), cpu_seconds([server_pid]))
        page.click("#train-btn")
        page.wait_for_selector("#status .gc-running")
        t_start = page.evaluate("performance.now()")
        page.wait_for_selector("#status .gc-done", timeout=1000 * (args.seconds + 120))
        t_end = page.evaluate("performance.now()")
        cpu1 = (cpu_seconds(browser_pid), cpu_seconds([server_pid]))
        stamps, texts = page.evaluate("window.__gc"), page.evaluate("window.__gcStatus")
        page.wait_for_selector("#download-btn", state="visible")
        with page.expect_download() as dl:
            page.click("#download-btn")
        path = work / f"browser-{time.monotonic_ns()}.safetensors"
        dl.value.save_as(path)
    finally:
        context.close()
    row = last_point(path)
    done_at = next((t for t, text in texts if STEP_RE.search(text) and "Done" in text), t_end)  # the final update
    row["status_points"] = status_points(texts, done_at)
    row["wall_window"] = status_window(row["status_points"], below=row["steps"])
    row["wall_steps_per_s"] = rate(row["wall_window"]) if row["wall_window"] else None
    to_end = status_window(row["status_points"])
    row["wall_to_end_steps_per_s"] = rate(to_end) if to_end else None
    row["updates"] = {name: updates(stamps[name], t_start, t_end) for name in WATCHED}
    row["browser_cpu_s"], row["server_cpu_s"] = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    return row


def choose_preset(page: Any, args: argparse.Namespace) -> None:
    """Set the page's form to --arch and --batch-size, as a visitor would (the page's defaults otherwise)."""
    if args.arch != "fast":
        page.get_by_label("Model size (preset)").click()
        page.get_by_role("option", name=args.arch, exact=True).click()
        page.wait_for_timeout(1000)  # the page refills batch size and learning rates for the preset
    if args.batch_size:
        page.get_by_text("More settings").click()
        page.get_by_label("Batch size").fill(str(args.batch_size))
        page.get_by_label("Batch size").press("Tab")


def browser_pids() -> list[int]:
    import psutil

    me = psutil.Process()
    return [p.pid for p in me.children(recursive=True) if "chrom" in p.name().lower()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="training seconds per run")
    p.add_argument("--rounds", type=int, default=3, help="CLI/browser pairs per thread setting, alternating order")
    p.add_argument("--threads", default="default",
                   help="comma-separated torch threads to compare, e.g. 1,2 or default (no flag: each side's own "
                        "default); the CLI gets --threads T, the app --train-threads T")
    p.add_argument("--arch", default="fast", help="the preset, for both (the browser picks it on the page)")
    p.add_argument("--batch-size", type=int, default=None, help="for both; default: the preset's")
    p.add_argument("--data-dir", default=None, help="MNIST dir for both (default: the embedded subset)")
    p.add_argument("--width", type=int, default=1280, help="browser viewport width")
    p.add_argument("--port", type=int, default=7911, help="first app port (one app per thread setting)")
    p.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment for the app only (repeatable), e.g. OMP_WAIT_POLICY=PASSIVE")
    p.add_argument("--warmup", action="store_true", help="one untimed short run each way first")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "ui_browser.json", help="where to write the JSON")
    args = p.parse_args()
    settings = [t.strip() for t in args.threads.split(",") if t.strip()]
    info = machine_info()
    apps = {t: start_app(args.port + i, t, args) for i, t in enumerate(settings)}
    rows: list[dict[str, Any]] = []
    try:
        with chromium() as browser, tempfile.TemporaryDirectory(prefix="gancls-uib-") as tmp:
            work = Path(tmp)
            if args.warmup:
                short = argparse.Namespace(**{**vars(args), "seconds": 5.0})
                for i, t in enumerate(settings):
                    cli_round(t, short, work)
                    browser_round(browser, f"http://127.0.0.1:{args.port + i}/", apps[t].pid, short, work)
            for r in range(args.rounds):
                for i, t in enumerate(settings):
                    order = ("cli", "browser") if (r + i) % 2 == 0 else ("browser", "cli")
                    for mode in order:
                        load = load_average()
                        row = (cli_round(t, args, work) if mode == "cli" else
                               browser_round(browser, f"http://127.0.0.1:{args.port + i}/", apps[t].pid, args, work))
                        row.update(round=r + 1, mode=mode, threads=t, load_before=load)
                        rows.append(row)
                        ups = row.get("updates", {}).get("D plot")
                        seen = (f"  D plot {ups['per_s']:.2f} updates/s, longest gap {ups['longest_gap_s']:.2f} s, "
                                f"browser CPU {row['browser_cpu_s']:.1f} s") if ups else ""
                        wall = row["wall_steps_per_s"]
                        print(f"round {r + 1} threads {t:7s} {mode:7s} {row['steps']:5d} steps "
                              f"{row['steps_per_s']:6.2f} steps/s (wall clock: "
                              f"{'-' if wall is None else f'{wall:.2f}'}){seen}  load {load}", flush=True)
    finally:
        for proc in apps.values():
            proc.terminate()
            proc.wait(15)
    info["load_average_at_end"] = load_average()
    presets = {(r["arch"], r["batch_size"]) for r in rows}
    if len(presets) > 1:
        raise SystemExit(f"the CLI and the page trained different presets: {sorted(presets)}")
    print("\n".join(header_lines(info)))
    summary = {}
    for t in settings:
        summary[t] = {}
        for key, what in [("wall_steps_per_s", "wall clock"), ("wall_to_end_steps_per_s", "wall clock, to the end"),
                          ("steps_per_s", "trainer's clock")]:
            cli = [r[key] for r in rows if r["threads"] == t and r["mode"] == "cli"]
            web = [r[key] for r in rows if r["threads"] == t and r["mode"] == "browser"]
            if None in cli + web:
                print(f"threads {t}: no {what} figure for some round (too short a run?)")
                continue
            ratios = [w / c for w, c in zip(web, cli)]
            summary[t][key] = {"cli_median": statistics.median(cli), "browser_median": statistics.median(web),
                               "ratio_per_round": ratios, "ratio_median": statistics.median(ratios)}
            print(f"threads {t}, {what}: CLI {statistics.median(cli):.2f} steps/s, browser "
                  f"{statistics.median(web):.2f} steps/s, ratio median {statistics.median(ratios):.3f} "
                  f"(rounds: {', '.join(f'{x:.3f}' for x in ratios)})")
    out = {"machine": info, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "preset": {"arch": rows[0]["arch"], "batch_size": rows[0]["batch_size"]}, "rounds": rows, "summary": summary}
    print(f"wrote {write_json(args.out, out)}")


if __name__ == "__main__":
    main()
