"""A whole class on one server (issue 13): watchers, joined Generate/Probe, and a stream of visitors.

    flock /tmp/gancls-bench.lock python -m bench.classroom watchers   # 1 trainer + 30 watchers, 60 s
    flock /tmp/gancls-bench.lock python -m bench.classroom probes     # 30 joined clients generate + probe
    flock /tmp/gancls-bench.lock python -m bench.classroom visitors   # 60 visitors over 10 min train 10 s

Each starts `python app.py` (its own runs folder and TMPDIR, one torch thread per request thread),
drives it with gradio_client (probes: demo/harness/lean_client.py unless `--client gradio`) and writes
bench/results/classroom_<what>.json with the machine, the load average and the command. The clients
stand for the class's own computers but share this machine with the server, so they run at a lower
priority (`--client-nice`, `--client-idle`). Targets (issue 13):
  * watchers: 0 errors; each watcher gets at least one update per 2 s on average; the trainer keeps
    >= 80 % of its images/s without watchers (the same run, same seed, alone, just before each watched one);
  * probes: 30 clients joined to a class run (which trains meanwhile; `--finished-run`: after it
    stopped) each generate and probe every 5 s: p95 latency <= 1 s;
  * visitors: 60 visitors arrive over `--window` s (default 600), each trains 10 s and leaves: the
    server's RSS at the end within 300 MB of its start; the kept runs within the runs quota.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    header_lines,
    load_average,
    machine_info,
    write_json,
)
from bench.soak import DEFAULT_DATA
from demo.harness.launch import launch

REPO = Path(__file__).resolve().parents[1]

KEEP_RATIO_TARGET, UPDATE_EVERY_TARGET, P95_TARGET, RSS_TARGET_MB = 0.80, 2.0, 1.0, 300


def train_args(seconds: float, arch: str = "fast", seed: int = 0) -> list:
    """/train's inputs: the page's defaults for `arch` on the server's own data."""
    from gancls.config import train_preset

    c = train_preset(arch)
    return ["auto", "server", seconds, 0, 0, arch, c.batch_size, c.lr_d, c.lr_g, seed, "gan-cls", "lsgan"]


def run_figures(status: str, batch: int) -> dict[str, float]:
    """Steps, training seconds and mean images/s of a finished run, from its final status box."""
    step = int(re.search(r"step <b>([\d,]+)", status).group(1).replace(",", ""))
    elapsed = float(re.search(r"elapsed <b>([\d.]+) s", status).group(1))
    return {"steps": step, "train_s": elapsed, "images_per_s": round(step * batch / elapsed, 1)}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


@dataclass
class Record:
    """What the client threads saw (append under the lock)."""

    errors: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, what: str, e: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{what}: {type(e).__name__}: {str(e)[:200]}")

    def add(self, item: dict[str, Any]) -> None:
        with self.lock:
            self.items.append(item)


def clients(url: str, n: int) -> list[Any]:
    """`n` gradio_client sessions, made before the measured part (each fetches the page's config)."""
    from gradio_client import Client

    out: list[Any] = [None] * n

    def make(i: int) -> None:
        out[i] = Client(url, verbose=False)

    threads = [threading.Thread(target=make, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def train_and_share(url: str, seconds: float, on_code: Any = None) -> tuple[Any, Any]:
    """Start a run (and share it when `on_code` is given: it gets the class code); returns (client, job)."""
    from gradio_client import Client

    owner = Client(url, verbose=False)
    job = owner.submit(*train_args(seconds), api_name="/train")
    t0 = time.monotonic()
    while not job.outputs():
        if job.done() or time.monotonic() - t0 > 120:
            raise RuntimeError(f"the run did not start: {job.result()}")
        time.sleep(0.05)
    if on_code is not None:
        on_code(owner.predict(api_name="/share"))
    return owner, job


# ------------------------------------------------------------------ watchers
def bench_watchers(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from gancls.config import train_preset

    batch = train_preset("fast").batch_size
    watchers = clients(url, args.watchers)
    rec = Record()

    def watch(client: Any, code: str, delay: float) -> None:
        time.sleep(delay)  # a class does not press Watch in the same millisecond
        try:
            client.predict(code, api_name="/join")
            t0 = time.monotonic()
            job = client.submit(code, api_name="/watch")
            job.result(timeout=args.seconds + 120)
            rec.add({"updates": len(job.outputs()), "seconds": time.monotonic() - t0})
        except Exception as e:  # noqa: BLE001 - every failure is counted and shown
            rec.error("watch", e)

    threads: list[threading.Thread] = []

    def start(code: str) -> None:
        for i, c in enumerate(watchers):
            threads.append(threading.Thread(target=watch, args=(c, code, 3.0 * i / len(watchers))))
            threads[-1].start()

    alone, watched = [], []
    for _ in range(args.rounds):
        # The same run without watchers just before each watched one: the reference images/s, measured
        # under the same conditions (a shared machine's speed drifts over minutes).
        _, job = train_and_share(url, args.seconds)
        alone.append(run_figures(job.result(timeout=args.seconds + 120)[0], batch))
        threads.clear()
        _, job = train_and_share(url, args.seconds, on_code=start)
        watched.append(run_figures(job.result(timeout=args.seconds + 120)[0], batch))
        for t in threads:
            t.join()
    rates = [r["updates"] / max(r["seconds"], 1e-9) for r in rec.items]
    ips_alone = sum(r["images_per_s"] for r in alone) / len(alone)
    ips_watched = sum(r["images_per_s"] for r in watched) / len(watched)
    mean_gap = (sum(r["seconds"] for r in rec.items) / max(sum(r["updates"] for r in rec.items), 1))
    return {"alone": alone, "watched": watched, "images_per_s_alone": round(ips_alone, 1),
            "images_per_s_watched": round(ips_watched, 1), "keep_ratio": round(ips_watched / ips_alone, 3),
            "watchers_finished": len(rec.items), "errors": rec.errors,
            "updates_per_watcher_mean": round(sum(r["updates"] for r in rec.items) / max(len(rec.items), 1), 1),
            "seconds_per_update_mean": round(mean_gap, 2),
            "slowest_watcher_seconds_per_update": round(1 / min(rates), 2) if rates else None,
            "met": (not rec.errors and len(rec.items) == args.watchers * args.rounds
                    and mean_gap <= UPDATE_EVERY_TARGET and ips_watched / ips_alone >= KEEP_RATIO_TARGET)}


# -------------------------------------------------------------------- probes
def bench_probes(url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    canvas = np.full((280, 280), 255, np.uint8)
    canvas[60:220, 130:150] = 0  # a drawn "1", as the pad sends it
    drawing = work / "drawing.png"
    Image.fromarray(canvas).save(drawing)
    code: list[str] = []
    owner, job = train_and_share(url, args.seconds + 30, on_code=code.append)
    if args.finished_run:  # against the run's final model: no training meanwhile
        time.sleep(10)
        owner.predict(api_name="/stop")
        job.result(timeout=60)
    rec = Record()
    if args.client == "lean":
        asyncio.run(lean_probes(url, args, code[0], drawing, rec))
    else:
        gradio_probes(url, args, code[0], drawing, rec)
    if not args.finished_run:
        owner.predict(api_name="/stop")
        job.result(timeout=60)
    lat = {name: [r["s"] for r in rec.items if r["what"] == name] for name in ("generate", "probe")}
    every = [s for v in lat.values() for s in v]
    p95 = percentile(every, 0.95)
    return {"client": args.client, "run_training_meanwhile": not args.finished_run, "requests": len(every),
            "errors": rec.errors,
            "latency_s": {name: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "max": percentile(v, 1.0)}
                          for name, v in lat.items()},
            "p95_s": p95, "met": not rec.errors and p95 is not None and p95 <= P95_TARGET}


def probe_round(rng: random.Random) -> tuple[list[int], int, int, int]:
    """One client round's choices: (labels to generate, samples per label, seed, label to probe with)."""
    return [rng.randrange(10)], 4, rng.randrange(100), rng.randrange(10)


async def lean_probes(url: str, args: argparse.Namespace, code: str, drawing: Path, rec: Record) -> None:
    """The probing users on one event loop (demo/harness/lean_client.py): each uploads its drawing per probe, as a
    page does, and fetches the pictures it gets back."""
    from demo.harness.lean_client import LeanApp

    app = await LeanApp.open(url, args.watchers)
    end = time.monotonic() + args.seconds

    async def user(i: int) -> None:
        rng, me = random.Random(i), app.user()
        try:
            await me.predict("join", code)
        except Exception as e:  # noqa: BLE001
            rec.error("join", e)
            return
        await asyncio.sleep(rng.uniform(0, args.every))  # spread the clients over the interval
        while time.monotonic() < end:
            t_round = time.monotonic()
            labels, per, seed, label = probe_round(rng)

            async def probe() -> None:
                await me.predict("probe", await me.upload(drawing), label)
            for name, call in (("generate", lambda: me.predict("generate", labels, per, seed, False)),
                               ("probe", probe)):
                t0 = time.monotonic()
                try:
                    await call()
                    rec.add({"what": name, "s": time.monotonic() - t0})
                except Exception as e:  # noqa: BLE001
                    rec.error(name, e)
            await asyncio.sleep(max(0.0, args.every - (time.monotonic() - t_round)))

    try:
        await asyncio.gather(*(user(i) for i in range(args.watchers)))
    finally:
        await app.close()


def gradio_probes(url: str, args: argparse.Namespace, code: str, drawing: Path, rec: Record) -> None:
    """The probing users as gradio_client sessions, one thread each."""
    from gradio_client import handle_file

    users = clients(url, args.watchers)
    end = time.monotonic() + args.seconds

    def user(i: int, client: Any) -> None:
        rng = random.Random(i)
        try:
            client.predict(code, api_name="/join")
        except Exception as e:  # noqa: BLE001
            rec.error("join", e)
            return
        time.sleep(rng.uniform(0, args.every))  # spread the clients over the interval
        while time.monotonic() < end:
            t_round = time.monotonic()
            labels, per, seed, label = probe_round(rng)
            for name, call in (("generate", lambda: client.predict(labels, per, seed, False, api_name="/generate")),
                               ("probe", lambda: client.predict(handle_file(str(drawing)), label,
                                                                api_name="/probe"))):
                t0 = time.monotonic()
                try:
                    call()
                    rec.add({"what": name, "s": time.monotonic() - t0})
                except Exception as e:  # noqa: BLE001
                    rec.error(name, e)
            time.sleep(max(0.0, args.every - (time.monotonic() - t_round)))

    threads = [threading.Thread(target=user, args=(i, c)) for i, c in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# ------------------------------------------------------------------ visitors
def bench_visitors(app: Any, args: argparse.Namespace) -> dict[str, Any]:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from demo.store import folder_bytes

    rec, refused = Record(), []
    time.sleep(5)
    start_rss = app.rss()
    samples: list[tuple[float, int, int]] = []  # (t, rss, runs bytes)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.monotonic(), app.rss(), folder_bytes(app.runs)))
            done.wait(2.0)

    def visitor(i: int) -> None:
        t0 = time.monotonic()
        client = None
        try:
            client = Client(app.url, verbose=False)
            client.predict(*train_args(args.train_seconds, seed=i), api_name="/train")
            client.predict([i % 10], 4, 0, False, api_name="/generate")
            rec.add({"visitor": i, "s": round(time.monotonic() - t0, 1)})
        except AppError as e:
            if "line is full" in str(e):
                refused.append(i)  # refused at once with the reason: the training line is bounded
            else:
                rec.error(f"visitor {i}", e)
        except Exception as e:  # noqa: BLE001
            rec.error(f"visitor {i}", e)
        finally:
            if client is not None:
                client.close()  # the visitor leaves: the server unloads the session

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rng, threads = random.Random(0), []
    t_start = time.monotonic()
    for i in range(args.visitors):
        arrive = t_start + args.window * i / args.visitors + rng.uniform(0, args.window / args.visitors / 2)
        time.sleep(max(0.0, arrive - time.monotonic()))
        threads.append(threading.Thread(target=visitor, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join()
    t_last = time.monotonic()
    time.sleep(args.settle)  # idle sessions are swept every 30 s
    end_rss = app.rss()
    done.set()
    sampler.join()
    peak_runs = max(s[2] for s in samples)
    quota = args.runs_quota_mb * 2**20
    return {"visitors": args.visitors, "window_s": args.window, "trained": len(rec.items), "refused_line_full": refused,
            "errors": rec.errors, "arrivals_to_last_leave_s": round(t_last - t_start, 1),
            "rss_start_mb": round(start_rss / 2**20, 1), "rss_peak_mb": round(max(s[1] for s in samples) / 2**20, 1),
            "rss_end_mb": round(end_rss / 2**20, 1), "rss_growth_mb": round((end_rss - start_rss) / 2**20, 1),
            "runs_peak_mb": round(peak_runs / 2**20, 1), "runs_end_mb": round(folder_bytes(app.runs) / 2**20, 1),
            "runs_quota_mb": args.runs_quota_mb, "kept_runs_end": len(app.kept_runs()),
            "met": (not rec.errors and (end_rss - start_rss) / 2**20 <= RSS_TARGET_MB and peak_runs <= quota * 1.05)}


def main(argv: list[str] | None = None) -> int:
    """Parse flags, start the app, run one benchmark, print and save the figures; exit 1 if a target was missed."""
    p = argparse.ArgumentParser(prog="python -m bench.classroom", description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("watchers", "probes", "visitors"))
    p.add_argument("--watchers", type=int, default=30, help="watcher clients (watchers, probes; default 30)")
    p.add_argument("--seconds", type=float, default=60, help="the run's (and the probing's) length (default 60)")
    p.add_argument("--rounds", type=int, default=1, help="watchers: runs with and without watchers (default 1)")
    p.add_argument("--every", type=float, default=5.0, help="probes: seconds between a client's rounds (default 5)")
    p.add_argument("--client", choices=("lean", "gradio"), default="lean",
                   help="probes: the users' client: demo/harness/lean_client.py on one event loop (default), or one "
                        "gradio_client per user on a thread each (heavier: on a 2-core machine it competes with the "
                        "server for CPU)")
    p.add_argument("--finished-run", action="store_true",
                   help="probes: train 10 s, stop, then probe the final model (default: the run trains meanwhile)")
    p.add_argument("--visitors", type=int, default=60, help="visitors: how many arrive (default 60)")
    p.add_argument("--window", type=float, default=600, help="visitors: over how many seconds they arrive (default "
                   "600, the issue's ~10 minutes; a shorter window is a harsher, shorter test)")
    p.add_argument("--train-seconds", type=float, default=10, help="visitors: each one's time budget (default 10)")
    p.add_argument("--settle", type=float, default=75, help="visitors: idle seconds before the end RSS (default 75)")
    p.add_argument("--runs-quota-mb", type=float, default=256, help="the server's --runs-quota-mb (default 256)")
    p.add_argument("--client-nice", type=int, default=None,
                   help="niceness added to this process's client threads after the server starts (default: 10 for "
                        "watchers, whose clients stand for other computers; 0 for probes, whose clients time the answers)")
    p.add_argument("--client-idle", action=argparse.BooleanOptionalAction, default=None,
                   help="run the client threads under Linux's SCHED_IDLE: they get only the CPU the server leaves, as "
                        "the class's own computers would take none of it (default: on for watchers, whose 30 "
                        "gradio_clients otherwise take CPU from the trainer they measure; off for probes)")
    p.add_argument("--checkpoint", default=None, help="the app's shared model (default: the app's own)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None,
                   help="MNIST for the server (default ../shared/data if present, else the embedded subset)")
    p.add_argument("--out", default=None, help="where to write the figures (default bench/results/classroom_<what>.json)")
    args = p.parse_args(argv)
    info = machine_info(argv)
    flags = ["--runs-quota-mb", f"{args.runs_quota_mb:g}"]
    with tempfile.TemporaryDirectory(prefix="gancls-classroom-") as tmp:
        work = Path(tmp)
        app = launch(Path(args.checkpoint) if args.checkpoint else None, work, *flags,
                     data_dir=Path(args.data_dir) if args.data_dir else None)
        # The clients stand for the class's own computers: on this one machine they run at a lower
        # priority than the server (which was started before, at ours), so they take idle CPU first.
        os.nice(args.client_nice if args.client_nice is not None else 10 * (args.what == "watchers"))
        if args.client_idle if args.client_idle is not None else args.what == "watchers":
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # this thread and those it starts
        try:
            if args.what == "watchers":
                figures = bench_watchers(app.url, args)
            elif args.what == "probes":
                figures = bench_probes(app.url, args, work)
            else:
                figures = bench_visitors(app, args)
            died = app.proc.poll()
        finally:
            app.stop()
        if died is not None:
            print(f"the server exited (code {died}):\n{app.log.read_text()[-3000:]}", file=sys.stderr)
            figures["server_exit_code"], figures["met"] = died, False
    info["load_average_at_end"] = load_average()
    out = Path(args.out) if args.out else RESULTS_DIR / f"classroom_{args.what}.json"
    write_json(out, {"machine": info, "what": args.what, "settings": vars(args), "server_flags": flags, **figures})
    print("\n".join(header_lines(info)))
    for k, v in figures.items():
        print(f"{k}: {v}")
    print(f"written: {out}")
    return 0 if figures["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
