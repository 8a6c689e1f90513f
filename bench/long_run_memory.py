"""Does a long training run in the app keep its memory flat? (Histories are bounded; this checks it.)

    python -m bench.long_run_memory --minutes 20 --train-threads 1

Starts `python app.py` in a subprocess, trains one run through gradio_client (the `fast` preset,
a time budget of `--minutes`), and samples the server's resident memory (RSS, with its children)
every 10 s. Reports RSS at 2 minutes and at the end, and their difference (target: within 50 MB).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, RESULTS_DIR, header_lines, machine_info, write_json



def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def wait_ready(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    """Until the page answers (or the server dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the app did not start (see its log in /tmp)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=20.0, help="training time of the one run")
    p.add_argument("--train-threads", type=int, default=1, help="the app's --train-threads")
    p.add_argument("--data-dir", default=None, help="MNIST for the app (default: what the app finds)")
    p.add_argument("--port", type=int, default=7931)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "long_run_memory.json", help="where to write the JSON")
    a = p.parse_args(argv)
    from gradio_client import Client

    info = machine_info()
    cmd = [sys.executable, str(REPO_ROOT / "app.py"), "--port", str(a.port), "--train-threads", str(a.train_threads)]
    cmd += ["--data-dir", a.data_dir] if a.data_dir else []
    log = open(Path("/tmp") / f"gancls-long-run-{a.port}.log", "w")
    server = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    samples: list[dict[str, Any]] = []
    try:
        wait_ready(f"http://127.0.0.1:{a.port}/", server)
        client = Client(f"http://127.0.0.1:{a.port}/", verbose=False)
        seconds = a.minutes * 60
        # device, data, seconds, epochs, max_steps, arch, batch, lr_d, lr_g, seed, objective, loss
        data = "server" if a.data_dir else "embedded"  # the app offers "server" only for data other than the subset
        job = client.submit("auto", data, seconds, 0, 0, "fast", 64, 4e-4, 1e-3, 0, "gan-cls", "lsgan",
                            api_name="/train")
        t0 = time.monotonic()
        done = threading.Event()
        while not job.done():
            elapsed = time.monotonic() - t0
            samples.append({"seconds": round(elapsed, 1), "rss_mb": round(rss_mb(server.pid), 1),
                            "updates": len(job.outputs())})
            print(f"{elapsed:7.0f} s  RSS {samples[-1]['rss_mb']:8.1f} MB  updates {samples[-1]['updates']}", flush=True)
            done.wait(10)
        status = job.result()[0]
        samples.append({"seconds": round(time.monotonic() - t0, 1), "rss_mb": round(rss_mb(server.pid), 1),
                        "updates": len(job.outputs())})
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    at_2min = next(s for s in samples if s["seconds"] >= 120)
    end = samples[-1]
    growth = end["rss_mb"] - at_2min["rss_mb"]
    verdict = "met" if growth <= 50 else f"missed by {growth - 50:.0f} MB"
    out = {"machine": info, "settings": vars(a), "samples": samples, "rss_at_2_min_mb": at_2min["rss_mb"],
           "rss_at_end_mb": end["rss_mb"], "growth_mb": round(growth, 1), "target_mb": 50, "verdict": verdict,
           "final_status": status}
    print("\n".join(header_lines(info)))
    print(f"RSS at 2 min {at_2min['rss_mb']:.0f} MB, at the end ({end['seconds']:.0f} s) {end['rss_mb']:.0f} MB: "
          f"{growth:+.0f} MB (target ≤ 50 MB: {verdict})")
    print(f"wrote {write_json(a.out, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
