"""Latency: sample 100 digits, probe one image against ten labels, and the app's cold start.

    python -m bench.latency --data-dir ../shared/data

Sampling and probing call the library the app calls (`gancls.sampling.sample`,
`gancls.probe.label_scores`), after warm-up, many times; the thread counts take turns in short
rounds and the table shows the median (and 90th percentile) per setting. Cold start spawns
`python app.py --port P` and times it to the first HTTP 200 on `/`, a few times.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import (DEFAULT_DATA_DIR, REPO_ROOT, RESULTS_DIR, format_table,
                          header_lines, load_average, machine_info, verdict, write_json)


SAMPLE_TARGET_MS = 30.0
PRETRAINED = REPO_ROOT / "checkpoints" / "pretrained"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder holding MNIST/raw/ (probe digits)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="model to time (default: checkpoints/pretrained if present, else an untrained --arch model)")
    p.add_argument("--arch", default="fast", help="preset of the untrained model when there is no checkpoint")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", default="1,2", help="comma-separated torch CPU thread counts (default 1,2)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--repeats", type=int, default=40, help="timed calls per round and setting (default 40)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls before the first round (default 10)")
    p.add_argument("--app-runs", type=int, default=3, help="app cold starts to time (0 = skip; default 3)")
    p.add_argument("--app-timeout", type=float, default=180.0, help="seconds to wait for the app's first 200")
    p.add_argument("--app-args", default="", help="extra flags for app.py, e.g. '--checkpoint /tmp/pre'")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "latency.json", help="where to write the JSON")
    return p.parse_args(argv)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def time_calls(fn: Any, n: int, sync: Any = None) -> list[float]:
    """Milliseconds of each of `n` calls of fn()."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_cold_start(timeout: float, extra: list[str]) -> dict[str, Any]:
    """Spawn `python app.py --port P` and time it to the first HTTP 200 on `/`; then stop it."""
    port = free_port()
    cmd = [sys.executable, str(REPO_ROOT / "app.py"), "--port", str(port), *extra]
    log_path = Path(f"/tmp/gancls-bench-app-{port}.log")
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        seconds, error = None, None
        try:
            while time.perf_counter() - t0 < timeout:
                if proc.poll() is not None:
                    error = f"app.py exited with {proc.returncode} (log: {log_path})"
                    break
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                        if resp.status == 200:
                            seconds = time.perf_counter() - t0
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass
                time.sleep(0.05)
            else:
                error = f"no HTTP 200 within {timeout:g} s (log: {log_path})"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and anything it started
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    return {"seconds": seconds, "error": error, "command": " ".join(cmd), "load_1min": load_average()[:1]}


def main(argv: list[str] | None = None) -> int:
    """Time sampling, probing and the app's start; print the table and write the JSON."""
    a = parse_args(argv)
    import torch

    from gancls.checkpoint import load_checkpoint
    from gancls.config import model_preset
    from gancls.data import load_mnist
    from gancls.device import resolve_device
    from gancls.models import GANCLS
    from gancls.probe import label_scores
    from gancls.sampling import sample

    info = machine_info()
    threads = [int(t) for t in a.threads.split(",") if t.strip()]
    try:
        device = resolve_device(a.device)
        path = a.checkpoint or (PRETRAINED if (PRETRAINED / "gancls.safetensors").is_file() else None)
        if path is not None:
            model, model_note = load_checkpoint(path).model, f"checkpoint {path}"
        else:
            model, model_note = GANCLS(model_preset(a.arch)), f"untrained {a.arch} model (no checkpoint found)"
        model = model.to(device).eval()
        data = load_mnist(a.data_dir, allow_download=False)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if device.type != "cpu":
        threads = threads[:1]
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    labels = torch.arange(10).repeat(10)  # 100 digits, ten of each
    gen = torch.Generator(device=device).manual_seed(0)
    image = data.test_images[0]  # uint8 [28, 28]
    tasks = {
        "sample 100 digits": lambda: sample(model, labels, gen),
        "probe 1 image x 10 labels": lambda: label_scores(model, image),
    }

    for t in threads:
        torch.set_num_threads(t)
        for fn in tasks.values():
            time_calls(fn, a.warmup, sync)
    times: dict[str, list[float]] = {}
    loads = []
    for r in range(a.rounds):
        loads.append(load_average())
        order = threads if r % 2 == 0 else threads[::-1]
        for t in order:
            torch.set_num_threads(t)
            for name, fn in tasks.items():
                times.setdefault(f"{name}|{t}", []).extend(time_calls(fn, a.repeats, sync))

    app: dict[str, Any] = {}
    if not (REPO_ROOT / "app.py").is_file():
        app = {"error": "app.py missing"}
    elif a.app_runs > 0:
        runs = [app_cold_start(a.app_timeout, a.app_args.split()) for _ in range(a.app_runs)]
        ok = sorted(r["seconds"] for r in runs if r["seconds"] is not None)
        app = {"runs": runs, "median_seconds": ok[len(ok) // 2] if ok else None,
               "error": next((r["error"] for r in runs if r["error"]), None)}
        for i, r in enumerate(runs):
            print(f"app cold start {i + 1}: {r['seconds'] and round(r['seconds'], 2)} s {r['error'] or ''}", flush=True)
    info["load_average_at_end"] = load_average()

    results, rows = {}, []
    for key, ms in times.items():
        name, t = key.split("|")
        med = percentile(ms, 50)
        res = {"task": name, "threads": int(t), "median_ms": med, "p90_ms": percentile(ms, 90), "min_ms": min(ms),
               "n": len(ms)}
        if name.startswith("sample"):
            res["target_ms"] = SAMPLE_TARGET_MS
            res["verdict"] = verdict(med, SAMPLE_TARGET_MS, higher_is_better=False)
        results[key.replace("|", "/t")] = res
        rows.append([name, int(t), med, res["p90_ms"], res["min_ms"], len(ms), res.get("target_ms"), res.get("verdict")])
    app_s = [r["seconds"] for r in app.get("runs", []) if r["seconds"] is not None]
    if app_s:
        rows.append(["app cold start (s, to first 200 on /)", "-", app["median_seconds"], max(app_s), min(app_s),
                     len(app_s), None, app.get("error") or ""])
    else:
        rows.append(["app cold start", "-", None, None, None, 0, None, app.get("error") or "skipped"])

    out = {"machine": info, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
           "model": model_note, "arch": model.cfg.arch, "load_average_per_round": loads, "results": results,
           "app_cold_start": app}
    print()
    print("\n".join(header_lines(info)))
    print(f"model: {model_note}; device {device}; load per round (1/5/15 min): {loads}")
    print()
    print(format_table(["task", "threads", "median ms", "p90 ms", "min ms", "calls", "target ms", "verdict"], rows))
    print("(the app row is in seconds: median, max, min of the runs)")
    print(f"wrote {write_json(a.out, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
