"""Hostile-visitor soak: attackers cycle through the refusal table while normal visitors generate and probe.

    python -m bench.hostile_soak --minutes 5

Starts `python app.py` with the public-server limits the table expects (demo/harness/hostile.py), then for
`--minutes`:
  * `--hostile` clients (default 4), each its own session, send the table's requests back to back, as
    fast as the server answers; every one must be refused with its expected message, without a server path;
  * `--normal` clients (default 10), each its own session, call /generate and /probe every `--every`
    seconds (default 2) and time each answer;
  * the server's RSS is sampled every 0.25 s: baseline (after every client's first request), peak, end.
Targets (issue 12): 0 normal-client errors and p95 latency <= 2 s. Writes bench/results/hostile_soak.json;
exit 1 if a target or a refusal check failed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import RESULTS_DIR, header_lines, load_average, machine_info, write_json
from demo.harness.hostile import LIMITS, refusal, table
from demo.harness.launch import AppProcess, launch
from demo.harness.soak import REQUESTS

REPO = Path(__file__).resolve().parents[1]

P95_TARGET_S = 2.0


@dataclass
class Record:
    """What the soak's threads saw (shared; append under the lock)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"generate": [], "probe": []})
    errors: list[str] = field(default_factory=list)  # normal clients' failed requests
    refused: int = 0  # hostile requests refused as expected
    wrong_refusals: list[str] = field(default_factory=list)  # accepted, or refused with the wrong message
    rss: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def normal_client(url: str, digit: str, clock: dict[str, float], every: float, rec: Record, rng: random.Random,
                  started: threading.Barrier) -> None:
    """One visitor: a Generate and a Probe every `every` s until clock['deadline']; errors and latencies go to `rec`."""
    from gradio_client import Client, handle_file

    def timed(name: str, call) -> None:
        t0 = time.monotonic()
        try:
            out = call()
            if name == "generate" and not Path(out[0]).is_file():
                raise RuntimeError("no image file in the answer")
        except Exception as e:  # noqa: BLE001 - every failure is a figure of the soak
            with rec.lock:
                rec.errors.append(f"{name}: {e!r}"[:300])
            return
        with rec.lock:
            rec.latencies[name].append(time.monotonic() - t0)

    client = None
    try:
        client = Client(url, verbose=False)
        # First requests before the clock starts: sessions made, one-time work in the RSS baseline.
        client.predict([3], 2, 0, False, api_name="/generate")
        client.predict(handle_file(digit), 3, api_name="/probe")
    except Exception as e:  # noqa: BLE001
        with rec.lock:
            rec.errors.append(f"connect/warm-up: {e!r}"[:300])
    started.wait()
    if client is None:
        return
    deadline = clock["deadline"]  # set before the barrier opened
    time.sleep(rng.uniform(0, every))  # spread the clients over the interval
    while (tick := time.monotonic()) < deadline:
        labels, per, seed = REQUESTS[rng.randrange(len(REQUESTS))]
        timed("generate", lambda r=(labels, per, seed): client.predict(*r, False, api_name="/generate"))
        timed("probe", lambda: client.predict(handle_file(digit), rng.randrange(10), api_name="/probe"))
        time.sleep(max(0.0, tick + every - time.monotonic()))
    client.close()


def hostile_client(url: str, folder: Path, server_tmp: Path, clock: dict[str, float], rec: Record,
                   started: threading.Barrier) -> None:
    """One attacker: the whole table, again and again, until clock['deadline']."""
    from gradio_client import Client

    folder.mkdir(parents=True, exist_ok=True)
    cases = table(folder)
    try:
        client = Client(url, verbose=False)
    finally:
        started.wait()  # the others start even if this one could not connect
    deadline = clock["deadline"]
    while time.monotonic() < deadline:
        for name, api, inputs, expected in cases:
            if time.monotonic() >= deadline:
                break
            message = refusal(lambda inputs=inputs, api=api: client.predict(*inputs, api_name=api))
            ok = expected.lower() in message.lower() and str(server_tmp) not in message
            with rec.lock:
                if ok:
                    rec.refused += 1
                else:
                    rec.wrong_refusals.append(f"{name}: {message[:200]!r}")
    client.close()


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def soak(app: AppProcess, minutes: float, normal: int, hostile: int, every: float, work: Path) -> dict:
    """Run the clients against `app` for `minutes`; return the figures."""
    import numpy as np
    from PIL import Image

    from gancls.data import load_embedded

    digit = work / "digit.png"
    Image.fromarray(np.asarray(load_embedded().test_images[0].numpy(), np.uint8)).save(digit)
    rec, clock = Record(), {}
    started = threading.Barrier(normal + hostile + 1)
    # The clients wait at the barrier until the baseline is taken, then all start together.
    threads = [threading.Thread(target=normal_client, args=(app.url, str(digit), clock, every, rec, random.Random(k),
                                                            started), daemon=True) for k in range(normal)]
    threads += [threading.Thread(target=hostile_client, args=(app.url, work / f"hostile{k}", app.tmp, clock, rec,
                                                              started), daemon=True) for k in range(hostile)]
    for t in threads:
        t.start()
    # Everyone connected and warmed up: the baseline. (Threads block on the barrier until we join it.)
    while started.n_waiting < normal + hostile and any(t.is_alive() for t in threads):
        time.sleep(0.2)
    time.sleep(1.0)
    baseline = app.rss()
    load_start = load_average()
    clock["deadline"] = time.monotonic() + minutes * 60
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.25):
            try:
                rss = app.rss()
            except Exception:  # noqa: BLE001 - the server died: the errors say so
                return
            with rec.lock:
                rec.rss.append(rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    started.wait()
    for t in threads:
        t.join(minutes * 60 + 300)
    elapsed = time.monotonic() - t0
    time.sleep(2.0)
    stop_sampling.set()
    sampler.join(5)
    end = app.rss()
    lat = rec.latencies["generate"] + rec.latencies["probe"]

    def stats(values: list[float]) -> dict:
        return {"n": len(values), "p50_s": rnd(percentile(values, 50)), "p95_s": rnd(percentile(values, 95)),
                "max_s": rnd(max(values) if values else None)}

    return {
        "minutes": minutes, "normal_clients": normal, "hostile_clients": hostile, "every_s": every,
        "seconds": round(elapsed, 1),
        "normal_requests": len(lat), "normal_errors": len(rec.errors), "normal_error_samples": rec.errors[:10],
        "latency": stats(lat), "latency_generate": stats(rec.latencies["generate"]),
        "latency_probe": stats(rec.latencies["probe"]),
        "hostile_refused": rec.refused, "hostile_wrong": len(rec.wrong_refusals),
        "hostile_wrong_samples": rec.wrong_refusals[:10],
        "rss_baseline_mb": round(baseline / 2**20, 1), "rss_peak_mb": round(max(rec.rss or [baseline]) / 2**20, 1),
        "rss_end_mb": round(end / 2**20, 1), "load_average_start": load_start, "load_average_end": load_average(),
    }


def rnd(v: float | None) -> float | None:
    """Seconds to 3 decimals (None stays None)."""
    return None if v is None else round(v, 3)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, start the app, soak it, print and save the figures; exit 1 if a target was missed."""
    p = argparse.ArgumentParser(prog="python -m bench.hostile_soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5, help="how long the soak runs (default 5)")
    p.add_argument("--normal", type=int, default=10, help="normal clients (default 10)")
    p.add_argument("--hostile", type=int, default=4, help="hostile clients (default 4)")
    p.add_argument("--every", type=float, default=2.0, help="seconds between a normal client's rounds (default 2)")
    p.add_argument("--checkpoint", default=None, help="the app's shared model (default: the app's own)")
    p.add_argument("--out", default=str(RESULTS_DIR / "hostile_soak.json"), help="where to write the figures")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.normal < 1 or args.hostile < 0 or args.every <= 0:
        p.error("--minutes and --every must be positive, --normal at least 1, --hostile at least 0")
    info = machine_info(argv)
    with tempfile.TemporaryDirectory(prefix="gancls-hostile-soak-") as tmp:
        work = Path(tmp)
        app = launch(Path(args.checkpoint) if args.checkpoint else None, work, *LIMITS)
        try:
            figures = soak(app, args.minutes, args.normal, args.hostile, args.every, work)
            died = app.proc.poll()
        finally:
            app.stop()
        if died is not None:  # the worst outcome: say why, from the server's own log
            print(f"the server exited (code {died}) during the soak:\n{app.log.read_text()[-3000:]}", file=sys.stderr)
            figures["server_exit_code"] = died
    info["load_average_at_end"] = load_average()
    ok = "server_exit_code" not in figures and figures["normal_errors"] == 0 and figures["hostile_wrong"] == 0 and (figures["latency"]["p95_s"] or 0) <= P95_TARGET_S
    report = {"machine": info, "server_flags": LIMITS, "targets": {"normal_errors": 0, "p95_s": P95_TARGET_S},
              "met": ok, **figures}
    write_json(Path(args.out), report)
    lat = figures["latency"]
    print("\n".join(header_lines(info)))
    print(f"normal : {figures['normal_requests']} requests, {figures['normal_errors']} errors; latency p50 "
          f"{lat['p50_s']} s, p95 {lat['p95_s']} s (target <= {P95_TARGET_S}), max {lat['max_s']} s")
    print(f"hostile: {figures['hostile_refused']} refused as expected, {figures['hostile_wrong']} not")
    print(f"RSS    : baseline {figures['rss_baseline_mb']} MB, peak {figures['rss_peak_mb']} MB, "
          f"end {figures['rss_end_mb']} MB")
    print(f"written: {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
