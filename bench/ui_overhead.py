"""How much does the live UI slow training? And how fast are Generate and Probe, and the cold start?

Runs the app in a subprocess and, alternating in one run, trains the same config
  * through the app (`/train` via gradio_client, which receives every live update, as a browser would), and
  * with `trainer.run()` alone in this process, consuming nothing,
then compares images/s = images seen / seconds since run() began, at the last metrics event of the
run (the app's is read from the metric history in the checkpoint it offers for download).

    python -m bench.ui_overhead --seconds 15 --rounds 3 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.common import RESULTS_DIR, header_lines, machine_info, verdict, write_json

ROOT = Path(__file__).resolve().parents[1]


def start_app(port: int, args: argparse.Namespace) -> tuple[subprocess.Popen, float]:
    """Start `python app.py`; return the process and the seconds to its first HTTP 200."""
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
    cmd += ["--data-dir", args.data_dir] if args.data_dir else []
    cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    while time.monotonic() - t0 < 120:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status == 200:
                    return proc, time.monotonic() - t0
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the app did not start within 120 s")


def through_app(client, args: argparse.Namespace) -> tuple[float, int]:
    """images/s and UI updates of one run through /train."""
    from gancls.checkpoint import load_checkpoint

    job = client.submit("cpu", args.data, args.seconds, 0, 0, args.arch, args.batch_size, args.lr_d, args.lr_g, 0,
                        "gan-cls", "lsgan", api_name="/train")
    job.result(timeout=args.seconds + 120)
    last = load_checkpoint(client.predict(api_name="/download")).meta["history"][-1]
    return last["images_seen"] / last["elapsed"], len(job.outputs())


def alone(args: argparse.Namespace, data) -> float:
    """images/s of trainer.run() with nobody consuming the events."""
    from gancls.config import Budget, model_preset, train_preset
    from gancls.train import Trainer

    cfg = train_preset(args.arch, batch_size=args.batch_size, lr_d=args.lr_d, lr_g=args.lr_g)
    trainer = Trainer(model_preset(args.arch), cfg, data, device="cpu")
    for _ in trainer.run(Budget(seconds=args.seconds)):
        pass
    last = trainer.history[-1]
    return last["images_seen"] / last["elapsed"]


def latencies(client, n: int) -> dict[str, list[float]]:
    """Seconds per call of /generate (10 labels x 8) and /probe + /label_scores on a gallery digit."""
    from gradio_client import handle_file

    out: dict[str, list[float]] = {"generate 10x8": [], "probe": [], "label_scores": []}
    image, _, label = client.predict(0, api_name="/gallery_digit")
    for i in range(n):
        t0 = time.perf_counter()
        client.predict(list(range(10)), 8, i, False, api_name="/generate")
        out["generate 10x8"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        client.predict(handle_file(image), label, api_name="/probe")
        out["probe"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        client.predict(handle_file(image), api_name="/label_scores")
        out["label_scores"].append(time.perf_counter() - t0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=15.0, help="training seconds per measured run")
    p.add_argument("--rounds", type=int, default=3, help="app/alone pairs, alternating order")
    p.add_argument("--arch", default="fast")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr-d", type=float, default=4e-4)
    p.add_argument("--lr-g", type=float, default=1e-3)
    p.add_argument("--data-dir", default=None, help="MNIST dir for both (default: the embedded subset)")
    p.add_argument("--checkpoint", default=None, help="the app's pretrained model (default: the shipped one)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of one untimed run each way first (0 = none)")
    p.add_argument("--port", type=int, default=7899)
    p.add_argument("--calls", type=int, default=20, help="calls per endpoint for the latency figures")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "ui_overhead.json", help="where to write the JSON")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads for both (sets OMP_NUM_THREADS for the app and this process)")
    args = p.parse_args()
    if args.threads:  # before torch is imported anywhere, so both processes start with the same thread pools
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    args.data = "server" if args.data_dir else "embedded"
    from gradio_client import Client

    from demo.context import startup_data

    proc, cold = start_app(args.port, args)
    try:
        client = Client(f"http://127.0.0.1:{args.port}/", verbose=False)
        data = startup_data(args.data_dir)
        rows = []
        if args.warmup:  # first-run costs (lazy loads, first allocations) are not the live UI's
            through_app(client, argparse.Namespace(**{**vars(args), "seconds": args.warmup}))
            alone(argparse.Namespace(**{**vars(args), "seconds": args.warmup}), data)
        for r in range(args.rounds):
            order = ("app", "alone") if r % 2 == 0 else ("alone", "app")
            for mode in order:
                if mode == "app":
                    speed, updates = through_app(client, args)
                    extra = f"  ({updates} UI updates)"
                else:
                    speed, extra = alone(args, data), ""
                rows.append((r + 1, mode, speed))
                print(f"round {r + 1} {mode:5s} {speed:8.0f} images/s{extra}", flush=True)
        lat = latencies(client, args.calls)
    finally:
        proc.terminate()
        proc.wait(10)

    app = [s for _, m, s in rows if m == "app"]
    base = [s for _, m, s in rows if m == "alone"]
    import torch

    info = machine_info()
    print("\n".join(header_lines(info)))
    print(f"\n{args.arch}, batch {args.batch_size}, {args.seconds:g} s per run, {torch.get_num_threads()} torch threads, "
          f"data {data.description}")
    print("| mode | runs | images/s (mean) | min | max |\n|---|---|---|---|---|")
    for name, xs in (("through the app (live UI)", app), ("trainer.run() alone", base)):
        print(f"| {name} | {len(xs)} | {statistics.mean(xs):,.0f} | {min(xs):,.0f} | {max(xs):,.0f} |")
    slowdown = 100 * (1 - statistics.mean(app) / statistics.mean(base))
    print(f"\nUI slowdown: {slowdown:.1f} % (per round: {', '.join(f'{100 * (1 - a / b):.1f} %' for a, b in zip(app, base))})"
          f"; target ≤ 10 %: {verdict(slowdown, 10.0, higher_is_better=False)}")
    print(f"\ncold start (process start to first HTTP 200): {cold:.1f} s")
    print("| endpoint | calls | median s | p90 s |\n|---|---|---|---|")
    for name, xs in lat.items():
        xs = sorted(xs)
        print(f"| {name} | {len(xs)} | {statistics.median(xs):.3f} | {xs[int(0.9 * (len(xs) - 1))]:.3f} |")
    out = {"machine": info, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "torch_threads": torch.get_num_threads(), "rounds": [{"round": r, "mode": m, "images_per_s": v}
                                                              for r, m, v in rows],
           "ui_slowdown_percent": slowdown, "cold_start_s": cold, "latency_s": lat}
    print(f"wrote {write_json(args.out, out)}")


if __name__ == "__main__":
    main()
