"""Many-users soak of the app: concurrent gradio_client sessions generate and probe while some sessions train.

    python bench/soak.py --users 20 --trainers 2 --seconds 120 --data-dir ../shared/data

Starts `python app.py` (its own runs folder and temp dir, one torch thread), then:
  * a reference session records the pretrained model's answers to a few fixed requests;
  * `--trainers` sessions each train a small model (different seeds) for `--train-steps` steps,
    at most `--train-concurrency` at a time (the app's queue), then generate and download;
  * `--users` sessions loop over Generate and label scores until `--seconds` have passed, and every
    answer must equal the pretrained model's (a session that did not train must never see
    another session's model);
  * the server's RSS (psutil) is sampled before, during and after, the last after every client
    has closed and the server has unloaded its sessions.
Pass: no failed request, no wrong answer, never more trainings at once than the limit, each
trainer's Generate equals its own downloaded checkpoint's output, and RSS back near the baseline.
tests/test_soak.py runs a short version.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make `gancls` and `demo` importable
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data"
# (labels, samples per label, seed): the fixed Generate requests every user session cycles through.
REQUESTS = [([3], 2, 0), ([0, 7], 2, 11), ([1, 2, 5], 1, 42), ([9], 3, 7)]
# device, data, seconds, epochs, max_steps, arch, batch, lr_d, lr_g, seed, objective, loss
TRAIN = ["auto", "embedded", 120, 0, 0, "small", 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan", "scratch"]


# ---------------------------------------------------------------------------- the server
def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppProcess:
    """A running `python app.py` and where it keeps things."""

    proc: subprocess.Popen
    url: str
    runs: Path  # --runs-dir: checkpoints of sessions that ended
    tmp: Path  # the server's TMPDIR: live session folders (gancls-app-*/<run id>) and Gradio's cache
    log: Path

    def live_runs(self) -> list[Path]:
        """Live session folders (each a run id)."""
        return sorted(p for p in self.tmp.glob("gancls-app-*/*") if p.is_dir())

    def kept_runs(self) -> list[Path]:
        """Kept runs (folders named by run id) in the runs folder."""
        return sorted(p for p in self.runs.iterdir() if p.is_dir() and not p.name.startswith("."))

    def rss(self) -> int:
        """The server's resident memory in bytes."""
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as a service manager or a Space stops it; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Ctrl-C (so it keeps runs and removes temp files), then kill if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def launch(checkpoint: Path | None, work: Path, *extra: str, runs: Path | None = None,
           data_dir: Path | None = None, timeout: float = 90) -> AppProcess:
    """Start the app on a free port with its own runs folder and TMPDIR under `work`; wait until it answers."""
    port = free_port()
    runs = runs or work / "runs"
    tmp = work / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    log = work / f"app-{port}.log"
    args = [sys.executable, str(REPO / "app.py"), "--port", str(port), "--runs-dir", str(runs), *extra]
    if checkpoint is not None:
        args += ["--checkpoint", str(checkpoint)]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "TMPDIR": str(tmp), "GRADIO_HEARTBEAT_INTERVAL": "1"}  # a closed client is noticed within ~1 s
    for name in ("GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME", "GRADIO_TEMP_DIR"):
        env.pop(name, None)
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return AppProcess(proc, url, runs, tmp, log)
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise RuntimeError(f"the app did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def wait_for(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns its last value."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(every)
    return True


# ---------------------------------------------------------------------------- answers
def png(path: str) -> Any:
    """A PNG file as a numpy array."""
    import numpy as np
    from PIL import Image

    return np.array(Image.open(path))


def expected_generate(model: Any, labels: list[int], per: int, seed: int) -> Any:
    """What the app's Generate shows for this model and request (uint8 [H, W])."""
    from gancls.draw import labelled_grid
    from gancls.sampling import label_grid

    images, _ = label_grid(model, labels, per, seed, same_noise=False)
    return labelled_grid(images, labels, per, scale=2)


@dataclass
class Tally:
    """What the soak saw, shared by its threads."""

    served: int = 0
    failures: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self) -> None:
        with self.lock:
            self.served += 1

    def fail(self, what: str, kind: str = "failures") -> None:
        with self.lock:
            getattr(self, kind).append(what[:300])


def user_loop(url: str, deadline: float, reference: dict, digit_file: str, tally: Tally, rng: random.Random) -> None:
    """One visitor who never trains: Generate and label scores until `deadline`; every answer must be the pretrained one."""
    import numpy as np
    from gradio_client import Client, handle_file

    try:
        client = Client(url, verbose=False)
    except Exception as e:  # noqa: BLE001 - a failed connection is a failed request
        tally.fail(f"connect: {e!r}")
        return
    try:
        while time.monotonic() < deadline:
            if rng.random() < 0.6:
                i = rng.randrange(len(REQUESTS))
                labels, per, seed = REQUESTS[i]
                try:
                    image, _ = client.predict(labels, per, seed, False, api_name="/generate")
                except Exception as e:  # noqa: BLE001
                    tally.fail(f"generate: {e!r}")
                    continue
                tally.ok()
                if not np.array_equal(png(image), reference["generate"][i]):
                    tally.fail(f"generate {REQUESTS[i]} differs from the pretrained model's", "wrong")
            else:
                try:
                    scores = client.predict(handle_file(digit_file), api_name="/label_scores")
                except Exception as e:  # noqa: BLE001
                    tally.fail(f"label_scores: {e!r}")
                    continue
                tally.ok()
                if scores != reference["scores"]:
                    tally.fail("label scores differ from the pretrained model's", "wrong")
    finally:
        client.close()


def trainer_job(url: str, seed: int, steps: int, tally: Tally, result: dict) -> None:
    """One visitor who trains `steps` steps (seed `seed`), then generates and downloads its checkpoint."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    result["client"] = client
    try:
        args = list(TRAIN)
        args[4], args[9] = steps, seed
        out = client.predict(*args, api_name="/train")
        result["using"] = out[4]
        tally.ok()
        labels, per, s = REQUESTS[0]
        result["generate"] = png(client.predict(labels, per, s, False, api_name="/generate")[0])
        result["checkpoint"] = client.predict(api_name="/download")
        tally.ok()
        tally.ok()
    except Exception as e:  # noqa: BLE001
        tally.fail(f"trainer {seed}: {e!r}")


def server_spans(app: AppProcess, seeds: set[int], since: float) -> list[tuple[float, float]]:
    """(start, end) wall-clock seconds of the kept runs trained with `seeds`, as the server timed them.

    end = the final checkpoint's mtime; start = end - the run's elapsed time at its last metrics read
    (a few ms before the final save, so a span is if anything a little long, never short).
    """
    spans = []
    for d in app.kept_runs():
        meta = json.loads((d / "gancls.json").read_text())
        end = (d / "gancls.safetensors").stat().st_mtime
        if meta["train_config"]["seed"] in seeds and end >= since:
            spans.append((end - float(meta["last_metrics"]["elapsed"]), end))
    return sorted(spans)


def soak(app: AppProcess, *, users: int = 20, trainers: int = 2, seconds: float = 30, train_steps: int = 30,
         digit: Any = None, settle: float = 20, warmup_steps: int = 20, pretrained: Any = None) -> dict[str, Any]:
    """Run the soak against a running app; returns the figures (see the module docstring).

    With `pretrained` (the app's shared model, loaded here), also checks the reference answers are its own.
    """
    import numpy as np
    from gradio_client import Client
    from PIL import Image

    if digit is None:
        from gancls.data import load_embedded

        digit = load_embedded().test_images[0].numpy()
    digit_file = str(app.tmp.parent / "soak_digit.png")
    Image.fromarray(np.asarray(digit, np.uint8)).save(digit_file)

    # The pretrained model's answers, from a session that never trains.
    from gradio_client import handle_file

    ref = Client(app.url, verbose=False)
    reference = {"generate": [png(ref.predict(l, p, s, False, api_name="/generate")[0]) for l, p, s in REQUESTS],
                 "scores": ref.predict(handle_file(digit_file), api_name="/label_scores")}
    ref.close()
    reference_ok = None if pretrained is None else all(
        np.array_equal(got, expected_generate(pretrained, *req)) for got, req in zip(reference["generate"], REQUESTS))
    # Warm-up: one short training, so one-time allocations (autograd, optimiser, kernels) are in the baseline.
    if warmup_steps:
        warm: dict = {}
        trainer_job(app.url, 99, warmup_steps, Tally(), warm)
        warm["client"].close()
    wait_for(lambda: not app.live_runs(), 10)
    time.sleep(1.0)
    rss_before = app.rss()

    tally, peak, stop_sampling = Tally(), [rss_before], threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.25):
            try:
                peak.append(app.rss())
            except Exception:  # noqa: BLE001 - the server went away: the checks below will say so
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    deadline = t0 + seconds
    results = [dict() for _ in range(trainers)]
    threads = [threading.Thread(target=trainer_job, args=(app.url, 100 + k, train_steps, tally, results[k]))
               for k in range(trainers)]
    threads += [threading.Thread(target=user_loop, args=(app.url, deadline, reference, digit_file, tally,
                                                          random.Random(k))) for k in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 600)
    elapsed = time.monotonic() - t0

    # Trainers: their own model, not the pretrained one, not each other's.
    from gancls.checkpoint import load_checkpoint

    own = []
    for k, r in enumerate(results):
        if "checkpoint" not in r:
            own.append(False)
            continue
        model = load_checkpoint(r["checkpoint"]).model
        own.append(bool(np.array_equal(r["generate"], expected_generate(model, *REQUESTS[0]))))
    generated = [r["generate"] for r in results if "generate" in r]
    distinct = all(not np.array_equal(a, b) for i, a in enumerate(generated)
                   for b in generated[i + 1:] + [reference["generate"][0]])

    # Everyone leaves: the server unloads each session; per-session models must be freed.
    for r in results:
        if "client" in r:
            r["client"].close()
    unloaded = wait_for(lambda: not app.live_runs(), settle, every=0.25)
    spans = server_spans(app, {100 + k for k in range(trainers)}, since=time.time() - (time.monotonic() - t0))
    overlap = max([0.0] + [a_end - b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])])
    time.sleep(2.0)
    stop_sampling.set()
    rss_after = app.rss()
    return {
        "reference_is_pretrained": reference_ok, "users": users, "trainers": trainers, "seconds": round(elapsed, 1), "served": tally.served,
        "requests_per_s": round(tally.served / max(elapsed, 1e-9), 1),
        "failures": tally.failures, "wrong": tally.wrong, "trainers_own_model": own, "trainers_distinct": distinct,
        "training_overlap_s": round(overlap, 3), "train_spans_s": [[round(a - spans[0][0], 2), round(b - spans[0][0], 2)]
                                                                  for a, b in spans],
        "sessions_unloaded": unloaded, "kept_runs": len(app.kept_runs()),
        "rss_before_mb": round(rss_before / 2**20, 1), "rss_peak_mb": round(max(peak) / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
    }


def pretrained_for_bench(work: Path, seconds: float) -> Path:
    """A small model trained for `seconds` on the embedded subset, as the app's shared model."""
    import torch

    from gancls.config import Budget, model_preset, train_preset
    from gancls.data import load_embedded
    from gancls.train import Trainer

    torch.set_num_threads(1)
    out = work / "pretrained"
    trainer = Trainer(model_preset("small"), train_preset("small"), load_embedded(),
                      device="cpu", run_dir=out)
    for _ in trainer.run(Budget(seconds=seconds)):
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse flags, start the app, soak it, print and save the figures; exit 1 if the soak failed."""
    import tempfile

    p = argparse.ArgumentParser(prog="python bench/soak.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=20, help="sessions that generate and probe (default 20)")
    p.add_argument("--trainers", type=int, default=2, help="sessions that train meanwhile (default 2)")
    p.add_argument("--seconds", type=float, default=120, help="how long the users keep asking (default 120)")
    p.add_argument("--train-steps", type=int, default=60, help="steps each trainer trains (default 60)")
    p.add_argument("--rounds", type=int, default=2,
                   help="soaks one after another on the same server: memory must not grow round after round (default 2)")
    p.add_argument("--train-concurrency", type=int, default=1, help="the app's training limit (default 1)")
    p.add_argument("--checkpoint", default=None, help="the app's shared model (default: train a small one for 10 s)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None,
                   help="MNIST for the server (default ../shared/data if present, else the embedded subset)")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "soak.json"), help="where to write the figures")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gancls-soak-") as tmp:
        work = Path(tmp)
        ckpt = Path(args.checkpoint) if args.checkpoint else pretrained_for_bench(work, 10)
        app = launch(ckpt, work, "--train-concurrency", str(args.train_concurrency),
                     data_dir=Path(args.data_dir) if args.data_dir else None)
        try:
            from gancls.checkpoint import load_checkpoint

            model = load_checkpoint(ckpt).model
            rounds = [soak(app, users=args.users, trainers=args.trainers, seconds=args.seconds,
                           train_steps=args.train_steps, warmup_steps=20 if k == 0 else 0, pretrained=model)
                      for k in range(args.rounds)]
        finally:
            app.stop()
    from bench.common import machine_info

    report = {"machine": machine_info(argv), "train_concurrency": args.train_concurrency, "rounds": rounds}
    print(json.dumps(rounds, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    ok = all(f["reference_is_pretrained"] and not f["failures"] and not f["wrong"] and all(f["trainers_own_model"]) and f["trainers_distinct"]
             and f["training_overlap_s"] <= 0 and f["sessions_unloaded"] for f in rounds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
